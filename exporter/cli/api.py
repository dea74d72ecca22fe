"""`exporter api`: serve the stats API over the shared Redis store until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from prometheus_client import CollectorRegistry

from exporter.cli.http_limits import SETTINGS as HTTP_SETTINGS
from exporter.cli.http_limits import connection_limits
from exporter.cli.redis_tls import SETTINGS as REDIS_TLS_SETTINGS
from exporter.cli.redis_tls import redis_tls
from exporter.cli.redis_url import redis_url_checked
from exporter.cli.signals import stop_on_signals
from exporter.cli.startup import NeverReached, first_contact, redis_dependency
from exporter.cli.store_options import (
    COUNTING_SETTINGS,
    counting_config,
    series_policy,
    store_observer,
)
from exporter.logs import configure_logging
from exporter.settings import Settings
from exporter.store import StoreMisconfigured
from exporter.store.connection import RedisConnection
from exporter.store.options import StoreOptions
from exporter.store.redis import RedisStore
from exporter.store.urls import redacted
from exporter.web import make_app
from exporter.web.app import METRICS_KEY
from exporter.web.page import PageInfo
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
    tls = redis_tls(settings)
    with redis_url_checked(settings.redis_url):
        # The API only reads: refusing to serve would protect nothing, so an evicting policy
        # is a warning and a metric here, never a refusal (decision 0017).
        connection = RedisConnection(settings.redis_url, tls=tls)
    store = RedisStore(
        connection,
        StoreOptions(
            prefix=settings.redis_prefix,
            shards=settings.redis_shards,
            series=series_policy(settings),
            allow_eviction=True,
        ),
    )
    token = settings.admin_token.get_secret_value() if settings.admin_token else None
    shown = redacted(settings.redis_url)
    page_info = PageInfo(
        store_description=f"Redis {shown}, prefix {settings.redis_prefix}",
        grafana_url=settings.grafana_url,
        prometheus_url=settings.prometheus_url,
    )
    app = make_app(
        store,
        CollectorRegistry(),
        admin_token=token,
        close_store_on_cleanup=True,
        page_info=page_info,
        counting=counting_config(settings),
    )
    store.watch(store_observer(app[METRICS_KEY].store))
    async with serving(
        app, settings.api_host, settings.api_port, connection_limits(settings)
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
    """Entry point of `exporter api`."""
    configure_logging(settings.log_level, settings.log_format)
    try:
        asyncio.run(_main(settings))
    except StoreMisconfigured as exc:  # the data was written with another shard count
        print(f"exporter api: {exc}", file=sys.stderr)
        return 2
    except NeverReached as exc:
        print(f"exporter api: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # the port is taken or the address does not exist
        log.error("cannot serve on %s:%s: %s", settings.api_host, settings.api_port, exc)  # noqa: TRY400
        return 1
    return 0
