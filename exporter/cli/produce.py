"""`exporter produce`: send synthetic traffic or a JSON Lines file to the queue, then summarise."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterable
from contextlib import ExitStack
from pathlib import Path
from typing import IO

from exporter.cli.aws_settings import checked_aws
from exporter.cli.exits import UsageError
from exporter.cli.parts import checked_send_target
from exporter.logs import configure_logging
from exporter.settings import Settings
from exporter.tools.producer import (
    DEFAULT_TYPES,
    Producer,
    SendSummary,
    SyntheticTraffic,
    json_lines,
    make_sqs_client,
    resolve_queue_url,
)
from exporter.tracing import configure_tracing

HELP = (
    "Send events to the queue in batches of 10: synthetic traffic like the prototype's "
    "(some malformed on purpose) or a JSON Lines file; print exactly what SQS accepted. "
    "On a FIFO queue (*.fifo) each event's type is its message group."
)
SETTINGS = (
    "sqs_queue_name",
    "sqs_queue_url",
    "aws_endpoint_url",
    "aws_region",
    "log_level",
    "log_format",
)
DEFAULT_SYNTHETIC_COUNT = 100
LOG_EVERY_SECONDS = 5.0

log = logging.getLogger("exporter.producer")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The traffic's shape, its source and the form of the summary."""
    parser.add_argument(
        "--count",
        type=int,
        metavar="N",
        help=f"events to send; 0 sends until interrupted "
        f"(default: {DEFAULT_SYNTHETIC_COUNT} synthetic, every line of --file)",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=0.0,
        metavar="N",
        help="events per second; 0 sends as fast as SQS accepts (default: 0)",
    )
    parser.add_argument(
        "--malformed-ratio",
        type=float,
        default=0.15,
        metavar="R",
        help="share of synthetic events spoilt on purpose, 0-1 (default: 0.15)",
    )
    parser.add_argument(
        "--types",
        default=",".join(DEFAULT_TYPES),
        metavar="A,B",
        help=f"comma-separated synthetic event types (default: {','.join(DEFAULT_TYPES)})",
    )
    parser.add_argument("--seed", type=int, help="seed of the synthetic traffic (default: random)")
    parser.add_argument(
        "--with-ids",
        action="store_true",
        help="give each synthetic event an 'id', so redeliveries and retries are recognised",
    )
    parser.add_argument(
        "--file",
        metavar="PATH",
        help="send the lines of a JSON Lines file instead ('-' reads standard input)",
    )
    parser.add_argument(
        "--wait-for-queue",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="wait this long for the queue to be created by a processor (default: 0)",
    )
    parser.add_argument(
        "--summary-json",
        action="store_true",
        help="print the summary as one JSON object on standard output (logs stay on stderr)",
    )


class Progress:
    """A self-rewriting line on a terminal; an occasional log line otherwise."""

    def __init__(self, total: int | None, stream: IO[str]) -> None:
        self._total = total
        self._stream = stream
        self._tty = stream.isatty()
        self._last_log = time.monotonic()

    def __call__(self, summary: SendSummary) -> None:
        if self._tty:
            of = f"/{self._total}" if self._total else ""
            self._stream.write(
                f"\rsent {summary.sent}{of} events  {summary.rate():8.1f}/s  "
                f"malformed {summary.malformed}  failed {summary.failed} "
            )
            self._stream.flush()
        elif time.monotonic() - self._last_log >= LOG_EVERY_SECONDS:
            self._last_log = time.monotonic()
            log.info(
                "sending",
                extra={"sent": summary.sent, "rate": round(summary.rate(), 1)},
            )

    def done(self) -> None:
        if self._tty:
            self._stream.write("\n")
            self._stream.flush()


def _stop_on_signals(stop: threading.Event) -> None:
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())


def run(settings: Settings, args: argparse.Namespace) -> int:
    """Entry point of `exporter produce`: 0 when everything was accepted, 1 if some failed.
    What stops it before sending ends it by `exporter.cli.exits`' table: a bad flag, setting or
    missing queue 2, SQS unreachable 1."""
    checked_send_target(settings)  # a queue name SQS would refuse: one line, before any call
    configure_logging(settings.log_level, settings.log_format)
    checked_aws(settings, os.environ)  # an endpoint, region or keys that cannot work, likewise
    stop = threading.Event()
    _stop_on_signals(stop)
    with ExitStack() as stack:
        bodies, count = _source(args, stack)
        client = make_sqs_client(settings.aws_endpoint_url, settings.aws_region)
        url = resolve_queue_url(
            client,
            settings.sqs_queue_name,
            settings.sqs_queue_url,
            wait_seconds=args.wait_for_queue,
            stop=stop,
        )
        # With an OTLP endpoint configured, each batch is a span and its messages carry it.
        tracing = configure_tracing(os.environ, service_name="exporter-producer")
        stack.callback(tracing.shutdown)
        tracer = tracing.tracer("exporter.producer") if tracing.enabled else None
        progress = Progress(count, sys.stderr)
        summary = Producer(client, url, tracer=tracer).run(
            bodies, count=count, rate=args.rate, stop=stop, progress=progress
        )
        progress.done()
    if args.summary_json:
        print(json.dumps(summary.to_json()))
    else:
        print(summary.to_text())
    return 1 if summary.failed else 0


def _source(args: argparse.Namespace, stack: ExitStack) -> tuple[Iterable[bytes], int | None]:
    """The bodies to send and how many (None: all of them, or until interrupted); UsageError
    naming the flag that cannot work."""
    if args.count is not None and args.count < 0:
        raise UsageError("--count must be 0 or more")
    if args.rate < 0:
        raise UsageError("--rate must be 0 or more")
    count = None if args.count == 0 else args.count
    if args.file is not None:
        if args.file == "-":
            return json_lines(sys.stdin.buffer), count
        try:
            return json_lines(stack.enter_context(Path(args.file).open("rb"))), count
        except OSError as exc:
            raise UsageError(f"--file {args.file}: {exc.strerror or exc}") from None
    try:
        traffic = SyntheticTraffic(
            types=tuple(t.strip() for t in args.types.split(",") if t.strip()),
            malformed_ratio=args.malformed_ratio,
            seed=args.seed,
            with_ids=args.with_ids,
        )
    except ValueError as exc:  # --types or --malformed-ratio
        raise UsageError(str(exc)) from None
    return traffic, DEFAULT_SYNTHETIC_COUNT if args.count is None else count
