"""What `exporter demo` starts for itself: an SQS endpoint and a store, with fallbacks."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Final

from exporter.retry import Retry
from exporter.store import Snapshot, Store, StoreRefused, StoreUnavailable
from exporter.store.detail import CountingConfig
from exporter.store.memory import MemoryStore
from exporter.store.redis import RedisStore
from exporter.store.tls import TlsFiles
from exporter.store.urls import redacted

log = logging.getLogger("exporter.demo")

# One line for both places moto can be missing: a checkout or a pip install, and the slim runtime
# image (Dockerfile target `runtime`), which leaves moto out on purpose.
INSTALL_MOTO: Final = (
    "exporter demo runs an embedded SQS endpoint from moto, which is not installed; "
    "install it with `uv sync --extra demo` (or `pip install 'sqs-metrics-exporter[demo]'`), "
    "or in a container use the image's demo target (`docker build --target demo .`), "
    "not the runtime image"
)
REDIS_START_SECONDS: Final = 10.0
# Asking a Redis again until it answers or a deadline passes: often, it is local.
ANSWER_RETRY: Final = Retry(None, base_seconds=0.05, cap_seconds=0.1)
_PR_SET_PDEATHSIG: Final = 1


class MotoMissing(Exception):
    """moto's server is not installed."""


def require_moto() -> None:
    """Raise MotoMissing unless moto's server can be imported: checked before the demo binds its
    ports or prints anything, as a setting is."""
    try:
        from moto.server import ThreadedMotoServer  # noqa: F401, PLC0415 - an optional extra
    except ImportError as exc:
        raise MotoMissing(INSTALL_MOTO) from exc


@contextmanager
def embedded_sqs() -> Iterator[str]:
    """moto's SQS server in a thread of this process on a free loopback port; yields its URL."""
    require_moto()
    from moto.server import ThreadedMotoServer  # noqa: PLC0415 - an optional extra

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@dataclass(frozen=True, slots=True)
class ChosenStore:
    """The store the demo uses and a sentence saying which it is."""

    store: Store
    description: str


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _answers(
    store: RedisStore, within: float, *, gone: Callable[[], bool] = lambda: False
) -> bool:
    """Whether the store answers within `within` seconds, asking again until then (unless
    `gone()` says nothing will answer); a Redis that answers but refuses the settings (a
    password, TLS) raises: it is the user's Redis, not one that is absent.

    One try is not enough: a TLS 1.3 server that refuses the client's certificate may reset the
    first connection before its alert arrives, which reads as an outage; the refusal comes on the
    next try. This is the ping's one retry layer; the ping itself makes one attempt.
    """
    deadline = time.monotonic() + within
    async for attempt in ANSWER_RETRY.tries(deadline=deadline):
        try:
            async with asyncio.timeout(max(deadline - time.monotonic(), 0.05)):
                await store.ping()
        except StoreRefused as exc:
            if exc.configuration:
                raise
        except (StoreUnavailable, TimeoutError):
            pass
        else:
            return True
        if attempt.last or gone():
            return False
    return False


def _counted(snapshot: Snapshot) -> str:
    """What a store already holds, in words: "empty" or "3 types, 1,234 events"."""
    if not snapshot.types:
        return "empty"
    events = sum(totals.count for totals in snapshot.types)
    kinds = "type" if len(snapshot.types) == 1 else "types"
    return f"{len(snapshot.types)} {kinds}, {events:,} events"


# How the demo's command builds a Redis store at a URL, with TLS files or none: as every
# command builds its own (`exporter.cli.parts.redis_store`), with the demo's prefix.
OpenStore = Callable[[str, TlsFiles | None], RedisStore]


@asynccontextmanager
async def demo_store(
    open_store: OpenStore,
    redis_url: str | None,
    prefix: str,
    tls: TlsFiles | None = None,
    counting: CountingConfig | None = None,
) -> AsyncIterator[ChosenStore]:
    """With `redis_url` (REDIS_URL set), that Redis if it answers; otherwise a private
    redis-server, else memory: a demo touches no Redis the user did not name. The memory store
    counts with `counting`, as `open_store`'s Redis stores do.

    A Redis at `redis_url` that refuses the settings (password, database, TLS) raises
    StoreRefused: falling back would hide the mistake behind a demo that seems to work.
    """
    shown = redacted(redis_url) if redis_url is not None else None
    if redis_url is not None:
        configured = open_store(redis_url, tls)
        try:
            answers = await _answers(configured, within=2.0)
        except StoreRefused:
            await configured.close()
            raise
        # The description is printed and logged: a password in REDIS_URL must not be.
        if answers:
            try:
                held = _counted(await configured.snapshot())
                state = "empty" if held == "empty" else f"continuing {held}"
                yield ChosenStore(
                    configured,
                    f"Redis at {shown} (REDIS_URL), keys under {prefix!r}: {state}",
                )
            finally:
                await configured.close()
            return
        await configured.close()
    why = (
        f"nothing answered at REDIS_URL {shown}"
        if shown is not None
        else "REDIS_URL is not set, so no Redis of yours is touched"
    )
    binary = shutil.which("redis-server")
    if binary is None:
        store = MemoryStore(counting=counting)
        yield ChosenStore(
            store,
            f"IN-MEMORY store: {why} and no redis-server is on PATH; "
            "totals are lost when the demo stops",
        )
        return
    async with _private_redis(binary, open_store) as (private, url):
        yield ChosenStore(
            private, f"a private redis-server at {url} ({why}); it stops with the demo"
        )


def _die_with_parent() -> Callable[[], None] | None:
    """What the private redis-server runs before it starts, on Linux: the kernel kills it when
    the demo dies, even by SIGKILL (no cleanup of ours runs then); None elsewhere.

    The libc function is looked up here, in the parent, so the child only makes the one call.
    """
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    prctl = ctypes.CDLL(name, use_errno=True).prctl

    def arm() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL))

    return arm


@asynccontextmanager
async def _private_redis(
    binary: str, open_store: OpenStore
) -> AsyncIterator[tuple[RedisStore, str]]:
    """A redis-server of the demo's own in a temporary directory, removed with it afterwards."""
    with tempfile.TemporaryDirectory(prefix="exporter-demo-redis-") as workdir:
        port = _free_port()
        process = await asyncio.create_subprocess_exec(
            binary,
            "--port", str(port),
            "--bind", "127.0.0.1",
            "--dir", workdir,
            "--save", "",
            "--appendonly", "no",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            # The signal is tied to the forking thread: this runs on the event loop's, which
            # lives as long as the demo.
            preexec_fn=_die_with_parent(),
        )  # fmt: skip
        url = f"redis://127.0.0.1:{port}/0"
        private = open_store(url, None)
        try:
            started = await _answers(
                private, REDIS_START_SECONDS, gone=lambda: process.returncode is not None
            )
            if not started:
                raise StoreUnavailable(f"the private redis-server at {url} did not start")
            yield private, url
        finally:
            await private.close()
            if process.returncode is None:
                process.terminate()
                await process.wait()
