"""`exporter demo`: SQS, a store, a processor, the API and synthetic traffic in one process."""

from __future__ import annotations

import argparse
import asyncio
import logging
import shlex
import socket
import threading
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass, replace
from typing import Final

from prometheus_client import CollectorRegistry

from exporter.cli.aws_settings import checked_region
from exporter.cli.exits import UsageError
from exporter.cli.parts import (
    COUNTING_SETTINGS,
    REDIS_TLS_SETTINGS,
    counting_config,
    redis_store,
    redis_tls,
    redis_url_checked,
    sqs_config,
)
from exporter.cli.paste import exporter_command
from exporter.cli.ports import bind_port
from exporter.cli.signals import stop_on_signals
from exporter.cli.startup import refusal_line
from exporter.cli.wiring import run_processor
from exporter.logs import configure_logging
from exporter.retry import first_of
from exporter.settings import ConfigurationError, Settings
from exporter.sqs.config import AwsCredentials, SqsConfig
from exporter.sqs.messages import SourceMisconfigured, SourceUnavailable
from exporter.store import StoreMisconfigured, StoreRefused
from exporter.store.redis import RedisStore
from exporter.store.tls import TlsFiles
from exporter.store.urls import node_urls, redacted
from exporter.tools.demo_parts import demo_store, embedded_sqs, require_moto
from exporter.tools.producer import (
    Producer,
    QueueNotFound,
    SendSummary,
    SyntheticTraffic,
    make_sqs_client,
    resolve_queue_url,
)
from exporter.web import make_app
from exporter.web.listening import port_of
from exporter.web.page import PageInfo
from exporter.web.server import serving

HELP = (
    "Run everything locally in one process: an embedded SQS endpoint (moto), Redis (or a "
    "private redis-server, or memory), a processor, the stats API and synthetic traffic. "
    "Ctrl-C stops it."
)
SETTINGS = (
    "redis_url",
    "redis_prefix",
    *REDIS_TLS_SETTINGS,
    "sqs_queue_name",
    "api_host",
    "api_port",
    "metrics_host",
    "metrics_port",
    "admin_token",
    *COUNTING_SETTINGS,
    "log_level",
    "log_format",
)
LOOPBACK: Final = "127.0.0.1"
# Demo traffic must not add to a real deployment's totals in a Redis the demo is pointed at.
DEMO_PREFIX: Final = "exporter-demo"
# Where the demo's defaults differ from the other commands' (shown by --help and the docs too):
# a demo listens on loopback only, and without REDIS_URL uses a private redis-server (or memory).
DEFAULTS: Final[Mapping[str, object]] = {
    "redis_url": None,
    "api_host": LOOPBACK,
    "metrics_host": LOOPBACK,
    "redis_prefix": DEMO_PREFIX,
    # The demo's traffic carries both fields (exporter.tools.producer): breakdowns to see.
    "dimensions": "channel,country",
}
# DEFAULTS' dimensions, sorted as the settings sort them (for a demo whose user declared none).
DEMO_DIMENSIONS: Final = ("channel", "country")
# moto accepts any credentials, but boto3 refuses to sign without some; given to the demo's own
# clients (never put into the environment, where they would hide the user's real ones).
DEMO_CREDENTIALS: Final = AwsCredentials("demo", "demo")
QUEUE_WAIT_SECONDS: Final = 60.0
# The demo must stop within a few seconds, so it never long-polls or drains for long.
DEMO_OVERRIDES: Final = {
    "sqs_wait_time_seconds": 1,
    "shutdown_timeout_seconds": 3.0,
    "queue_depth_interval_seconds": 5.0,
    "create_queues": True,
    "sqs_queue_url": None,
    # One queue, by name, with its default dead-letter queue: nothing of a deployment's own.
    "sqs_queue_urls": (),
    "sqs_dlq_name": None,
}

log = logging.getLogger("exporter.demo")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The synthetic traffic's rate and shape."""
    parser.add_argument(
        "--rate",
        type=float,
        default=20.0,
        metavar="N",
        help="synthetic events per second; 0 sends none (default: 20)",
    )
    parser.add_argument(
        "--malformed-ratio",
        type=float,
        default=0.15,
        metavar="R",
        help="share of synthetic events spoilt on purpose, 0-1 (default: 0.15)",
    )


def _setting(settings: Settings, field: str) -> str:
    """The user's value when they set one, else the demo's own default."""
    value: str = getattr(settings, field)
    return value if field in settings.model_fields_set else str(DEFAULTS[field])


def run(settings: Settings, args: argparse.Namespace) -> int:
    """Entry point of `exporter demo`: 0 after a clean stop. What stops it earlier ends it by
    `exporter.cli.exits`' table: a setting, a flag, moto missing or a refusing Redis 2, a port
    taken 1, each before anything starts."""
    config = sqs_config(settings.model_copy(update=DEMO_OVERRIDES))
    # The embedded SQS has its own endpoint and keys; the region is the user's (AWS_DEFAULT_REGION).
    checked_region(settings.aws_region)
    configure_logging(settings.log_level, settings.log_format)
    if args.rate < 0 or not 0 <= args.malformed_ratio <= 1:
        raise UsageError("--rate must be >= 0 and --malformed-ratio in 0-1")
    # Only a Redis the user named (REDIS_URL or --redis-url) is used, never the default URL's.
    redis_url = settings.redis_url if "redis_url" in settings.model_fields_set else None
    with redis_url_checked(settings.redis_url):
        node_urls(settings.redis_url)  # one line and exit 2 before anything starts
    # The TLS files serve only a Redis of the user's; checked (exit 2) before anything starts.
    tls = redis_tls(settings) if redis_url is not None else None
    require_moto()
    # Both ports next: a taken one ends the demo before any banner, redis-server or moto.
    with _bind_ports(settings) as ports, embedded_sqs() as endpoint:
        config = replace(config, endpoint_url=endpoint)
        try:
            asyncio.run(_demo(settings, args, config, ports, redis_url=redis_url, tls=tls))
        except (StoreRefused, StoreMisconfigured) as exc:  # REDIS_URL's Redis refuses the settings
            raise ConfigurationError(refusal_line(redacted(settings.redis_url), exc)) from None
    return 0


@dataclass(slots=True)
class Ports:
    """The API's and the processor's sockets, bound before anything starts; closed on exit
    (serving closes them too)."""

    api: list[socket.socket]
    metrics: list[socket.socket]

    def __enter__(self) -> Ports:
        return self

    def __exit__(self, *exc_info: object) -> None:
        for sock in (*self.api, *self.metrics):
            sock.close()


def _bind_ports(settings: Settings) -> Ports:
    """Bind the API's and the processor's ports; PortUnavailable names the one that failed and
    the flag to change it, and leaves none bound."""
    api = bind_port("api", _setting(settings, "api_host"), settings.api_port)
    try:
        metrics = bind_port("metrics", _setting(settings, "metrics_host"), settings.metrics_port)
    except BaseException:
        for sock in api:
            sock.close()
        raise
    return Ports(api, metrics)


async def _demo(
    settings: Settings,
    args: argparse.Namespace,
    config: SqsConfig,
    ports: Ports,
    *,
    redis_url: str | None,
    tls: TlsFiles | None,
) -> None:
    stop = asyncio.Event()
    stop_on_signals(stop)
    endpoint = str(config.endpoint_url)
    if "dimensions" not in settings.model_fields_set:
        settings = settings.model_copy(update={"dimensions": DEMO_DIMENSIONS})
    processor_settings = settings.model_copy(
        update={
            **DEMO_OVERRIDES,
            "aws_endpoint_url": endpoint,
            "metrics_host": _setting(settings, "metrics_host"),
        }
    )
    token = settings.admin_token.get_secret_value() if settings.admin_token else None
    prefix = _setting(settings, "redis_prefix")
    store_settings = settings.model_copy(update={"redis_prefix": prefix})

    def open_store(url: str, tls: TlsFiles | None) -> RedisStore:
        # Built as every command builds its store, from the settings the demo declares. A demo
        # on the user's Redis runs whatever its maxmemory-policy: an evicting one is a warning,
        # not a refusal that would read as "nothing answered" (decision 0017).
        return redis_store(
            store_settings, SETTINGS, url=url, tls=tls, timeout_seconds=1.0, warn_on_eviction=True
        )

    counting = counting_config(settings)
    async with demo_store(open_store, redis_url, prefix, tls, counting) as chosen:
        log.info("store chosen", extra={"store": chosen.description})
        processor = asyncio.create_task(
            run_processor(
                processor_settings,
                chosen.store,
                stop,
                config=config,
                registry=CollectorRegistry(),
                sqs_credentials=DEMO_CREDENTIALS,
                metrics_sockets=ports.metrics,
            ),
            name="processor",
        )
        app = make_app(
            chosen.store,
            CollectorRegistry(),
            admin_token=token,
            page_info=PageInfo(store_description=chosen.description),
            counting=counting,
        )
        api_host = _setting(settings, "api_host")
        producer_stop = threading.Event()
        summary: SendSummary | None = None
        try:
            async with serving(app, api_host, settings.api_port, sockets=ports.api) as port:
                producer = asyncio.create_task(
                    asyncio.to_thread(_produce, processor_settings, args, producer_stop),
                    name="producer",
                )
                try:
                    _print_banner(
                        settings=processor_settings,
                        args=args,
                        store=chosen.description,
                        endpoint=endpoint,
                        api_host=api_host,
                        port=port,
                        metrics_port=port_of(ports.metrics),
                    )
                    await _until_stopped(stop, processor)
                finally:
                    producer_stop.set()
                    summary = await producer
        finally:
            stop.set()
            with suppress(asyncio.CancelledError):
                await processor
    if summary is not None:
        log.info("demo stopped", extra={"produced": summary.sent, "malformed": summary.malformed})


async def _until_stopped(stop: asyncio.Event, processor: asyncio.Task[None]) -> None:
    """Wait for Ctrl-C/SIGTERM; a processor that dies early (a port taken) ends the demo too,
    with what stopped it. The processor is shielded: a stop lets it drain, it is not cancelled."""
    await first_of(stop.wait(), asyncio.shield(processor))


def _produce(
    settings: Settings, args: argparse.Namespace, stop: threading.Event
) -> SendSummary | None:
    """The synthetic trickle, in a thread: boto3 blocks, the event loop must not."""
    if args.rate == 0:
        return None
    client = make_sqs_client(settings.aws_endpoint_url, settings.aws_region, DEMO_CREDENTIALS)
    try:
        url = resolve_queue_url(
            client, settings.sqs_queue_name, None, wait_seconds=QUEUE_WAIT_SECONDS, stop=stop
        )
    except QueueNotFound:
        url = None
    except (SourceUnavailable, SourceMisconfigured) as exc:
        # Raised here it would surface only at Ctrl-C, as a traceback from the demo's shutdown.
        log.error(  # noqa: TRY400 - one line for the reader of the demo, not a trace
            "the embedded SQS endpoint failed; no traffic is sent", extra={"error": str(exc)}
        )
        return None
    if url is None:
        if not stop.is_set():
            log.error("the processor never created the queue; no traffic is sent")
        return None
    traffic = SyntheticTraffic(malformed_ratio=args.malformed_ratio)
    return Producer(client, url).run(traffic, rate=args.rate, stop=stop)


def _browsable(host: str) -> str:
    """The host to put in a URL for a browser on this machine: a wildcard or loopback bind is
    reached as localhost (http://0.0.0.0:8000 does not open everywhere)."""
    return "localhost" if host in {"0.0.0.0", "::", LOOPBACK} else host  # noqa: S104


def _print_banner(
    *,
    settings: Settings,
    args: argparse.Namespace,
    store: str,
    endpoint: str,
    api_host: str,
    port: int,
    metrics_port: int,
) -> None:
    base = f"http://{_browsable(api_host)}:{port}"
    metrics_host = _browsable(settings.metrics_host)
    traffic = (
        f"{args.rate:g} events/s of synthetic traffic, {args.malformed_ratio:.0%} malformed"
        if args.rate
        else "none (--rate 0): send your own with the first command below"
    )
    sqs = shlex.join(
        [
            "--aws-endpoint-url", endpoint,
            "--aws-region", settings.aws_region,
            "--sqs-queue-name", settings.sqs_queue_name,
        ]
    )  # fmt: skip
    # Copy-paste commands for a fresh shell in any directory: the credentials are the demo's
    # (moto takes any), given inline; the flags win over the shell's own AWS_ENDPOINT_URL,
    # AWS_DEFAULT_REGION and SQS_QUEUE_NAME.
    env = (
        f"AWS_ACCESS_KEY_ID={DEMO_CREDENTIALS.access_key_id} "
        f"AWS_SECRET_ACCESS_KEY={DEMO_CREDENTIALS.secret_access_key}"
    )
    command = exporter_command()
    print(
        "\n".join(
            [
                "",
                "exporter demo is running; Ctrl-C stops it.",
                f"  store      {store}",
                f"  SQS        moto at {endpoint}, queue {settings.sqs_queue_name!r}",
                f"  traffic    {traffic}",
                f"  live page  {base}/",
                f"  stats      {base}/stats",
                f"  metrics    {base}/metrics (API), "
                f"http://{metrics_host}:{metrics_port}/metrics (processor)",
                "",
                "  send events:         " + f"{env} {command} produce {sqs} --count 25",
                "  see dead letters:    " + f"{env} {command} dlq peek {sqs}",
                "",
            ]
        ),
        flush=True,
    )
