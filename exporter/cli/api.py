"""`exporter api`: serve the stats API over the shared Redis store until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import logging

from prometheus_client import CollectorRegistry

from exporter.cli.parts import (
    COUNTING_SETTINGS,
    HTTP_SETTINGS,
    REDIS_TLS_SETTINGS,
    connection_limits,
    counting_config,
    page_info,
    redis_store,
    store_observer,
)
from exporter.cli.ports import bind_port
from exporter.cli.signals import stop_on_signals
from exporter.cli.startup import first_contact, redis_dependency
from exporter.logs import configure_logging
from exporter.settings import Settings
from exporter.store.urls import redacted
from exporter.web import make_app
from exporter.web.app import METRICS_KEY
from exporter.web.server import serving

HELP = "Serve the stats API (/stats, /health, /metrics, the live page) over the Redis store."
SETTINGS = (
    "redis_url",
    "redis_prefix",
    "redis_shards",
    *REDIS_TLS_SETTINGS,
    "startup_timeout_seconds",
    "api_host",
    "api_port",
    "admin_token",
    "series_retention",
    *COUNTING_SETTINGS,
    "grafana_url",
    "prometheus_url",
    "log_level",
    "log_format",
    *HTTP_SETTINGS,
)

log = logging.getLogger("exporter.api")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No flags beyond the settings."""


async def serve_api(settings: Settings, stop: asyncio.Event) -> None:
    """Run the API until `stop` is set, then finish in-flight requests and close the store."""
    store = redis_store(settings, SETTINGS, warn_on_eviction=True)
    try:
        # The port next, as every command binds it: taken, it ends the API before it serves.
        sockets = bind_port("api", settings.api_host, settings.api_port)
    except BaseException:
        await store.close()
        raise
    token = settings.admin_token.get_secret_value() if settings.admin_token else None
    shown = redacted(settings.redis_url)
    app = make_app(
        store,
        CollectorRegistry(),
        admin_token=token,
        close_store_on_cleanup=True,
        page_info=page_info(settings),
        counting=counting_config(settings),
    )
    store.watch(store_observer(app[METRICS_KEY].store))
    async with serving(
        app, settings.api_host, settings.api_port, connection_limits(settings), sockets=sockets
    ) as port:
        log.info(
            "stats API listening",
            extra={
                "host": settings.api_host,
                "port": port,
                "reset_enabled": token is not None,
                "store": shown,
                "prefix": settings.redis_prefix,
            },
        )
        # Until Redis first answers the API serves 503s; a refusal or the deadline ends it.
        if await first_contact(
            store.ping,
            redis_dependency(shown),
            timeout_seconds=settings.startup_timeout_seconds,
            stop=stop,
        ):
            await stop.wait()
        log.info("stats API stopping")


async def _main(settings: Settings) -> None:
    stop = asyncio.Event()
    stop_on_signals(stop)
    await serve_api(settings, stop)


def run(settings: Settings, args: argparse.Namespace) -> int:
    """Entry point of `exporter api`: 0 after a clean stop; what stops it earlier ends it by
    `exporter.cli.exits`' table (a refusal 2; Redis never reached, the port taken 1)."""
    del args
    configure_logging(settings.log_level, settings.log_format)
    asyncio.run(_main(settings))
    return 0
