"""deploy/kubernetes, checked offline: every overlay renders with `kubectl kustomize`, every
built-in object passes the Kubernetes JSON schemas strictly, custom resources pass their CRDs'
schemas (or a structural check that says what it cannot see), and the objects agree with each
other and with the code they run. No cluster is involved: what that leaves unverified is in
docs/kubernetes.md."""

from __future__ import annotations

import copy
import json
import re
import tomllib
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # no stubs in use
import kubernetes_validate
import pytest
import yaml

from exporter.settings import Settings
from tests.k8s.manifests import (
    KUBERNETES,
    OVERLAYS,
    ROOT,
    Manifest,
    config_map_data,
    container,
    find,
    is_built_in,
    kubectl,
    one,
    pod_templates,
    render,
)
from tests.stack.files import github_anchors

# The oldest Kubernetes the manifests are written for (matchLabelKeys, unhealthyPodEvictionPolicy
# and sidecar-free probes need nothing newer), and the newest kubernetes-validate knows.
KUBERNETES_VERSIONS = ("1.29", kubernetes_validate.utils.latest_version())
SCHEMAS = Path(__file__).parent / "schemas"
CRD_SCHEMAS = {
    ("keda.sh/v1alpha1", "ScaledObject"): SCHEMAS / "scaledobject_v1alpha1.json",
    ("monitoring.coreos.com/v1", "PrometheusRule"): SCHEMAS / "prometheusrule_v1.json",
}
STRUCTURAL = {
    ("keda.sh/v1alpha1", "TriggerAuthentication"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
}
PROCESSOR = "sqs-metrics-exporter-processor"
API = "sqs-metrics-exporter-api"
EXPORTER_UID = 10001
# Variables the exporter reads besides its settings: boto3's, and the OpenTelemetry SDK's name.
OTHER_VARIABLES = {
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "OTEL_SERVICE_NAME",
}
SETTINGS_VARIABLES = {field.alias for field in Settings.model_fields.values() if field.alias}
# The OTLP exporter gives up on a flush after its default timeout (OTEL_EXPORTER_OTLP_TIMEOUT).
OTLP_TIMEOUT_SECONDS = 10


@pytest.fixture(name="overlay", params=OVERLAYS)
def fixture_overlay(request: pytest.FixtureRequest) -> list[Manifest]:
    """Every object of one overlay, rendered."""
    kubectl()
    return render(str(request.param))


def _strict_errors(manifest: Manifest, version: str) -> str | None:
    try:
        kubernetes_validate.validate(manifest, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        path = ".".join(str(part) for part in exc.path)
        return f"{manifest['kind']}/{manifest['metadata']['name']} at {path}: {exc.message}"
    return None


def _crd_errors(manifest: Manifest) -> list[str]:
    schema = json.loads(CRD_SCHEMAS[(manifest["apiVersion"], manifest["kind"])].read_text())
    validator = jsonschema.Draft202012Validator(schema)
    return [
        f"{'.'.join(str(p) for p in error.absolute_path)}: {error.message}"
        for error in validator.iter_errors(manifest)
    ]


# --- rendering and schemas ------------------------------------------------------------------------


def test_the_base_and_every_overlay_render() -> None:
    """kubectl kustomize renders the base and each overlay; each names its objects' namespace."""
    kubectl()
    assert render("base"), "the base renders nothing"
    for name in OVERLAYS:
        manifests = render(name)
        assert manifests, name
        for manifest in manifests:
            if manifest["kind"] != "Namespace":
                assert manifest["metadata"].get("namespace") == "sqs-metrics-exporter", (
                    f"{name}: {manifest['kind']}/{manifest['metadata']['name']} has no namespace"
                )


def test_built_in_objects_pass_the_kubernetes_schemas_strictly(overlay: list[Manifest]) -> None:
    """Every Deployment, Service, PDB, HPA... passes kubernetes-validate's strict schemas (no
    unknown field) for the oldest and the newest Kubernetes the manifests are written for."""
    built_in = [m for m in overlay if is_built_in(m)]
    assert built_in
    errors = [
        f"{version}: {error}"
        for version in KUBERNETES_VERSIONS
        for manifest in built_in
        if (error := _strict_errors(manifest, version)) is not None
    ]
    assert not errors, "\n".join(errors)


def test_the_strict_schemas_refuse_a_misspelt_field() -> None:
    """The check can fail: a misspelt probe in a Deployment, a port given as a word: refused."""
    deployment = copy.deepcopy(one(render("production"), "Deployment", PROCESSOR))
    spec = deployment["spec"]["template"]["spec"]["containers"][0]
    spec["readinessProbes"] = spec.pop("readinessProbe")
    assert _strict_errors(deployment, KUBERNETES_VERSIONS[0]) is not None
    service = copy.deepcopy(one(render("production"), "Service", API))
    service["spec"]["ports"][0]["port"] = "eight thousand"
    assert _strict_errors(service, KUBERNETES_VERSIONS[0]) is not None


def test_every_object_is_checked_by_a_schema_or_a_structural_check(
    overlay: list[Manifest],
) -> None:
    """No kind slips through: built-in, vendored CRD schema, or one of the structural checks."""
    for manifest in overlay:
        key = (manifest["apiVersion"], manifest["kind"])
        assert is_built_in(manifest) or key in CRD_SCHEMAS or key in STRUCTURAL, key


def test_custom_resources_pass_their_crd_schemas(overlay: list[Manifest]) -> None:
    """ScaledObject and PrometheusRule pass the openAPIV3Schema of their published CRDs
    (tests/k8s/schemas, unknown fields refused as the API server refuses them)."""
    custom = [m for m in overlay if (m["apiVersion"], m["kind"]) in CRD_SCHEMAS]
    errors = [f"{m['kind']}: {error}" for m in custom for error in _crd_errors(m)]
    assert not errors, "\n".join(errors)


def test_the_crd_schemas_refuse_a_misspelt_field() -> None:
    """The check can fail: a misspelt trigger field and a rule without expr are refused."""
    manifests = render("production")
    scaled = copy.deepcopy(one(manifests, "ScaledObject"))
    scaled["spec"]["triggers"][0]["authRef"] = scaled["spec"]["triggers"][0].pop(
        "authenticationRef"
    )
    assert _crd_errors(scaled)
    rule = copy.deepcopy(one(manifests, "PrometheusRule"))
    del rule["spec"]["groups"][0]["rules"][0]["expr"]
    assert _crd_errors(rule)


def test_trigger_authentication_structure() -> None:
    """Structural check of KEDA's TriggerAuthentication (its CRD schema is not vendored): pod
    identity through AWS, owned by the workload, with fields and values KEDA's CRD defines. It
    cannot see a misspelt field outside `spec.podIdentity`."""
    (auth,) = find(render("production"), "TriggerAuthentication")
    spec = auth["spec"]
    assert set(spec) == {"podIdentity"}, "credentials only from the pod identity, never keys"
    identity = spec["podIdentity"]
    assert set(identity) <= {"provider", "identityId", "roleArn", "identityOwner"}
    assert identity["provider"] == "aws"
    assert identity["identityOwner"] in {"keda", "workload"}
    assert not ("roleArn" in identity and "identityOwner" in identity), "mutually exclusive"
    scaled = one(render("production"), "ScaledObject")
    assert scaled["spec"]["triggers"][0]["authenticationRef"] == {"name": auth["metadata"]["name"]}


def test_service_monitor_structure(overlay: list[Manifest]) -> None:
    """Structural check of the ServiceMonitor (its CRD schema is not vendored): known fields,
    durations in the operator's format, and every endpoint names a port of a Service it selects.
    It cannot see fields the operator added after v0.80 nor validate TLS or authentication
    options (none are set)."""
    for monitor in find(overlay, "ServiceMonitor"):
        spec = monitor["spec"]
        assert set(spec) <= {"jobLabel", "selector", "endpoints", "namespaceSelector"}
        selector = spec["selector"]["matchLabels"]
        services = [
            s
            for s in find(overlay, "Service")
            if selector.items() <= s["metadata"]["labels"].items()
        ]
        assert {s["metadata"]["name"] for s in services} == {PROCESSOR, API}
        for service in services:
            assert spec["jobLabel"] in service["metadata"]["labels"]
        jobs = {s["metadata"]["labels"][spec["jobLabel"]] for s in services}
        assert jobs == {"processor", "api"}, "the alert rules select job=processor and job=api"
        ports = {p["name"] for s in services for p in s["spec"]["ports"]}
        duration = re.compile(r"^(0|(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$")
        for endpoint in spec["endpoints"]:
            assert set(endpoint) <= {"port", "path", "interval", "scrapeTimeout", "honorLabels"}
            assert endpoint["port"] in ports
            assert endpoint["path"] == "/metrics"
            assert duration.match(endpoint["interval"]), endpoint
            assert duration.match(endpoint["scrapeTimeout"]), endpoint


# --- objects agree with each other ----------------------------------------------------------------


def _ports(pod: Manifest) -> set[str]:
    return {port["name"] for c in pod["containers"] for port in c.get("ports", [])}


def test_selectors_ports_and_references_resolve(overlay: list[Manifest]) -> None:
    """Services, PDBs and autoscalers find their pods and ports; every ConfigMap, Secret and
    ServiceAccount a pod names exists, except the Secret production creates outside kustomize."""
    workloads = {
        m["metadata"]["name"]: m for m in overlay if m["kind"] in ("Deployment", "StatefulSet")
    }
    labels = {name: w["spec"]["template"]["metadata"]["labels"] for name, w in workloads.items()}
    for kind in ("Service", "PodDisruptionBudget"):
        for item in find(overlay, kind):
            selector = item["spec"]["selector"]
            selector = selector.get("matchLabels", selector)
            matched = [n for n, lab in labels.items() if selector.items() <= lab.items()]
            assert len(matched) == 1, f"{kind}/{item['metadata']['name']} selects {matched}"
            if kind == "Service":
                pod = workloads[matched[0]]["spec"]["template"]["spec"]
                for port in item["spec"]["ports"]:
                    assert port["targetPort"] in _ports(pod), port
    for name, pod in pod_templates(overlay):
        for c in pod["containers"]:
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                handler = c.get(probe, {})
                port = (handler.get("httpGet") or handler.get("tcpSocket") or {}).get("port")
                assert port is None or port in _ports(pod), f"{name} {probe} port {port}"
    names = {(m["kind"], m["metadata"]["name"]) for m in overlay}
    secrets_outside = not find(overlay, "Secret")
    for name, pod in pod_templates(overlay):
        if "serviceAccountName" in pod:
            assert ("ServiceAccount", pod["serviceAccountName"]) in names, name
        for c in pod["containers"]:
            for source in c.get("envFrom", []):
                assert ("ConfigMap", source["configMapRef"]["name"]) in names, name
            for variable in c.get("env", []):
                ref = variable.get("valueFrom", {}).get("secretKeyRef")
                if ref is not None and not secrets_outside:
                    (secret,) = find(overlay, "Secret", ref["name"])
                    assert ref["key"] in secret["data"] or ref.get("optional"), (name, ref)
    for scaler in find(overlay, "ScaledObject") + find(overlay, "HorizontalPodAutoscaler"):
        target = scaler["spec"]["scaleTargetRef"]["name"]
        assert ("Deployment", target) in names, target


def test_exporter_variables_are_settings_with_valid_values(overlay: list[Manifest]) -> None:
    """Every variable given to the exporter is one it reads, and the values pass the settings'
    own validation (as `exporter` would at start)."""
    data = config_map_data(overlay)
    known = SETTINGS_VARIABLES | OTHER_VARIABLES
    assert not set(data) - known, f"nothing reads {sorted(set(data) - known)}"
    for deployment in (PROCESSOR, API):
        env = {v["name"]: v.get("value") for v in container(overlay, deployment).get("env", [])}
        assert not set(env) - known, f"{deployment}: nothing reads {sorted(set(env) - known)}"
        given = {k: v for k, v in {**data, **env}.items() if k in SETTINGS_VARIABLES and v}
        Settings(**given)  # raises on a bad value, naming it


def test_processor_termination_outlasts_its_drain(overlay: list[Manifest]) -> None:
    """On SIGTERM every long poll returns before the shutdown deadline, and the kubelet waits for
    the deadline plus the span flush before it kills; the API outlasts its preStop pause."""
    data = config_map_data(overlay)
    shutdown = float(data["EXPORTER_SHUTDOWN_TIMEOUT_SECONDS"])
    assert shutdown > int(data["SQS_WAIT_TIME_SECONDS"])
    processor = one(overlay, "Deployment", PROCESSOR)["spec"]["template"]["spec"]
    assert processor["terminationGracePeriodSeconds"] >= shutdown + OTLP_TIMEOUT_SECONDS + 5
    api = one(overlay, "Deployment", API)["spec"]["template"]["spec"]
    pause = int(api["containers"][0]["lifecycle"]["preStop"]["exec"]["command"][1])
    assert api["terminationGracePeriodSeconds"] >= pause + 10
    rollout = one(overlay, "Deployment", PROCESSOR)["spec"]["strategy"]["rollingUpdate"]
    assert rollout["maxUnavailable"] == 0, "a rollout never lowers the consuming capacity"


def test_every_pod_is_restricted(overlay: list[Manifest]) -> None:
    """Every pod passes Pod Security "restricted" and more: non-root, RuntimeDefault seccomp, no
    privilege escalation, all capabilities dropped, read-only root, memory requested and bounded;
    the exporter runs as the image's own uid."""
    for name, pod in pod_templates(overlay):
        context = pod["securityContext"]
        assert context["runAsNonRoot"] is True, name
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert pod.get("automountServiceAccountToken") is False, name
        for c in pod["containers"]:
            security = c["securityContext"]
            assert security["allowPrivilegeEscalation"] is False, name
            assert security["readOnlyRootFilesystem"] is True, name
            assert security["capabilities"] == {"drop": ["ALL"]}, name
            assert {"cpu", "memory"} <= set(c["resources"]["requests"]), name
            assert "memory" in c["resources"]["limits"], name
        if name in (PROCESSOR, API):
            assert context["runAsUser"] == EXPORTER_UID, name
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert f"USER {EXPORTER_UID}:{EXPORTER_UID}" in dockerfile


def test_only_processors_get_aws_access_and_production_holds_no_keys() -> None:
    """Production carries no Secret and no AWS key anywhere: the processors' ServiceAccount names
    an IAM role (IRSA), the API's none; the API alone is given the admin token."""
    for name in ("production", "production-hpa"):
        manifests = render(name)
        assert not find(manifests, "Secret"), f"{name} must not carry secrets"
        text = yaml.safe_dump_all(manifests)
        assert "AWS_ACCESS_KEY_ID" not in text
        assert "AWS_SECRET_ACCESS_KEY" not in text
        processor_sa = one(manifests, "ServiceAccount", PROCESSOR)
        role = processor_sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
        assert re.fullmatch(r"arn:aws:iam::\d{12}:role/[\w+=,.@-]+", role), role
        assert "annotations" not in one(manifests, "ServiceAccount", API)["metadata"]
        assert config_map_data(manifests)["EXPORTER_CREATE_QUEUES"] == "false"
    for name in OVERLAYS:
        manifests = render(name)
        env = {v["name"] for v in container(manifests, PROCESSOR).get("env", [])}
        assert "EXPORTER_ADMIN_TOKEN" not in env, "the reset token stays with the API"
        assert "EXPORTER_ADMIN_TOKEN" in {v["name"] for v in container(manifests, API)["env"]}


def test_keda_and_the_hpa_scale_the_same_way() -> None:
    """Both autoscalers: the same bounds and messages per replica; KEDA reads the processors' own
    queue URL and region, and the HPA the adapter rule's metric."""
    keda_overlay = render("production")
    scaled = one(keda_overlay, "ScaledObject")["spec"]
    hpa = one(render("production-hpa"), "HorizontalPodAutoscaler")["spec"]
    trigger = scaled["triggers"][0]
    assert trigger["type"] == "aws-sqs-queue"
    metadata = trigger["metadata"]
    data = config_map_data(keda_overlay)
    assert metadata["queueURLFromEnv"] in data
    assert metadata["awsRegion"] == data["AWS_DEFAULT_REGION"]
    assert f".{data['AWS_DEFAULT_REGION']}." in data[metadata["queueURLFromEnv"]]
    assert metadata["scaleOnInFlight"] == "true"
    (metric,) = hpa["metrics"]
    assert metric["external"]["target"]["averageValue"] == metadata["queueLength"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (
        scaled["minReplicaCount"],
        scaled["maxReplicaCount"],
    )
    assert hpa["behavior"] == scaled["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    rules = yaml.safe_load(
        (KUBERNETES / "components/hpa/prometheus-adapter-rules.yaml").read_text()
    )
    (rule,) = rules["rules"]["external"]
    assert rule["name"]["as"] == metric["external"]["metric"]["name"]
    assert find(keda_overlay, "HorizontalPodAutoscaler") == [], "KEDA makes its own HPA"


def test_images_are_the_repository_targets_at_the_project_version() -> None:
    """Production runs the runtime image at the project's version; the local overlay the two
    targets under the tags its instructions build and load."""
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    for name in ("production", "production-hpa"):
        manifests = render(name)
        for deployment in (PROCESSOR, API):
            image = container(manifests, deployment)["image"]
            assert image.endswith(f"/sqs-metrics-exporter:{version}"), image
    local = render("local")
    images: dict[str, Any] = {
        workload: pod["containers"][0]["image"] for workload, pod in pod_templates(local)
    }
    assert images[PROCESSOR] == images[API] == "sqs-metrics-exporter:local"
    assert images["sqs"] == images["producer"] == "sqs-metrics-exporter-demo:local"
    instructions = (KUBERNETES / "overlays/local/kustomization.yaml").read_text()
    assert "docker build -t sqs-metrics-exporter:local ." in instructions
    assert "docker build --target demo -t sqs-metrics-exporter-demo:local ." in instructions


def test_docs_the_manifests_cite_exist() -> None:
    """Every docs/<file>.md#anchor a manifest's comment cites names an existing heading."""
    cited = {
        (match.group(1), match.group(2))
        for path in KUBERNETES.rglob("*.yaml")
        for match in re.finditer(r"docs/([\w-]+\.md)#([\w-]+)", path.read_text())
    }
    assert cited
    for doc, anchor in cited:
        assert anchor in github_anchors((ROOT / "docs" / doc).read_text()), f"{doc}#{anchor}"


def test_queue_creation_is_on_only_where_the_queues_are_throwaway() -> None:
    """Queue creation is off by default: the local overlay (an emulator that starts empty) turns
    it on, production says off, and the base leaves the default."""
    assert config_map_data(render("local"))["EXPORTER_CREATE_QUEUES"] == "true"
    assert "EXPORTER_CREATE_QUEUES" not in config_map_data(render("base"))
    for name in ("production", "production-hpa"):
        assert config_map_data(render(name))["EXPORTER_CREATE_QUEUES"] == "false"
