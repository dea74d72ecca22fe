"""`exporter processor`: consume the queue into the store, serve /metrics, /health and /ready."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from exporter.cli.http_limits import SETTINGS as HTTP_SETTINGS
from exporter.cli.redis_tls import SETTINGS as REDIS_TLS_SETTINGS
from exporter.cli.signals import stop_on_signals
from exporter.cli.startup import NeverReached
from exporter.cli.store_options import COUNTING_SETTINGS
from exporter.cli.wiring import redis_store, run_processor, sqs_config
from exporter.logs import configure_logging
from exporter.settings import Settings
from exporter.sqs.messages import SourceMisconfigured
from exporter.store import StoreMisconfigured
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
    """Run until SIGTERM or SIGINT; 0 after a clean drain, 2 on a configuration error.

    A REDIS_URL redis-py cannot use raises ConfigurationError, which `main` reports.
    """
    del args
    sqs_config(settings)  # queue names and URLs checked before anything starts or is created
    configure_logging(settings.log_level, settings.log_format)
    store = redis_store(settings)
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
    except (SourceMisconfigured, StoreMisconfigured) as exc:
        print(f"exporter processor: {exc}", file=sys.stderr)
        return 2
    except NeverReached as exc:
        print(f"exporter processor: {exc}", file=sys.stderr)
        return 1
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
