"""Wiring shared by the commands: the parts' configurations from the settings, the Redis store,
and the processor service (pollers plus its metrics port) that `processor` and `demo` both run."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from prometheus_client import CollectorRegistry

from exporter.cli.redis_url import redis_url_checked
from exporter.cli.store_options import series_policy
from exporter.metrics import build_metrics
from exporter.processing.loop import Processor, ProcessorConfig
from exporter.settings import Settings
from exporter.sqs.client import SqsConfig
from exporter.sqs.messages import SourceUnavailable
from exporter.sqs.source import SqsSource
from exporter.store import Store
from exporter.store.redis import RedisStore
from exporter.web.health import ReadinessCheck, make_health_app
from exporter.web.server import JsonErrorAppRunner

log = logging.getLogger("exporter.processor")


def redis_store(settings: Settings) -> RedisStore:
    """The Redis store the settings name; a URL redis-py refuses is a ConfigurationError.

    The connection pool is lazy: nothing connects before the event loop runs.
    """
    with redis_url_checked():
        return RedisStore.from_url(
            settings.redis_url,
            prefix=settings.redis_prefix,
            dedupe_window_seconds=settings.dedupe_window_seconds,
            max_types=settings.max_event_types,
            series=series_policy(settings),
        )


def sqs_config(settings: Settings) -> SqsConfig:
    """The SQS part of the settings."""
    return SqsConfig(
        queue_name=settings.sqs_queue_name,
        dlq_name=settings.dlq_name,
        queue_url=settings.sqs_queue_url,
        endpoint_url=settings.aws_endpoint_url,
        region=settings.aws_region,
        wait_time_seconds=settings.sqs_wait_time_seconds,
        visibility_timeout_seconds=settings.visibility_timeout_seconds,
        max_receive_count=settings.max_receive_count,
        create_queues=settings.create_queues,
        pollers=settings.concurrency,
    )


def processor_config(settings: Settings) -> ProcessorConfig:
    """The loop's part of the settings."""
    return ProcessorConfig(
        pollers=settings.concurrency,
        visibility_timeout_seconds=settings.visibility_timeout_seconds,
        shutdown_timeout_seconds=settings.shutdown_timeout_seconds,
        queue_depth_interval_seconds=settings.queue_depth_interval_seconds,
        max_message_bytes=settings.max_message_bytes,
    )


async def _not_resolved() -> None:
    raise RuntimeError("queues not resolved yet")


async def run_processor(
    settings: Settings,
    store: Store,
    stop: asyncio.Event,
    *,
    registry: CollectorRegistry | None = None,
) -> None:
    """Run the pollers and the metrics/health server until `stop` is set, then drain."""
    registry = registry if registry is not None else CollectorRegistry()
    metrics = build_metrics(registry)
    checks: dict[str, ReadinessCheck] = {"redis": store.ping, "sqs": _not_resolved}
    runner = JsonErrorAppRunner(make_health_app(registry, checks), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.metrics_host, settings.metrics_port)
    await site.start()
    log.info("metrics server listening", extra={"address": runner.addresses})

    def count_sqs_error(operation: str) -> None:
        metrics.dependency_errors.labels(dependency="sqs", operation=operation).inc()

    try:
        try:
            source = await SqsSource.open(sqs_config(settings), on_error=count_sqs_error, stop=stop)
        except SourceUnavailable:
            return  # stopped before SQS ever answered
        processor = Processor(
            store,
            source,
            metrics,
            processor_config(settings),
        )
        checks["sqs"] = source.ping
        checks["processor"] = processor.check_polling
        try:
            await processor.run(stop)
        finally:
            await source.close()
    finally:
        await runner.cleanup()


__all__ = ["processor_config", "redis_store", "run_processor", "sqs_config"]
