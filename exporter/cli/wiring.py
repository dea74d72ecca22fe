"""The processor service (pollers plus its metrics port) that `processor` and `demo` both run,
assembled from the parts the settings become (`exporter.cli.parts`)."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Mapping, Sequence

from prometheus_client import CollectorRegistry

from exporter.cli.aws_settings import checked_aws, sqs_fix, sqs_shown
from exporter.cli.parts import connection_limits, processor_config, sqs_config, store_observer
from exporter.cli.ports import bind_port
from exporter.cli.startup import first_contact, redis_dependency, sqs_dependency
from exporter.metrics import ProcessorMetrics, build_metrics
from exporter.processing.loop import Processor
from exporter.settings import Settings
from exporter.sqs.config import AwsCredentials, SqsConfig
from exporter.sqs.source import SqsSource
from exporter.store import Store
from exporter.store.redis import RedisStore
from exporter.web.health import ReadinessCheck, make_health_app
from exporter.web.server import serving

log = logging.getLogger("exporter.processor")


def _store_shown(store: Store) -> str:
    if isinstance(store, RedisStore):
        return store.connection.shown
    return type(store).__name__


def _not_yet(what: str) -> ReadinessCheck:
    """A readiness check that fails until `what` is done (nothing is asked of Redis before SQS
    is found: a probe writes)."""

    async def check() -> None:
        raise RuntimeError(f"{what} not yet")

    return check


def _sqs_environ(sqs_credentials: AwsCredentials | None) -> Mapping[str, str]:
    """The environment the SQS client reads: the process's, with given credentials instead of
    any of its own (the process's environment stays as the user left it)."""
    if sqs_credentials is None:
        return os.environ
    environ = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": sqs_credentials.access_key_id,
        "AWS_SECRET_ACCESS_KEY": sqs_credentials.secret_access_key,
    }
    for name in (
        "AWS_SESSION_TOKEN",
        "AWS_CREDENTIAL_EXPIRATION",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
    ):
        environ.pop(name, None)
    return environ


async def run_processor(
    settings: Settings,
    store: Store,
    stop: asyncio.Event,
    *,
    config: SqsConfig | None = None,
    registry: CollectorRegistry | None = None,
    sqs_credentials: AwsCredentials | None = None,
    metrics_sockets: Sequence[socket.socket] = (),
) -> None:
    """Run the pollers and the metrics/health server until `stop` is set, then drain; the SQS
    configuration is the caller's when given (made from `settings` otherwise), SQS credentials
    are boto3's usual chain unless given (the demo's for its embedded SQS), and the metrics port
    is bound here unless its sockets are given (the demo binds them first).

    Start-up goes from what costs nothing to what writes: the settings first (a queue name, an
    endpoint, a region or keys that cannot work stop us before anything connects), then SQS
    (the queues found and checked, created when allowed), and only then Redis, whose first
    contact writes: an SQS refusal leaves no key behind.
    """
    config = config or sqs_config(settings)
    environ = _sqs_environ(sqs_credentials)
    checked_aws(settings, environ)
    registry = registry if registry is not None else CollectorRegistry()
    metrics = build_metrics(registry, settings.value_buckets)
    if isinstance(store, RedisStore):
        store.watch(store_observer(metrics.store))
    checks: dict[str, ReadinessCheck] = {
        "redis": _not_yet("Redis first contact"),
        "sqs": _not_yet("queues resolved"),
    }
    health_app = make_health_app(registry, checks)
    limits = connection_limits(settings)
    sockets = metrics_sockets or bind_port("metrics", settings.metrics_host, settings.metrics_port)
    async with serving(
        health_app, settings.metrics_host, settings.metrics_port, limits, sockets=sockets
    ) as port:
        log.info("metrics server listening", extra={"host": settings.metrics_host, "port": port})

        def count_sqs_error(operation: str) -> None:
            metrics.dependency_errors.labels(dependency="sqs", operation=operation).inc()

        opening = await SqsSource.connect(config, on_error=count_sqs_error, environ=environ)
        try:
            # Nothing is received before the queues are found and the store first takes a
            # write: a refusal or the start-up deadline ends the command (exporter.cli.startup).
            found = await first_contact(
                opening.find,
                sqs_dependency(sqs_shown(settings, environ), sqs_fix(settings, environ)),
                timeout_seconds=settings.startup_timeout_seconds,
                stop=stop,
            ) and await first_contact(
                store.probe_write,
                redis_dependency(_store_shown(store)),
                timeout_seconds=settings.startup_timeout_seconds,
                stop=stop,
            )
        except BaseException:
            await opening.close()
            raise
        if not found:
            await opening.close()
            return
        checks["redis"] = store.probe_write
        await _consume(
            opening.source(), settings, store=store, stop=stop, metrics=metrics, checks=checks
        )


async def _consume(
    source: SqsSource,
    settings: Settings,
    *,
    store: Store,
    stop: asyncio.Event,
    metrics: ProcessorMetrics,
    checks: dict[str, ReadinessCheck],
) -> None:
    """Run the pollers on the queues found until `stop`; readiness checks follow what runs."""
    for queue in source.queues:
        # Every queue's series exists from the start: "nothing received from this queue" is a
        # zero an alert can see, not a missing series.
        metrics.messages_received.labels(queue_name=queue.name)
    processor = Processor(
        store,
        source,
        metrics,
        processor_config(settings, queues=len(source.queues)),
    )
    checks["sqs"] = source.ping
    checks["processor"] = processor.check_polling
    try:
        await processor.run(stop)
    finally:
        await source.close()


__all__ = ["run_processor"]
