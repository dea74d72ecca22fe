"""Where the settings become parts, each in one function, for every command: the Redis store
(and its TLS files), what is counted, the SQS configuration, the processor's, the HTTP limits and
the page's links. A setting that cannot work is a ConfigurationError naming its variable, raised
here, before anything connects.

The Redis client and the HTTP server are imported by the functions that build them, so that a
command that needs neither (`exporter produce`) loads neither.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Final

from exporter.events import ContractOptions
from exporter.processing.config import ProcessorConfig
from exporter.settings import ConfigurationError, Settings, env_name
from exporter.sqs.config import SqsConfig
from exporter.sqs.names import BadQueueName, check_name, name_from_url
from exporter.store.detail import CountingConfig
from exporter.store.histograms import BucketBounds
from exporter.store.observer import StoreObserver
from exporter.store.series import SeriesPolicy
from exporter.store.tls import (
    URL_OPTIONS,
    BadTlsFile,
    Role,
    TlsFiles,
    check_files,
    url_files,
    verification_off,
)

if TYPE_CHECKING:
    from exporter.metrics import StoreWatchMetrics
    from exporter.store.redis import RedisStore
    from exporter.web.limits import ConnectionLimits
    from exporter.web.page import PageInfo

log = logging.getLogger(__name__)

# Each group of settings below, for the SETTINGS of the commands that use it.
REDIS_TLS_SETTINGS: Final = ("redis_tls_ca_file", "redis_tls_cert_file", "redis_tls_key_file")
COUNTING_SETTINGS: Final = (
    "dimensions",
    "max_dimension_values",
    "max_dimension_combinations",
    "value_buckets",
)
HTTP_SETTINGS: Final = (
    "http_head_timeout_seconds",
    "http_body_timeout_seconds",
    "http_max_connections",
)
# The settings the Redis store is built from, besides REDIS_URL and the TLS files.
STORE_SETTINGS: Final = (
    "redis_prefix",
    "redis_shards",
    "redis_min_replicas",
    "redis_replica_timeout_ms",
    "redis_allow_eviction",
    "dedupe_window_seconds",
    "max_event_types",
    "series_enabled",
    "series_retention",
)
STORE_TIMEOUT_SECONDS: Final = 5.0

_TLS_FIELDS: Final[dict[Role, str]] = dict(zip(URL_OPTIONS, REDIS_TLS_SETTINGS, strict=True))


# ---------------------------------------------------------------------------------- Redis


@contextmanager
def redis_url_checked(url: str) -> Iterator[None]:
    """Around what reads REDIS_URL (the store, its nodes): a refused URL becomes a
    ConfigurationError.

    The store checks the URL (scheme, host, port, user part, database, redis-py's options) when
    it is made, after settings were loaded and before anything connects; without this a mistake
    would end the command with a traceback, or look like an outage for ever, instead of one line.
    """
    from exporter.store.urls import redacted  # noqa: PLC0415 - see the module's docstring

    try:
        yield
    except ValueError as exc:
        # The messages name the bad part, never the password; the value is shown redacted.
        shown = redacted(url)
        raise ConfigurationError(f"REDIS_URL is not usable: {exc} (REDIS_URL={shown!r})") from None


def redis_tls(settings: Settings) -> TlsFiles:
    """The TLS files the store's clients get; a file that cannot serve is a ConfigurationError
    naming the setting (or REDIS_URL's option) that gave it (decision 0018).

    A file may come from a setting or from redis-py's option in REDIS_URL (`ssl_ca_certs`,
    `ssl_certfile`, `ssl_keyfile`), not both: redis-py would let the URL win in silence. Files
    given to a URL that is not `rediss://` are refused too: the connection would not use TLS.
    """
    from exporter.store.urls import node_urls  # noqa: PLC0415 - see the module's docstring

    url = settings.redis_url
    with redis_url_checked(url):
        seeds = node_urls(url)  # a URL that cannot name a Redis is said first, as such
    given = TlsFiles(
        settings.redis_tls_ca_file, settings.redis_tls_cert_file, settings.redis_tls_key_file
    )
    in_url = url_files(url)
    for role, field in _TLS_FIELDS.items():
        if given.path(role) and in_url.path(role):
            raise ConfigurationError(
                f"invalid configuration: {env_name(field)} and REDIS_URL's "
                f"{URL_OPTIONS[role]} option both name a file; keep one (the setting)"
            )

    def named_by(role: Role) -> str:
        field = _TLS_FIELDS[role]
        return env_name(field) if given.path(role) else f"REDIS_URL's {URL_OPTIONS[role]} option"

    effective = TlsFiles(*(given.path(role) or in_url.path(role) for role in URL_OPTIONS))
    if effective and any(not seed.lower().startswith("rediss://") for seed in seeds):
        role = next(role for role in URL_OPTIONS if effective.path(role))
        raise ConfigurationError(
            f"invalid configuration: {named_by(role)} is set but REDIS_URL does not use TLS; "
            "begin it with rediss://"
        )
    try:
        check_files(effective)
    except BadTlsFile as exc:
        raise ConfigurationError(f"invalid configuration: {named_by(exc.role)}: {exc}") from None
    off = verification_off(url)
    if off is not None:
        log.warning(
            "Redis's certificate is not fully verified (%s in REDIS_URL): whoever can reach the "
            "network path can pose as Redis; prefer EXPORTER_REDIS_TLS_CA_FILE",
            off,
        )
    return given


def redis_store(
    settings: Settings,
    declared: Collection[str],
    *,
    url: str | None = None,
    tls: TlsFiles | None = None,
    timeout_seconds: float = STORE_TIMEOUT_SECONDS,
    warn_on_eviction: bool = False,
) -> RedisStore:
    """The Redis store, built the same way by every command: at REDIS_URL with its TLS files
    checked (or at `url` with `tls`), from the store settings the command declares (`declared`,
    its SETTINGS). One it does not declare keeps its default whatever the environment says: one
    env file serves every command, and the API or a demo must not take on a processor's
    replica count. A URL redis-py refuses is a ConfigurationError. Nothing connects yet.

    `warn_on_eviction` (the API, which only reads; a demo on the user's Redis): an evicting
    maxmemory-policy is a warning and a metric, never a refusal, whatever
    EXPORTER_REDIS_ALLOW_EVICTION says (decision 0017).
    """
    from exporter.store.connection import RedisConnection  # noqa: PLC0415 - see the docstring
    from exporter.store.options import StoreOptions  # noqa: PLC0415 - likewise
    from exporter.store.redis import RedisStore  # noqa: PLC0415 - likewise

    if url is None:
        url, tls = settings.redis_url, redis_tls(settings)
    undeclared = [field for field in (*STORE_SETTINGS, *COUNTING_SETTINGS) if field not in declared]
    chosen = settings.model_copy(
        update={field: Settings.model_fields[field].get_default() for field in undeclared}
    )
    with redis_url_checked(url):
        connection = RedisConnection(url, timeout_seconds=timeout_seconds, tls=tls)
    return RedisStore(
        connection,
        StoreOptions(
            prefix=chosen.redis_prefix,
            dedupe_window_seconds=chosen.dedupe_window_seconds,
            max_types=chosen.max_event_types,
            shards=chosen.redis_shards,
            min_replicas=chosen.redis_min_replicas,
            replica_timeout_ms=chosen.redis_replica_timeout_ms,
            series=SeriesPolicy(
                enabled=chosen.series_enabled, retention_seconds=chosen.series_retention
            ),
            allow_eviction=warn_on_eviction or chosen.redis_allow_eviction,
            counting=counting_config(chosen),
        ),
    )


def store_observer(metrics: StoreWatchMetrics) -> StoreObserver:
    """The store's reports of Redis itself (lost totals, an evicting policy), counted on the
    process's metrics."""

    def evicting(policy: str | None) -> None:
        metrics.evicting.set(0 if policy is None else 1)

    def totals_lost(_: object) -> None:
        metrics.totals_lost.inc()

    return StoreObserver(totals_lost=totals_lost, evicting=evicting)


def counting_config(settings: Settings) -> CountingConfig:
    """What the store counts beyond per-type totals: dimensions, their caps, value buckets."""
    return CountingConfig(
        dimensions=settings.dimensions,
        max_values=settings.max_dimension_values,
        max_combinations=settings.max_dimension_combinations,
        buckets=BucketBounds.of(settings.value_buckets),
    )


def contract_options(settings: Settings) -> ContractOptions:
    """The dimensions events are read with (the same as the store counts)."""
    return ContractOptions(settings.dimensions)


# ------------------------------------------------------------------------------------ SQS


def sqs_config(settings: Settings) -> SqsConfig:
    """The SQS part of the settings, its queues derived and checked once (`queue_specs`): a name
    or URL SQS would refuse is a ConfigurationError, raised before anything connects, so that a
    typo never creates a queue."""
    try:
        return SqsConfig(
            queue_name=settings.sqs_queue_name,
            dlq_name=settings.sqs_dlq_name,
            queue_url=settings.sqs_queue_url,
            queue_urls=settings.sqs_queue_urls,
            endpoint_url=settings.aws_endpoint_url,
            region=settings.aws_region,
            wait_time_seconds=settings.sqs_wait_time_seconds,
            visibility_timeout_seconds=settings.visibility_timeout_seconds,
            max_receive_count=settings.max_receive_count,
            create_queues=settings.create_queues,
            pollers=settings.concurrency,
        )
    except BadQueueName as exc:
        raise ConfigurationError(str(exc)) from None


def checked_send_target(settings: Settings) -> None:
    """ConfigurationError unless the one queue a producer sends to (SQS_QUEUE_URL, else
    SQS_QUEUE_NAME) is named as SQS allows."""
    try:
        if settings.sqs_queue_url:
            name_from_url("SQS_QUEUE_URL", settings.sqs_queue_url)
        else:
            check_name("SQS_QUEUE_NAME", settings.sqs_queue_name)
    except BadQueueName as exc:
        raise ConfigurationError(str(exc)) from None


# ---------------------------------------------------------------------- the processor, HTTP


def processor_config(settings: Settings, queues: int = 1) -> ProcessorConfig:
    """The loop's part of the settings: EXPORTER_CONCURRENCY pollers for each of `queues`."""
    return ProcessorConfig(
        pollers=settings.concurrency * queues,
        visibility_timeout_seconds=settings.visibility_timeout_seconds,
        shutdown_timeout_seconds=settings.shutdown_timeout_seconds,
        queue_depth_interval_seconds=settings.queue_depth_interval_seconds,
        max_message_bytes=settings.max_message_bytes,
        unwrap_envelopes=settings.unwrap_envelopes,
        receive_wait_seconds=settings.sqs_wait_time_seconds,
        contract=contract_options(settings),
    )


def connection_limits(settings: Settings) -> ConnectionLimits:
    """What one client connection may take of a server (the API's, the metrics port's)."""
    from exporter.web.limits import ConnectionLimits  # noqa: PLC0415 - see the module's docstring

    return ConnectionLimits(
        head_timeout_seconds=settings.http_head_timeout_seconds,
        body_timeout_seconds=settings.http_body_timeout_seconds,
        max_connections=settings.http_max_connections,
    )


def page_info(settings: Settings) -> PageInfo:
    """What the API's live page says of its deployment: the store, shown without a password,
    and the links to Grafana and Prometheus."""
    from exporter.store.urls import redacted  # noqa: PLC0415 - see the module's docstring
    from exporter.web.page import PageInfo  # noqa: PLC0415 - likewise

    return PageInfo(
        store_description=f"Redis {redacted(settings.redis_url)}, prefix {settings.redis_prefix}",
        grafana_url=settings.grafana_url,
        prometheus_url=settings.prometheus_url,
    )


__all__ = [
    "COUNTING_SETTINGS",
    "HTTP_SETTINGS",
    "REDIS_TLS_SETTINGS",
    "STORE_SETTINGS",
    "checked_send_target",
    "connection_limits",
    "contract_options",
    "counting_config",
    "page_info",
    "processor_config",
    "redis_store",
    "redis_tls",
    "redis_url_checked",
    "sqs_config",
    "store_observer",
]
