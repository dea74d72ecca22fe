"""`exporter processor`: consume the queue into the store, serve /metrics, /health and /ready."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from aiohttp import web
from prometheus_client import CollectorRegistry

from exporter.cli.redis_url import redis_url_checked
from exporter.cli.signals import stop_on_signals
from exporter.health import ReadinessCheck, make_health_app
from exporter.logs import configure_logging
from exporter.metrics import build_metrics
from exporter.processing import AfterStore, Processor, ProcessorConfig
from exporter.settings import Settings
from exporter.source import Message, SourceMisconfigured, SourceUnavailable
from exporter.sqs import SqsSource
from exporter.sqs_setup import SqsConfig
from exporter.store import Store
from exporter.store.redis import RedisStore
from exporter.tracing import configure_tracing
from exporter.web.server import JsonErrorAppRunner

HELP = (
    "Consume events from SQS into exact Redis totals; serve /metrics, /health and /ready on "
    "the metrics port. Creates the queue and its dead-letter queue when missing unless "
    "--no-create-queues."
)
SETTINGS = (
    "redis_url",
    "redis_prefix",
    "sqs_queue_name",
    "sqs_queue_url",
    "sqs_dlq_name",
    "aws_endpoint_url",
    "aws_region",
    "sqs_wait_time_seconds",
    "visibility_timeout_seconds",
    "max_receive_count",
    "create_queues",
    "concurrency",
    "shutdown_timeout_seconds",
    "queue_depth_interval_seconds",
    "dedupe_window_seconds",
    "max_event_types",
    "max_message_bytes",
    "metrics_host",
    "metrics_port",
    "log_level",
    "log_format",
)

# Test-only: when set to a file path, the processor writes that file after each store call and
# then hangs, so a test can SIGKILL it exactly between "stored" and "deleted". Never set it in
# production: the processor stops making progress after its first batch.
PAUSE_AFTER_STORE_VARIABLE = "EXPORTER_TEST_PAUSE_AFTER_STORE_FILE"

log = logging.getLogger("exporter.processor")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No flags beyond the settings."""
    del parser


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


def _pause_after_store_hook() -> AfterStore | None:
    marker = os.environ.get(PAUSE_AFTER_STORE_VARIABLE)
    if not marker:
        return None

    async def pause(messages: Sequence[Message]) -> None:
        await asyncio.to_thread(Path(marker).write_text, "\n".join(m.message_id for m in messages))
        await asyncio.Event().wait()  # until killed

    return pause


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
            after_store=_pause_after_store_hook(),
        )
        checks["sqs"] = source.ping
        checks["processor"] = processor.check_polling
        try:
            await processor.run(stop)
        finally:
            await source.close()
    finally:
        await runner.cleanup()


def run(settings: Settings, args: argparse.Namespace) -> int:
    """Run until SIGTERM or SIGINT; 0 after a clean drain, 2 on a configuration error.

    A REDIS_URL redis-py cannot use raises ConfigurationError, which `main` reports.
    """
    del args
    configure_logging(settings.log_level, settings.log_format)
    with redis_url_checked():
        # The connection pool is lazy: nothing connects before the loop runs.
        store = RedisStore.from_url(
            settings.redis_url,
            prefix=settings.redis_prefix,
            dedupe_window_seconds=settings.dedupe_window_seconds,
            max_types=settings.max_event_types,
        )
    tracing = configure_tracing(os.environ, service_name="exporter-processor")

    async def main() -> None:
        stop = asyncio.Event()
        stop_on_signals(stop)
        try:
            await run_processor(settings, store, stop)
        finally:
            await store.close()

    try:
        asyncio.run(main())
    except SourceMisconfigured as exc:
        print(f"exporter processor: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the metrics port is taken or not ours to bind
        print(
            f"exporter processor: cannot serve metrics on "
            f"{settings.metrics_host}:{settings.metrics_port}: {exc.strerror or exc}",
            file=sys.stderr,
        )
        return 1
    finally:
        tracing.shutdown()
    return 0
