"""The compose file: valid by the Compose Specification, and consistent with the code it runs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk import environment_variables as otel_variables

from exporter.cli import build_parser
from exporter.settings import Settings
from tests.stack.files import (
    COMPOSE,
    DASHBOARD_PROVIDERS,
    DATASOURCES,
    DEMO_IMAGE,
    EXPORTER_IMAGE,
    PROMETHEUS_CONFIG,
    ROOT,
    compose_services,
    exporter_services,
    load_yaml,
)

CHECK_JSONSCHEMA = str(Path(sys.executable).parent / "check-jsonschema")

# The standard variables boto3 reads; the exporter's own settings name them too where it uses them.
AWS_VARIABLES = {
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
}
# Variables the OpenTelemetry SDK itself reads (exporter.tracing hands configuration to the SDK).
OTEL_VARIABLES = {
    value
    for name, value in vars(otel_variables).items()
    if name.startswith("OTEL_") and isinstance(value, str)
}
SETTINGS_VARIABLES = {field.alias for field in Settings.model_fields.values() if field.alias}
# Services whose image has no way to run a health probe; the compose file says why at each.
NO_HEALTHCHECK = {"producer", "otel-collector"}


def _validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CHECK_JSONSCHEMA, "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def _environment(service: dict[str, Any]) -> dict[str, Any]:
    environment: dict[str, Any] = service.get("environment", {})
    assert isinstance(environment, dict), "use the mapping form of environment"
    return environment


def test_compose_file_is_valid_by_the_compose_specification(tmp_path: Path) -> None:
    """check-jsonschema's vendored Compose Specification accepts the file and rejects a typo."""
    result = _validate(COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr
    broken = tmp_path / "docker-compose.yaml"
    typo = COMPOSE.read_text().replace("      replicas: 2", "      replica: 2")
    broken.write_text(typo)
    assert broken.read_text() != COMPOSE.read_text(), "the processor's deploy block moved"
    assert _validate(broken).returncode != 0, "the schema check would not catch a typo"


def test_every_image_is_pinned_by_a_tag() -> None:
    """Every third-party image names an explicit version tag, never latest."""
    for name, service in compose_services().items():
        image = service["image"]
        if "build" in service:
            continue  # our own image, built from this repository
        repository, _, tag = image.rpartition(":")
        assert repository, f"{name}: image {image} has no tag"
        assert tag != "latest", f"{name}: image {image} is not pinned"
        assert any(ch.isdigit() for ch in tag), f"{name}: tag {tag} names no version"


def test_every_exporter_command_parses_with_the_real_cli() -> None:
    """Each exporter service's command is accepted by `exporter`'s own argument parser."""
    parser = build_parser()
    services = exporter_services()
    assert set(services) == {"processor", "api", "producer"}
    for name, service in services.items():
        command = service["command"]
        try:
            args = parser.parse_args(command)
        except SystemExit:
            pytest.fail(f"{name}: `exporter {' '.join(command)}` is rejected by the CLI")
        assert args.command == command[0]


def test_production_roles_run_the_slim_image_and_demo_roles_the_demo_target() -> None:
    """Processors and the API run the runtime target (no moto); the SQS emulator and the producer
    the demo target, the emulator being moto's server from it (the release uv.lock pins)."""
    services = compose_services()
    for name in ("processor", "api"):
        assert services[name]["image"] == EXPORTER_IMAGE, name
        assert services[name]["build"] == {"context": ".", "target": "runtime"}, name
    for name in ("sqs", "producer"):
        assert services[name]["image"] == DEMO_IMAGE, name
        assert services[name]["build"] == {"context": ".", "target": "demo"}, name
    assert services["sqs"]["entrypoint"] == ["moto_server"]
    assert services["sqs"]["command"][-2:] == ["-p", "5000"]
    assert "http://sqs:5000" in {
        _environment(service).get("AWS_ENDPOINT_URL") for service in exporter_services().values()
    }


def test_every_exporter_variable_is_one_the_settings_or_sdks_read() -> None:
    """Variables given to the exporter are settings aliases, AWS or OpenTelemetry ones."""
    known = SETTINGS_VARIABLES | AWS_VARIABLES | OTEL_VARIABLES
    for name, service in exporter_services().items():
        unknown = set(_environment(service)) - known
        assert not unknown, f"{name}: nothing reads {sorted(unknown)}"


# Compose's interpolation with a default: `${NAME-default}` and `${NAME:-default}`.
_WITH_DEFAULT = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*:?-([^}]*)\}")


def _as_compose_gives(value: Any) -> Any:
    """A value as compose passes it when none of the variables it names is set."""
    return (
        _WITH_DEFAULT.sub(lambda match: match.group(1), value) if isinstance(value, str) else value
    )


def test_compose_defaults_are_read_as_compose_reads_them() -> None:
    """The interpolation above gives the defaults, and leaves a plain value alone."""
    assert _as_compose_gives("${EXPORTER_DIMENSIONS-country,channel}") == "country,channel"
    assert _as_compose_gives("${GRAFANA_ADMIN_PASSWORD:-admin}") == "admin"
    assert _as_compose_gives("redis://redis:6379/0") == "redis://redis:6379/0"


def test_settings_given_in_compose_are_valid_values() -> None:
    """The values the compose file sets, with its defaults for variables the user may set,
    pass the settings' own validation."""
    for name, service in exporter_services().items():
        given = {
            key: _as_compose_gives(value)
            for key, value in _environment(service).items()
            if key in SETTINGS_VARIABLES and value is not None
        }
        Settings(**given)  # raises on a bad value, naming it
        assert given, f"{name} sets no settings"


def test_processor_scales_without_fixed_names_or_host_ports() -> None:
    """Processors run two replicas by default and `--scale processor=N` can add more."""
    processor = compose_services()["processor"]
    assert processor["deploy"]["replicas"] == 2
    assert "container_name" not in processor
    assert "ports" not in processor


def test_redis_fsyncs_every_write_to_its_append_only_file() -> None:
    """Redis runs with appendonly and appendfsync always, on a named volume."""
    redis = compose_services()["redis"]
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--appendfsync") + 1] == "always"
    assert any(volume.endswith(":/data") for volume in redis["volumes"])


def test_every_service_is_health_checked_and_waited_for() -> None:
    """Each service has a healthcheck (or says why not) and depends_on names a condition."""
    services = compose_services()
    for name, service in services.items():
        healthcheck = service.get("healthcheck")
        if name in NO_HEALTHCHECK:
            assert healthcheck == {"disable": True}, name
        else:
            assert healthcheck, f"{name} has no healthcheck"
            assert healthcheck["test"], f"{name} has no healthcheck"
        for dependency, spec in service.get("depends_on", {}).items():
            assert spec["condition"] in {"service_healthy", "service_started"}, name
            if spec["condition"] == "service_started":
                continue
            assert dependency not in NO_HEALTHCHECK, f"{name} waits on {dependency}'s health"


def test_tracing_is_a_profile_and_off_unless_asked_for() -> None:
    """Collector and Jaeger run only under the tracing profile; the endpoint is passed through."""
    services = compose_services()
    assert services["otel-collector"]["profiles"] == ["tracing"]
    assert services["jaeger"]["profiles"] == ["tracing"]
    for name, service in exporter_services().items():
        # A null value passes the variable through from the shell: unset there, unset here.
        assert _environment(service)["OTEL_EXPORTER_OTLP_ENDPOINT"] is None, name
    collector = load_yaml(ROOT / "otel" / "collector.yaml")
    assert collector["receivers"]["otlp"]["protocols"]["http"]["endpoint"].endswith(":4318")
    assert "OTEL_EXPORTER_OTLP_ENDPOINT=http://otel-collector:4318" in COMPOSE.read_text()


def test_ports_and_paths_match_the_code_and_prometheus() -> None:
    """Metrics and API ports in compose and Prometheus are the settings' defaults and values."""
    services = compose_services()
    metrics_port = Settings.model_fields["metrics_port"].default
    api_port = Settings.model_fields["api_port"].default
    assert (metrics_port, api_port) == (9108, 8000)
    assert int(_environment(services["processor"])["EXPORTER_METRICS_PORT"]) == metrics_port
    assert int(_environment(services["api"])["EXPORTER_API_PORT"]) == api_port
    assert services["api"]["ports"] == [f"{api_port}:{api_port}"]

    jobs = {job["job_name"]: job for job in load_yaml(PROMETHEUS_CONFIG)["scrape_configs"]}
    for job_name, port in (("processor", metrics_port), ("api", api_port)):
        job = jobs[job_name]
        assert job["metrics_path"] == "/metrics"
        (discovery,) = job["dns_sd_configs"]
        # DNS names are the compose service names, which resolve to every replica.
        assert discovery == {**discovery, "names": [job_name], "type": "A", "port": port}
        assert job_name in services


def test_prometheus_and_grafana_mounts_point_at_the_repository_files() -> None:
    """The containers read this repository's config, rules and dashboards where they expect them."""
    services = compose_services()
    prometheus = services["prometheus"]
    assert "./prometheus:/etc/prometheus:ro" in prometheus["volumes"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    assert "--enable-feature=exemplar-storage" in prometheus["command"]
    for rule_file in load_yaml(PROMETHEUS_CONFIG)["rule_files"]:
        assert (PROMETHEUS_CONFIG.parent / rule_file).is_file(), rule_file

    grafana = services["grafana"]
    binds = [volume.split(":") for volume in grafana["volumes"] if volume.startswith(".")]
    mounts = {source: target for source, target, *_ in binds}
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"
    (provider,) = load_yaml(DASHBOARD_PROVIDERS)["providers"]
    assert mounts["./grafana/dashboards"] == provider["options"]["path"]
    home = _environment(grafana)["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (ROOT / "grafana" / "dashboards" / Path(home).name).is_file()
    assert _environment(grafana)["GF_AUTH_ANONYMOUS_ENABLED"] == "true"
    assert _environment(grafana)["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"

    sources = {source["uid"]: source for source in load_yaml(DATASOURCES)["datasources"]}
    assert sources["prometheus"]["url"] == "http://prometheus:9090"
    assert "9090:9090" in prometheus["ports"]
    assert sources["jaeger"]["url"] == "http://jaeger:16686"
