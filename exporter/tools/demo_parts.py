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

from exporter.store import Snapshot, Store, StoreUnavailable
from exporter.store.memory import MemoryStore
from exporter.store.redis import RedisStore
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
_PR_SET_PDEATHSIG: Final = 1


class MotoMissing(Exception):
    """moto's server is not installed."""


@contextmanager
def embedded_sqs() -> Iterator[str]:
    """moto's SQS server in a thread of this process on a free loopback port; yields its URL."""
    try:
        from moto.server import ThreadedMotoServer  # noqa: PLC0415 - an optional extra
    except ImportError as exc:
        raise MotoMissing(INSTALL_MOTO) from exc
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


async def _answers(store: RedisStore, within: float) -> bool:
    try:
        async with asyncio.timeout(within):
            await store.ping()
    except (StoreUnavailable, TimeoutError):
        return False
    return True


def _counted(snapshot: Snapshot) -> str:
    """What a store already holds, in words: "empty" or "3 types, 1,234 events"."""
    if not snapshot.types:
        return "empty"
    events = sum(totals.count for totals in snapshot.types)
    kinds = "type" if len(snapshot.types) == 1 else "types"
    return f"{len(snapshot.types)} {kinds}, {events:,} events"


@asynccontextmanager
async def demo_store(redis_url: str | None, prefix: str) -> AsyncIterator[ChosenStore]:
    """With `redis_url` (REDIS_URL set), that Redis if it answers; otherwise a private
    redis-server, else memory: a demo touches no Redis the user did not name."""
    shown = redacted(redis_url) if redis_url is not None else None
    if redis_url is not None:
        # A URL redis-py refuses raises ValueError here; the command reports it as configuration.
        # A demo on the user's Redis runs whatever its maxmemory-policy: the store warns of an
        # evicting one instead of refusing it, which would read as "nothing answered".
        configured = RedisStore.from_url(
            redis_url, prefix=prefix, timeout_seconds=1.0, allow_eviction=True
        )
        # The description is printed and logged: a password in REDIS_URL must not be.
        if await _answers(configured, within=2.0):
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
        store = MemoryStore()
        yield ChosenStore(
            store,
            f"IN-MEMORY store: {why} and no redis-server is on PATH; "
            "totals are lost when the demo stops",
        )
        return
    async with _private_redis(binary, prefix) as (private, url):
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
async def _private_redis(binary: str, prefix: str) -> AsyncIterator[tuple[RedisStore, str]]:
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
        private = RedisStore.from_url(url, prefix=prefix, timeout_seconds=1.0)
        try:
            deadline = time.monotonic() + REDIS_START_SECONDS
            while not await _answers(private, within=0.5):
                if process.returncode is not None or time.monotonic() > deadline:
                    raise StoreUnavailable(f"the private redis-server at {url} did not start")
                await asyncio.sleep(0.05)
            yield private, url
        finally:
            await private.close()
            if process.returncode is None:
                process.terminate()
                await process.wait()
