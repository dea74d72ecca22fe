"""Which variables are read, which are named as strays, and which settings a command checks."""

from __future__ import annotations

import pytest

from exporter.cli import api, demo, dlq, processor, produce
from exporter.settings import ConfigurationError, Settings, env_name, load_settings, stray_variables
from exporter.stray_variables import is_service_link, strays

DOCUMENTED = {env_name(field) for field in Settings.model_fields}


def _messages(environ: dict[str, str]) -> list[str]:
    return [stray.message for stray in stray_variables(environ)]


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ADMIN_TOKEN", "sneaky"),
        ("admin_token", "sneaky"),
        ("exporter_admin_token", "sneaky"),
        ("Exporter_Admin_Token", "sneaky"),
    ],
)
def test_only_the_documented_name_is_read(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    """A field's own name, or the documented name in another case, sets nothing."""
    monkeypatch.delenv("EXPORTER_ADMIN_TOKEN", raising=False)
    monkeypatch.setenv(variable, value)
    assert load_settings().admin_token is None


def test_a_field_name_that_cannot_parse_fails_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """LOG_LEVEL=debug used to fail naming EXPORTER_LOG_LEVEL, a name never set; it is ignored."""
    monkeypatch.delenv("EXPORTER_LOG_LEVEL", raising=False)
    monkeypatch.setenv("LOG_LEVEL", "loud")
    assert load_settings().log_level == "INFO"


def test_keywords_by_field_name_and_by_variable_both_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's flags give field names, the manifests' checks give variable names; both load,
    and a keyword wins over the environment."""
    monkeypatch.setenv("EXPORTER_API_PORT", "8080")
    assert load_settings(api_port=9000).api_port == 9000
    assert Settings(EXPORTER_API_PORT=9001).api_port == 9001
    assert Settings().api_port == 8080


@pytest.mark.parametrize(
    ("variable", "value", "field", "expected"),
    [
        ("EXPORTER_LOG_LEVEL", "debug", "log_level", "DEBUG"),
        ("EXPORTER_LOG_LEVEL", "Warning", "log_level", "WARNING"),
        ("EXPORTER_LOG_FORMAT", "JSON", "log_format", "json"),
    ],
)
def test_a_choice_is_read_in_any_case(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, field: str, expected: str
) -> None:
    """The value of a choice may be written in any case; the name of the variable may not."""
    monkeypatch.setenv(variable, value)
    assert getattr(load_settings(), field) == expected


def test_a_command_checks_only_the_settings_it_uses(monkeypatch: pytest.MonkeyPatch) -> None:
    """EXPORTER_CONCURRENCY=0: the API, which has no pollers, loads with the default; the
    processor fails naming it, and the API names only its own bad settings."""
    monkeypatch.setenv("EXPORTER_CONCURRENCY", "0")
    assert load_settings(api.SETTINGS).concurrency == 4
    with pytest.raises(ConfigurationError, match="EXPORTER_CONCURRENCY"):
        load_settings(processor.SETTINGS)
    monkeypatch.setenv("EXPORTER_API_PORT", "eighty")
    with pytest.raises(ConfigurationError) as refused:
        load_settings(api.SETTINGS)
    assert "EXPORTER_API_PORT" in str(refused.value)
    assert "EXPORTER_CONCURRENCY" not in str(refused.value)


@pytest.mark.parametrize("command", [api, demo, dlq, processor, produce])
def test_a_bad_value_of_a_setting_no_command_lists_is_never_checked_by_it(
    monkeypatch: pytest.MonkeyPatch, command: object
) -> None:
    """Every setting a command does not list may hold any value: that command still loads."""
    listed = set(getattr(command, "SETTINGS", ()))
    for field, info in Settings.model_fields.items():
        if field not in listed and info.annotation in (int, float, bool):
            monkeypatch.setenv(env_name(field), "not a value")
    load_settings(listed)


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"REDIS_ULR": "redis://x"}, "REDIS_ULR is not a setting; did you mean REDIS_URL?"),
        (
            {"EXPORTER_CONCURENCY": "8"},
            "EXPORTER_CONCURENCY is not a setting; did you mean EXPORTER_CONCURRENCY?",
        ),
        ({"SQS_DLQ": "dead"}, "SQS_DLQ is not a setting; did you mean SQS_DLQ_NAME?"),
        ({"redis_url": "redis://x"}, "redis_url is not a setting; did you mean REDIS_URL?"),
        (
            {"EXPORTER_METRIC_PORT": "9108"},
            "EXPORTER_METRIC_PORT is not a setting; did you mean EXPORTER_METRICS_PORT?",
        ),
        (
            {"CONCURRENCY": "8"},
            "CONCURRENCY is not a setting; did you mean EXPORTER_CONCURRENCY?",
        ),
        (
            {"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "us-east-1"},
            "AWS_REGION is not a setting; did you mean AWS_DEFAULT_REGION?",
        ),
        (
            {"EXPORTER_FROBNICATE": "1"},
            "EXPORTER_FROBNICATE is not a setting (docs/configuration.md lists them)",
        ),
    ],
)
def test_a_stray_variable_is_named_with_the_closest_setting(
    environ: dict[str, str], expected: str
) -> None:
    """A misspelt name, another case, or a name only older versions read: one message each."""
    assert _messages(environ) == [expected]


@pytest.mark.parametrize(
    "environ",
    [
        {"REDIS_PORT": "tcp://10.96.0.12:6379", "REDIS_SERVICE_HOST": "10.96.0.12"},
        {"REDIS_SERVICE_PORT": "6379", "REDIS_SERVICE_PORT_REDIS": "6379"},
        {"REDIS_PORT_6379_TCP": "tcp://10.96.0.12:6379", "REDIS_PORT_6379_TCP_ADDR": "10.0.0.1"},
        {"REDIS_PORT_6379_TCP_PROTO": "tcp", "REDIS_PORT_6379_TCP_PORT": "6379"},
        {"SQS_PORT": "tcp://10.96.0.20:5000", "SQS_PORT_5000_UDP_ADDR": "10.96.0.20"},
        {"EXPORTER_TEST_TIMEOUT_SCALE": "3", "EXPORTER_STACK_ENGINE": "podman"},
        {"EXPORTER_PODMAN_COMPOSE": "/usr/bin/podman-compose"},
        {"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "eu-west-1"},
        {"PATH": "/usr/bin", "HOME": "/root", "OTEL_SERVICE_NAME": "x"},
        dict.fromkeys(DOCUMENTED, ""),
    ],
)
def test_variables_present_for_a_good_reason_are_not_named(environ: dict[str, str]) -> None:
    """Service links, the test suite's knobs, the platform's AWS_REGION beside an equal
    AWS_DEFAULT_REGION, other programs' variables and every setting itself draw no warning."""
    assert _messages(environ) == []


def test_only_a_bare_port_variable_with_a_link_value_is_a_service_link() -> None:
    """X_PORT is Kubernetes' when it reads tcp://host:port; with a number it is a typo's."""
    assert is_service_link("EXPORTER_METRIC_PORT", "tcp://10.0.0.1:9108")
    assert not is_service_link("EXPORTER_METRIC_PORT", "9108")
    assert strays({"X_PORT": "1"}, {"X_URL"}, {}) == []  # not one of our prefixes
