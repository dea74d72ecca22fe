"""What `exporter demo` starts for itself: an SQS endpoint and a store, with fallbacks."""

from __future__ import annotations

import asyncio
import logging
import shutil
import socket
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Final

from exporter.store import Store, StoreUnavailable
from exporter.store.memory import MemoryStore
from exporter.store.redis import RedisStore
from exporter.store.urls import redacted

log = logging.getLogger("exporter.demo")

INSTALL_MOTO: Final = (
    "exporter demo runs an embedded SQS endpoint from moto, which is not installed; "
    "install it with `uv sync --extra demo` (or `pip install 'sqs-metrics-exporter[demo]'`)"
)
REDIS_START_SECONDS: Final = 10.0


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


@asynccontextmanager
async def demo_store(redis_url: str, prefix: str) -> AsyncIterator[ChosenStore]:
    """Redis at `redis_url` if it answers; else a private redis-server; else memory."""
    # A URL redis-py refuses raises ValueError here; the command reports it as configuration.
    configured = RedisStore.from_url(redis_url, prefix=prefix, timeout_seconds=1.0)
    # The description is printed and logged: a password in REDIS_URL must not be.
    shown = redacted(redis_url)
    if await _answers(configured, within=2.0):
        try:
            yield ChosenStore(configured, f"Redis at {shown} (REDIS_URL), keys under {prefix!r}")
        finally:
            await configured.close()
        return
    await configured.close()
    binary = shutil.which("redis-server")
    if binary is None:
        store = MemoryStore()
        yield ChosenStore(
            store,
            f"IN-MEMORY store: no Redis answered at {shown} and no redis-server is on PATH; "
            "totals are lost when the demo stops",
        )
        return
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
        )  # fmt: skip
        url = f"redis://127.0.0.1:{port}/0"
        private = RedisStore.from_url(url, prefix=prefix, timeout_seconds=1.0)
        try:
            deadline = time.monotonic() + REDIS_START_SECONDS
            while not await _answers(private, within=0.5):
                if process.returncode is not None or time.monotonic() > deadline:
                    raise StoreUnavailable(f"the private redis-server at {url} did not start")
                await asyncio.sleep(0.05)
            yield ChosenStore(
                private,
                f"a private redis-server at {url} (nothing answered at {shown}); "
                "it stops with the demo",
            )
        finally:
            await private.close()
            if process.returncode is None:
                process.terminate()
                await process.wait()
