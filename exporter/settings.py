"""Every setting of the exporter, read from the environment once, at start-up, by the CLI."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from exporter.events import DEFAULT_MAX_MESSAGE_BYTES
from exporter.sqs.names import default_dlq_name
from exporter.store import DEFAULT_DEDUPE_WINDOW_SECONDS, DEFAULT_MAX_TYPES
from exporter.store.series import DEFAULT_SERIES_RETENTION_SECONDS, HOUR

# SQS refuses bodies over 256 KiB, so a larger limit could never be reached.
SQS_MAX_BODY_BYTES = 256 * 1024
ALL_INTERFACES = "0.0.0.0"  # noqa: S104 - exporters are scraped from other hosts and containers


class Settings(BaseSettings):
    """Configuration; each field's alias is its environment variable, and the CLI adds a flag."""

    model_config = SettingsConfigDict(
        case_sensitive=False,
        extra="ignore",
        populate_by_name=True,
        frozen=True,
    )

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
        description="How long a processor or API waits at start-up for Redis to first answer "
        "before exiting 1 (0: wait for ever); a configuration Redis refuses (password, "
        "database) exits 2 at once. Once reached, losing Redis only pauses.",
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
        True,
        alias="EXPORTER_CREATE_QUEUES",
        description="Create the queue and dead-letter queue when missing.",
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

    @property
    def queue_name(self) -> str:
        """The event queue's name: the last part of SQS_QUEUE_URL when set, as it overrides."""
        if self.sqs_queue_url:
            return self.sqs_queue_url.rstrip("/").rpartition("/")[2] or self.sqs_queue_name
        return self.sqs_queue_name

    @property
    def dlq_name(self) -> str:
        """The first queue's dead-letter queue by name (with SQS_QUEUE_URL=.../orders,
        `orders-dlq`; for `orders.fifo`, `orders-dlq.fifo`); a redrive policy may name another."""
        return self.sqs_dlq_name or default_dlq_name("SQS_QUEUE_NAME", self.queue_name)


def env_name(field: str) -> str:
    """The environment variable behind a setting."""
    alias = Settings.model_fields[field].alias
    if alias is None:  # every field declares one; a new field without it is a programming error
        raise LookupError(f"setting {field} has no environment variable")
    return alias


class ConfigurationError(Exception):
    """Settings that cannot work; the message names each offending variable."""


def load_settings(**overrides: object) -> Settings:
    """Read the environment, let explicit values (CLI flags) win, and fail with named settings."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "?"
            name = env_name(field) if field in Settings.model_fields else field
            problems.append(f"{name}: {error['msg']}")
        raise ConfigurationError("invalid configuration: " + "; ".join(problems)) from None
