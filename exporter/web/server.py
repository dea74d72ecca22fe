"""Serving an app on a real socket: JSON even for requests aiohttp's parser refuses, and a
bounded graceful shutdown."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from http import HTTPStatus
from typing import Final

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

# In-flight requests get this long to finish on shutdown; the API's requests take milliseconds.
SHUTDOWN_TIMEOUT_SECONDS: Final = 3.0


class _JsonErrorRequestHandler(RequestHandler):
    """Answers requests the HTTP parser refuses (a 9 KiB request line, 5,000 headers, an unknown
    method) with the API's JSON error shape instead of aiohttp's plain text."""

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """Log as aiohttp does, then answer `{"error", "message"}` with no internals."""
        super().handle_error(request, status, exc, message)
        phrase = HTTPStatus(status).phrase
        if status >= 500:
            text = "The server failed to answer; this was logged."
        else:
            # aiohttp's parser messages are one-line reasons ("Too many headers received");
            # its multi-line ones point at bytes of the request, which are of no use to a client.
            first_line = (message or "").strip().splitlines()[0] if message else ""
            text = f"Malformed HTTP request: {first_line or phrase}."
        response = web.json_response(
            {"error": phrase.lower().replace(" ", "_"), "message": text}, status=status
        )
        response.force_close()
        return response


class _JsonErrorServer(web.Server):
    def __call__(self) -> RequestHandler:
        return _JsonErrorRequestHandler(self, loop=self._loop, **self._kwargs)


class JsonErrorAppRunner(web.AppRunner):
    """An AppRunner whose connections answer parser-level errors in JSON too."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # The app builds its Server itself; only the per-connection handler class changes, and
        # _JsonErrorServer adds no state, so re-classing the instance is safe.
        server.__class__ = _JsonErrorServer
        return server


@asynccontextmanager
async def serving(app: web.Application, host: str, port: int) -> AsyncIterator[int]:
    """Serve `app` on host:port (0 picks a free port) and yield the port actually bound."""
    runner = JsonErrorAppRunner(
        app, handle_signals=False, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_SECONDS
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound: int = runner.addresses[0][1]
        yield bound
    finally:
        await runner.cleanup()
