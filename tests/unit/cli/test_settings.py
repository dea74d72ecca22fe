"""Settings: environment, flags over environment, and configuration errors that name the setting."""

from __future__ import annotations

import pytest

from exporter.settings import ConfigurationError, Settings, env_name, load_settings
from tests.exporter_process import run_exporter
from tests.queue_names import dlq_name_of


def test_defaults_match_the_documented_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    """With no environment, the defaults are those the issue and the docs promise."""
    for field in Settings.model_fields:
        monkeypatch.delenv(env_name(field), raising=False)
    settings = load_settings()
    assert settings.redis_url == "redis://localhost:6379/0"
    assert settings.sqs_queue_name == "events"
    assert dlq_name_of(settings) == "events-dlq"
    assert (settings.api_port, settings.metrics_port) == (8000, 9108)
    assert settings.admin_token is None
    assert settings.sqs_wait_time_seconds == 20
    assert settings.max_event_types == 1000


def test_environment_is_read_and_flags_win(monkeypatch: pytest.MonkeyPatch) -> None:
    """Variables are read at load time (not import time); explicit values override them."""
    monkeypatch.setenv("SQS_QUEUE_NAME", "orders")
    monkeypatch.setenv("EXPORTER_API_PORT", "8080")
    monkeypatch.setenv("EXPORTER_ADMIN_TOKEN", "s3cret")
    settings = load_settings(api_port=9000)
    assert settings.sqs_queue_name == "orders"
    assert dlq_name_of(settings) == "orders-dlq"
    assert settings.api_port == 9000
    assert settings.admin_token is not None
    assert settings.admin_token.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(settings)


def test_the_dead_letter_queue_is_named_after_the_queue_url_when_one_is_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SQS_QUEUE_URL overrides the name, so the default DLQ name follows the URL's queue."""
    monkeypatch.setenv("SQS_QUEUE_URL", "https://sqs.eu-west-1.amazonaws.com/123456789012/orders")
    assert dlq_name_of(load_settings()) == "orders-dlq"
    assert dlq_name_of(load_settings(sqs_dlq_name="orders-dead")) == "orders-dead"
    monkeypatch.delenv("SQS_QUEUE_URL")
    assert dlq_name_of(load_settings(sqs_queue_name="payments")) == "payments-dlq"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("EXPORTER_API_PORT", "eighty"),
        ("EXPORTER_API_PORT", "70000"),
        ("SQS_WAIT_TIME_SECONDS", "21"),
        ("EXPORTER_MAX_MESSAGE_BYTES", "10000000"),
        ("EXPORTER_LOG_FORMAT", "xml"),
        ("EXPORTER_REDIS_PREFIX", "has space"),
        ("EXPORTER_CONCURRENCY", "0"),
        ("EXPORTER_DIMENSIONS", "Country"),
        ("EXPORTER_DIMENSIONS", "type"),
        ("EXPORTER_DIMENSIONS", "country,country"),
        ("EXPORTER_DIMENSIONS", "a,b,c,d,e,f,g,h,i"),
        ("EXPORTER_MAX_DIMENSION_VALUES", "0"),
        ("EXPORTER_MAX_DIMENSION_COMBINATIONS", "100001"),
        ("EXPORTER_VALUE_BUCKETS", "10,5"),
        ("EXPORTER_VALUE_BUCKETS", "1,inf"),
        ("EXPORTER_VALUE_BUCKETS", "one,two"),
        ("EXPORTER_VALUE_BUCKETS", ",".join(str(n) for n in range(41))),
    ],
)
def test_invalid_values_fail_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    """A bad value fails at once, and the message names the environment variable."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError, match=variable):
        load_settings()


def test_cli_reports_bad_configuration_in_one_line() -> None:
    """The command exits 2 with one line naming the setting, not a traceback."""
    result = run_exporter(
        ["api"], {"EXPORTER_API_PORT": "eighty", "PATH": "/usr/bin:/bin"}, inherit=False, timeout=60
    )
    assert result.returncode == 2
    assert "EXPORTER_API_PORT" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("command", "flag", "variable"),
    [
        ("processor", "--dimensions=__id", "EXPORTER_DIMENSIONS"),
        ("api", "--value-buckets=5,1", "EXPORTER_VALUE_BUCKETS"),
        ("demo", "--max-dimension-values=0", "EXPORTER_MAX_DIMENSION_VALUES"),
    ],
)
def test_dimension_and_bucket_settings_stop_each_command_in_one_line(
    command: str, flag: str, variable: str
) -> None:
    """A bad dimension or bucket setting, as a flag, exits 2 naming its variable, before anything
    starts, on every command that reads it."""
    result = run_exporter([command, flag], {"PATH": "/usr/bin:/bin"}, inherit=False, timeout=60)
    assert result.returncode == 2, result.stderr
    assert variable in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_dimensions_and_buckets_are_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Names are sorted (one configuration whatever the order), buckets may be turned off."""
    monkeypatch.setenv("EXPORTER_DIMENSIONS", "country, channel")
    monkeypatch.setenv("EXPORTER_VALUE_BUCKETS", "")
    settings = load_settings()
    assert settings.dimensions == ("channel", "country")
    assert settings.value_buckets == ()
    monkeypatch.delenv("EXPORTER_DIMENSIONS")
    monkeypatch.delenv("EXPORTER_VALUE_BUCKETS")
    defaults = load_settings()
    assert defaults.dimensions == ()
    assert defaults.value_buckets[:3] == (1.0, 2.0, 5.0)
    assert (defaults.max_dimension_values, defaults.max_dimension_combinations) == (250, 1000)
