"""components/redis-tls, added to the production overlay as a user would: the processors and the
API mount the TLS Secret as a whole directory, read-only and readable by the exporter's group
only, and the CA setting points into it; the objects still pass the strict schemas."""

from __future__ import annotations

from pathlib import Path

from exporter.settings import Settings
from tests.k8s.manifests import config_map_data, container, kubectl, one, render_with_components
from tests.k8s.test_manifests import (
    API,
    EXPORTER_UID,
    KUBERNETES_VERSIONS,
    PROCESSOR,
    _strict_errors,
)

MOUNT = "/etc/redis-tls"
SECRET = "sqs-metrics-exporter-redis-tls"


def test_the_tls_secret_is_mounted_as_files_for_every_role(tmp_path: Path) -> None:
    """Both Deployments mount the Secret at /etc/redis-tls (no subPath, so a rotated CA bundle
    reaches running pods), the CA setting names a file in it, and the result is valid."""
    kubectl()
    manifests = render_with_components("production", ["redis-tls"], tmp_path)
    settings = config_map_data(manifests)
    assert settings["EXPORTER_REDIS_TLS_CA_FILE"] == f"{MOUNT}/ca.crt"
    assert "EXPORTER_REDIS_TLS_CERT_FILE" not in settings  # mutual TLS is the user's choice
    assert "EXPORTER_REDIS_TLS_CA_FILE" in {field.alias for field in Settings.model_fields.values()}
    for deployment in (PROCESSOR, API):
        pod = one(manifests, "Deployment", deployment)["spec"]["template"]["spec"]
        (volume,) = [v for v in pod["volumes"] if v["name"] == "redis-tls"]
        assert volume["secret"] == {"secretName": SECRET, "defaultMode": 0o440}
        assert pod["securityContext"]["fsGroup"] == EXPORTER_UID
        (mount,) = [
            m for m in container(manifests, deployment)["volumeMounts"] if m["name"] == "redis-tls"
        ]
        assert mount == {"name": "redis-tls", "mountPath": MOUNT, "readOnly": True}
        errors = [
            error
            for version in KUBERNETES_VERSIONS
            if (error := _strict_errors(one(manifests, "Deployment", deployment), version))
        ]
        assert not errors, errors
