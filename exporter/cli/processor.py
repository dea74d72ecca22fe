"""`exporter processor`: consume the queue into the store, serve /metrics, /health and /ready."""

from __future__ import annotations

import argparse
import asyncio
import os

from exporter.cli.parts import (
    COUNTING_SETTINGS,
    HTTP_SETTINGS,
    REDIS_TLS_SETTINGS,
    redis_store,
    sqs_config,
)
from exporter.cli.signals import stop_on_signals
from exporter.cli.wiring import run_processor
from exporter.logs import configure_logging
from exporter.settings import Settings
from exporter.tracing import configure_tracing

HELP = (
    "Consume events from SQS into exact Redis totals; serve /metrics, /health and /ready on "
    "the metrics port. The queue and its dead-letter queue must exist, unless --create-queues "
    "(EXPORTER_CREATE_QUEUES=true) creates them when missing."
)
SETTINGS = (
    "redis_url",
    "redis_prefix",
    "redis_shards",
    "redis_min_replicas",
    "redis_replica_timeout_ms",
    *REDIS_TLS_SETTINGS,
    "redis_allow_eviction",
    "startup_timeout_seconds",
    "sqs_queue_name",
    "sqs_queue_url",
    "sqs_queue_urls",
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
    "series_enabled",
    "series_retention",
    "unwrap_envelopes",
    "max_message_bytes",
    *COUNTING_SETTINGS,
    "metrics_host",
    "metrics_port",
    "log_level",
    "log_format",
    *HTTP_SETTINGS,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No flags beyond the settings."""
    del parser


def run(settings: Settings, args: argparse.Namespace) -> int:
    """Run until SIGTERM or SIGINT; 0 after a clean drain. What stops it earlier ends it by
    `exporter.cli.exits`' table: 2 for a setting or refusal, 1 for a dependency never reached or
    the metrics port taken."""
    del args
    config = sqs_config(settings)  # queue names and URLs checked before anything starts
    configure_logging(settings.log_level, settings.log_format)
    store = redis_store(settings, SETTINGS)
    tracing = configure_tracing(os.environ, service_name="exporter-processor")

    async def main() -> None:
        stop = asyncio.Event()
        stop_on_signals(stop)
        try:
            await run_processor(settings, store, stop, config=config)
        finally:
            await store.close()

    try:
        asyncio.run(main())
    finally:
        tracing.shutdown()
    return 0
