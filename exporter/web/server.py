"""Serving an app on a real socket, with a bounded graceful shutdown."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final

from aiohttp import web

# In-flight requests get this long to finish on shutdown; the API's requests take milliseconds.
SHUTDOWN_TIMEOUT_SECONDS: Final = 3.0


@asynccontextmanager
async def serving(app: web.Application, host: str, port: int) -> AsyncIterator[int]:
    """Serve `app` on host:port (0 picks a free port) and yield the port actually bound."""
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, shutdown_timeout=SHUTDOWN_TIMEOUT_SECONDS)
        await site.start()
        bound: int = runner.addresses[0][1]
        yield bound
    finally:
        await runner.cleanup()
