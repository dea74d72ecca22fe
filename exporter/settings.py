"""Every setting of the exporter, read from the environment once, at start-up, by the CLI."""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from typing import Annotated, Any, Literal

from annotated_types import Ge, Gt, Le, Lt
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from exporter.events import DEFAULT_MAX_MESSAGE_BYTES, checked_dimension_names
from exporter.store import DEFAULT_DEDUPE_WINDOW_SECONDS, DEFAULT_MAX_TYPES
from exporter.store.detail import DEFAULT_MAX_DIMENSION_COMBINATIONS, DEFAULT_MAX_DIMENSION_VALUES
from exporter.store.histograms import DEFAULT_VALUE_BUCKETS, parse_bounds
from exporter.store.series import DEFAULT_SERIES_RETENTION_SECONDS, HOUR
from exporter.stray_variables import Stray, strays

# SQS refuses bodies over 256 KiB, so a larger limit could never be reached.
SQS_MAX_BODY_BYTES = 256 * 1024
ALL_INTERFACES = "0.0.0.0"  # noqa: S104 - exporters are scraped from other hosts and containers


class Settings(BaseSettings):
    """Configuration; each field's alias is its environment variable, and the CLI adds a flag.

    The environment is read under those documented names only, exactly as written (decision
    0016); a field's own name is accepted as a keyword (the CLI's flags), never as a variable.
    """

    model_config = SettingsConfigDict(
        case_sensitive=True,
        extra="ignore",
        populate_by_name=True,
        frozen=True,
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Keywords first, then the documented variables; pydantic-settings' own environment
        source would also read each field's name, in any case (`ADMIN_TOKEN` set the token)."""
        del env_settings, dotenv_settings, file_secret_settings
        return (init_settings, _DocumentedVariables(settings_cls))

    redis_url: str = Field(
        "redis://localhost:6379/0",
        alias="REDIS_URL",
        description="Redis that holds the totals (redis://, rediss:// or unix://); several "
        "nodes of a Redis Cluster may be listed, separated by commas.",
    )
    redis_prefix: str = Field(
        "exporter",
        alias="EXPORTER_REDIS_PREFIX",
        pattern=r"^[A-Za-z0-9_.:-]{1,64}$",
        description="Prefix (and cluster hash tag) of every Redis key.",
    )
    redis_shards: int = Field(
        1,
        alias="EXPORTER_REDIS_SHARDS",
        ge=1,
        le=1024,
        description="Shards (cluster hash tags) each batch is spread over; recorded in Redis, "
        "and every process of one deployment must use the recorded value.",
    )
    redis_min_replicas: int = Field(
        0,
        alias="EXPORTER_REDIS_MIN_REPLICAS",
        ge=0,
        le=16,
        description="Replicas that must acknowledge a batch's writes (WAIT) before it is "
        "deleted from SQS; 0 does not wait.",
    )
    redis_replica_timeout_ms: int = Field(
        1000,
        alias="EXPORTER_REDIS_REPLICA_TIMEOUT_MS",
        ge=1,
        le=60_000,
        description="How long a batch waits for EXPORTER_REDIS_MIN_REPLICAS acknowledgements; "
        "without them the batch is not deleted and SQS redelivers it.",
    )
    redis_tls_ca_file: str | None = Field(
        None,
        alias="EXPORTER_REDIS_TLS_CA_FILE",
        description="CA bundle (PEM) that Redis's certificate must chain to, for rediss:// "
        "(unset: the system's CA certificates); the CA of a private certificate authority.",
    )
    redis_tls_cert_file: str | None = Field(
        None,
        alias="EXPORTER_REDIS_TLS_CERT_FILE",
        description="Client certificate (PEM) for a Redis that requires one (mutual TLS: "
        "tls-auth-clients), with EXPORTER_REDIS_TLS_KEY_FILE.",
    )
    redis_tls_key_file: str | None = Field(
        None,
        alias="EXPORTER_REDIS_TLS_KEY_FILE",
        description="Private key (PEM, unencrypted) of EXPORTER_REDIS_TLS_CERT_FILE; unset when "
        "that file holds the key too.",
    )
    redis_allow_eviction: bool = Field(
        False,
        alias="EXPORTER_REDIS_ALLOW_EVICTION",
        description="Run on a Redis whose maxmemory-policy may evict keys (anything but "
        "noeviction; volatile-* evicts the remembered identities): totals and de-duplication "
        "may then silently go wrong. Off: such a Redis is refused at start-up.",
    )
    startup_timeout_seconds: float = Field(
        60.0,
        alias="EXPORTER_STARTUP_TIMEOUT_SECONDS",
        ge=0,
        le=86_400,
        description="How long a processor waits at start-up for SQS, then for Redis (the API: "
        "Redis), to first answer before exiting 1 (0: wait for ever); what they refuse "
        "(keys, a queue, a password, a database) exits 2 at once. Once reached, losing either "
        "only pauses.",
    )
    sqs_queue_name: str = Field(
        "events", alias="SQS_QUEUE_NAME", min_length=1, description="Name of the event queue."
    )
    sqs_queue_url: str | None = Field(
        None, alias="SQS_QUEUE_URL", description="URL of the event queue; overrides the name."
    )
    # NoDecode: a comma-separated list, not the JSON pydantic-settings expects of a tuple.
    sqs_queue_urls: Annotated[tuple[str, ...], NoDecode] = Field(
        (),
        alias="SQS_QUEUE_URLS",
        description="URLs of more queues to read, comma-separated (the flag may also be "
        "repeated); each has its own pollers and dead-letter queue. With SQS_QUEUE_URL, both "
        "are read; SQS_QUEUE_NAME is then unused.",
    )
    sqs_dlq_name: str | None = Field(
        None,
        alias="SQS_DLQ_NAME",
        description="Name of the dead-letter queue, shared by every queue read (default: each "
        "queue's redrive policy's, else <queue name>-dlq, or <base>-dlq.fifo for a FIFO queue).",
    )
    aws_endpoint_url: str | None = Field(
        None,
        alias="AWS_ENDPOINT_URL",
        description="SQS endpoint for emulators such as LocalStack or moto (unset: AWS).",
    )
    aws_region: str = Field("us-east-1", alias="AWS_DEFAULT_REGION", description="AWS region.")
    sqs_wait_time_seconds: int = Field(
        20,
        alias="SQS_WAIT_TIME_SECONDS",
        ge=0,
        le=20,
        description="Long-poll wait of each receive, in seconds.",
    )
    visibility_timeout_seconds: int = Field(
        30,
        alias="EXPORTER_VISIBILITY_TIMEOUT_SECONDS",
        ge=5,
        le=43200,
        description="Visibility timeout of received messages; extended while a batch is slow.",
    )
    max_receive_count: int = Field(
        5,
        alias="EXPORTER_MAX_RECEIVE_COUNT",
        ge=1,
        le=1000,
        description="Receives before SQS moves a message to the dead-letter queue by itself.",
    )
    create_queues: bool = Field(
        False,
        alias="EXPORTER_CREATE_QUEUES",
        description="Create the queue and dead-letter queue when missing (off: a missing queue "
        "stops the processor, naming it, so that a typo never creates a queue).",
    )
    concurrency: int = Field(
        4,
        alias="EXPORTER_CONCURRENCY",
        ge=1,
        le=64,
        description="Concurrent pollers of each queue a processor reads.",
    )
    shutdown_timeout_seconds: float = Field(
        20.0,
        alias="EXPORTER_SHUTDOWN_TIMEOUT_SECONDS",
        gt=0,
        description="Deadline for finishing in-flight batches on SIGTERM.",
    )
    queue_depth_interval_seconds: float = Field(
        15.0,
        alias="EXPORTER_QUEUE_DEPTH_INTERVAL_SECONDS",
        gt=0,
        description="How often queue depth gauges are refreshed.",
    )
    dedupe_window_seconds: int = Field(
        DEFAULT_DEDUPE_WINDOW_SECONDS,
        alias="EXPORTER_DEDUPE_WINDOW_SECONDS",
        ge=1,
        description="How long an applied event identity is remembered to drop redeliveries.",
    )
    max_event_types: int = Field(
        DEFAULT_MAX_TYPES,
        alias="EXPORTER_MAX_EVENT_TYPES",
        ge=1,
        le=100_000,
        description="Distinct event types accepted before new ones are dead-lettered.",
    )
    series_enabled: bool = Field(
        True,
        alias="EXPORTER_SERIES_ENABLED",
        description="Keep event-time buckets (per type and UTC minute of occurred_at) for "
        "/stats/{type}/series.",
    )
    series_retention: int = Field(
        DEFAULT_SERIES_RETENTION_SECONDS,
        alias="EXPORTER_SERIES_RETENTION",
        ge=HOUR,
        le=400 * 24 * HOUR,
        description="Seconds an event-time bucket is kept (default 7 days); older events count "
        "in the totals only.",
    )
    dimensions: Annotated[tuple[str, ...], NoDecode] = Field(
        (),
        alias="EXPORTER_DIMENSIONS",
        description="Top-level event fields counted as dimensions, comma-separated (at most 8, "
        "each 1-40 lower-case letters, digits and _, not a reserved name such as type or le): "
        "breakdowns in /stats/{type}?by= and labels in /metrics. Processors and the API must "
        "name the same ones.",
    )
    max_dimension_values: int = Field(
        DEFAULT_MAX_DIMENSION_VALUES,
        alias="EXPORTER_MAX_DIMENSION_VALUES",
        ge=1,
        le=100_000,
        description="Distinct values of each dimension of a type counted under their own name "
        "(1-100000); later new values count under __other__.",
    )
    max_dimension_combinations: int = Field(
        DEFAULT_MAX_DIMENSION_COMBINATIONS,
        alias="EXPORTER_MAX_DIMENSION_COMBINATIONS",
        ge=1,
        le=100_000,
        description="Distinct combinations of dimension values per type in /metrics "
        "(1-100000); later new combinations count under __other__ on every label.",
    )
    value_buckets: Annotated[tuple[float, ...], NoDecode] = Field(
        DEFAULT_VALUE_BUCKETS,
        alias="EXPORTER_VALUE_BUCKETS",
        description="Upper bounds of the value histograms, comma-separated: at most 40, "
        "strictly increasing, within -1e12..1e12, six decimals at most (+Inf is implicit; "
        "empty: no buckets). Processors and the API should name the same ones.",
    )
    unwrap_envelopes: bool = Field(
        True,
        alias="EXPORTER_UNWRAP_ENVELOPES",
        description="Read the event inside an SNS notification or an EventBridge event (raw "
        "delivery needs nothing); off for producers whose own events look like an envelope.",
    )
    max_message_bytes: int = Field(
        DEFAULT_MAX_MESSAGE_BYTES,
        alias="EXPORTER_MAX_MESSAGE_BYTES",
        ge=64,
        le=SQS_MAX_BODY_BYTES,
        description="Largest message body accepted as an event.",
    )
    api_host: str = Field(
        ALL_INTERFACES, alias="EXPORTER_API_HOST", description="Address the stats API binds."
    )
    api_port: int = Field(
        8000, alias="EXPORTER_API_PORT", ge=0, le=65535, description="Port of the stats API."
    )
    metrics_host: str = Field(
        ALL_INTERFACES,
        alias="EXPORTER_METRICS_HOST",
        description="Address the processor's /metrics binds.",
    )
    metrics_port: int = Field(
        9108,
        alias="EXPORTER_METRICS_PORT",
        ge=0,
        le=65535,
        description="Port of the processor's /metrics, /health and /ready.",
    )
    http_head_timeout_seconds: float = Field(
        10.0,
        alias="EXPORTER_HTTP_HEAD_TIMEOUT_SECONDS",
        gt=0,
        le=3600,
        description="Longest a client may take to send a request's line and headers (each "
        "HTTP server: the API and the processor's metrics port).",
    )
    http_body_timeout_seconds: float = Field(
        10.0,
        alias="EXPORTER_HTTP_BODY_TIMEOUT_SECONDS",
        gt=0,
        le=3600,
        description="Longest a client may take to send a request's body once its headers are in.",
    )
    http_max_connections: int = Field(
        256,
        alias="EXPORTER_HTTP_MAX_CONNECTIONS",
        ge=1,
        le=100_000,
        description="Open connections each HTTP server accepts; more are answered 503 and closed.",
    )
    admin_token: SecretStr | None = Field(
        None,
        alias="EXPORTER_ADMIN_TOKEN",
        description="Bearer token for DELETE /stats (unset: reset is disabled); prefer the "
        "variable, as a flag's value shows in the process list.",
    )
    grafana_url: str | None = Field(
        None,
        alias="EXPORTER_GRAFANA_URL",
        pattern=r"^https?://",
        description="Grafana's address, linked from the live page (unset: no link).",
    )
    prometheus_url: str | None = Field(
        None,
        alias="EXPORTER_PROMETHEUS_URL",
        pattern=r"^https?://",
        description="Prometheus's address, linked from the live page (unset: no link).",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", alias="EXPORTER_LOG_LEVEL", description="Least severe level logged."
    )
    log_format: Literal["auto", "json", "text"] = Field(
        "auto",
        alias="EXPORTER_LOG_FORMAT",
        description="Log line format; auto is text on a terminal and JSON otherwise.",
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        """`debug` as well as `DEBUG`: the level's name is what matters, not its case."""
        return value.upper() if isinstance(value, str) else value

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower_format(cls, value: object) -> object:
        """`JSON` as well as `json`."""
        return value.lower() if isinstance(value, str) else value

    @field_validator("sqs_queue_urls", mode="before")
    @classmethod
    def _split_urls(cls, value: object) -> object:
        """`a,b` from the environment, or a list of such from repeated flags, as one tuple."""
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list | tuple):
            return tuple(
                part.strip() for item in value for part in str(item).split(",") if part.strip()
            )
        return value

    @field_validator("redis_tls_ca_file", "redis_tls_cert_file", "redis_tls_key_file")
    @classmethod
    def _empty_is_unset(cls, value: str | None) -> str | None:
        """`VAR=` (as compose writes `${VAR:-}`) means no file, not a file named ''."""
        return value or None

    @field_validator("dimensions", mode="before")
    @classmethod
    def _check_dimensions(cls, value: object) -> object:
        """`country,channel` as a sorted tuple of checked names (ValueError names the bad one)."""
        return checked_dimension_names(_comma_separated(value))

    @field_validator("value_buckets", mode="before")
    @classmethod
    def _check_buckets(cls, value: object) -> object:
        """`1,2,5` as a tuple of checked bounds; empty turns buckets off."""
        return parse_bounds(_comma_separated(value))


class _DocumentedVariables(PydanticBaseSettingsSource):
    """The settings' documented variables in the process environment (`documented_values`)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        """Unused: `__call__` reads every field at once."""
        del field
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        """Each documented variable that is set, by its name."""
        return dict(documented_values(os.environ))


def documented_values(environ: Mapping[str, str]) -> dict[str, str]:
    """The value of each setting's documented variable set in `environ`, by variable name; the
    one place the settings are read from an environment (names are case-sensitive, as Linux's
    are, and as the docs give them)."""
    names = (info.alias for info in Settings.model_fields.values())
    return {name: environ[name] for name in names if name is not None and name in environ}


def stray_variables(environ: Mapping[str, str]) -> list[Stray]:
    """The variables of `environ` that look meant for a setting but are none (a typo, another
    case, a field's own name, which older versions also read), each with the closest setting."""
    documented = {info.alias for info in Settings.model_fields.values() if info.alias}
    former = {
        field.upper(): info.alias
        for field, info in Settings.model_fields.items()
        if info.alias and field.upper() != info.alias
    }
    return strays(environ, documented, former)


def _comma_separated(value: object) -> tuple[str, ...]:
    """`a,b` from the environment, or a list of such from repeated flags, as stripped parts."""
    if isinstance(value, str):
        value = [value]
    if isinstance(value, list | tuple):
        return tuple(
            part.strip() for item in value for part in str(item).split(",") if part.strip()
        )
    raise ValueError("expected a comma-separated list")


def env_name(field: str) -> str:
    """The environment variable behind a setting."""
    alias = Settings.model_fields[field].alias
    if alias is None:  # every field declares one; a new field without it is a programming error
        raise LookupError(f"setting {field} has no environment variable")
    return alias


class ConfigurationError(Exception):
    """Settings that cannot work; the message names each offending variable."""


def load_settings(used: Collection[str] | None = None, /, **overrides: object) -> Settings:
    """Read the environment, let explicit values (CLI flags) win, and fail with named settings.

    Only the settings in `used` (every one when None) are checked: a bad value of another, which
    the command never looks at (one env file serves every compose service), leaves that setting
    at its default instead of failing a command it does not concern.
    """
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems: list[str] = []
        unused: set[str] = set()
        for error in exc.errors():
            name = str(error["loc"][0]) if error["loc"] else "?"
            field = _field_of(name)
            if used is not None and field is not None and field not in used:
                unused.add(field)
            else:
                problems.append(f"{env_name(field) if field else name}: {error['msg']}")
        if problems:
            raise ConfigurationError("invalid configuration: " + "; ".join(problems)) from None
    # Only unused settings failed: their defaults, given as keywords, win over the environment,
    # and nothing else can fail now (no check spans several settings).
    defaults = {field: Settings.model_fields[field].get_default() for field in unused}
    return Settings(**{**defaults, **overrides})


def _field_of(name: str) -> str | None:
    """The field behind an error's location: its variable, or the field's own name."""
    if name in Settings.model_fields:
        return name
    for field, info in Settings.model_fields.items():
        if info.alias == name:
            return field
    return None


def limits(field: str) -> str | None:
    """A numeric setting's bounds in words (`1 to 64`, `more than 0`), or None; --help and
    docs/configuration.md both show this, so neither can differ from the check itself."""
    low: tuple[bool, str] | None = None  # (inclusive, bound)
    high: tuple[bool, str] | None = None
    for bound in Settings.model_fields[field].metadata:
        if isinstance(bound, Ge):
            low = (True, _number(bound.ge))
        elif isinstance(bound, Gt):
            low = (False, _number(bound.gt))
        elif isinstance(bound, Le):
            high = (True, _number(bound.le))
        elif isinstance(bound, Lt):
            high = (False, _number(bound.lt))
    if low is not None and high is not None and low[0] and high[0]:
        return f"{low[1]} to {high[1]}"
    words = []
    if low is not None:
        words.append(("at least " if low[0] else "more than ") + low[1])
    if high is not None:
        words.append(("at most " if high[0] else "less than ") + high[1])
    return ", ".join(words) or None


def _number(value: object) -> str:
    """A bound as written in settings.py: 34560000, not 3.456e+07; 0.5 stays 0.5."""
    if isinstance(value, int | float) and float(value).is_integer():
        return str(int(value))
    return str(value)
