"""Serving an app on a real socket with bounds a hostile client cannot stretch: head and body
deadlines, a connection cap, JSON answers to requests the HTTP parser refuses, and a bounded
graceful shutdown.

Only public aiohttp API is used: an `AppRunner` starts the app and builds its `Server`, whose
public `request_handler` and `request_factory` feed a `Server` subclass that makes the
connection protocols (`RequestHandler` subclasses overriding public methods), run by a
`ServerRunner`.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, Final

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.http import RawRequestMessage
from aiohttp.streams import StreamReader

from exporter.web.errors import BUSY_RESPONSE, refused_request
from exporter.web.limits import ConnectionLimits

log = logging.getLogger("exporter.http")

# In-flight requests get this long to finish on shutdown; the API's requests take milliseconds.
SHUTDOWN_TIMEOUT_SECONDS: Final = 3.0
# At most one "connections refused" line per this many seconds, however hard the flood.
REFUSAL_LOG_INTERVAL_SECONDS: Final = 10.0

RequestFactory = Callable[
    [
        RawRequestMessage,
        StreamReader,
        web.RequestHandler,
        AbstractStreamWriter,
        "asyncio.Task[None]",
    ],
    web.BaseRequest,
]
RequestHandlerFn = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


class GuardedServer(web.Server):
    """Makes `GuardedConnection`s and counts them against the cap."""

    def __init__(
        self, handler: RequestHandlerFn, request_factory: RequestFactory, limits: ConnectionLimits
    ) -> None:
        super().__init__(_done_when_answered(handler), request_factory=_head_seen(request_factory))
        self.limits = limits
        self.open_connections = 0
        self.refused_connections = 0
        self.last_refusal_log = 0.0

    def __call__(self) -> GuardedConnection:
        """A protocol for one new connection (asyncio's protocol factory)."""
        limits = self.limits
        return GuardedConnection(
            self,
            loop=asyncio.get_running_loop(),
            access_log=None,
            keepalive_timeout=limits.keepalive_timeout_seconds,
            max_line_size=limits.max_line_size,
            max_field_size=limits.max_field_size,
            max_headers=limits.max_headers,
            lingering_time=limits.body_timeout_seconds,
        )

    def admit(self) -> bool:
        """Count a new connection in, or say no when the cap is reached."""
        if self.open_connections < self.limits.max_connections:
            self.open_connections += 1
            return True
        self.refused_connections += 1
        now = time.monotonic()
        if now - self.last_refusal_log >= REFUSAL_LOG_INTERVAL_SECONDS:
            self.last_refusal_log = now
            log.warning(
                "connection limit reached; refusing new connections",
                extra={
                    "max_connections": self.limits.max_connections,
                    "refused": self.refused_connections,
                },
            )
        return False

    def release(self) -> None:
        """Count a closed connection out."""
        self.open_connections -= 1


class GuardedConnection(web.RequestHandler):
    """One client connection: its head and its body each have a deadline."""

    def __init__(self, server: GuardedServer, **kwargs: Any) -> None:
        super().__init__(server, **kwargs)
        self.guard = server
        self.deadline: asyncio.TimerHandle | None = None
        self.in_request = False
        self.admitted = False
        self.peer = "?"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Refuse over the cap; otherwise the request head must arrive in time."""
        peer = transport.get_extra_info("peername")
        self.peer = str(peer[0]) if isinstance(peer, tuple) else "?"
        if not self.guard.admit():
            # Never handed to aiohttp: a fixed answer and close, without reading a byte.
            if isinstance(transport, asyncio.WriteTransport):
                transport.write(BUSY_RESPONSE)
            transport.close()
            return
        self.admitted = True
        super().connection_made(transport)
        self.arm(self.guard.limits.head_timeout_seconds, "head")

    def connection_lost(self, exc: BaseException | None) -> None:
        """Stop the deadline and give the connection's slot back."""
        self.disarm()
        if self.admitted:
            self.admitted = False
            self.guard.release()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """The first byte of a keep-alive connection's next request starts its head deadline."""
        if data and not self.in_request and self.deadline is None:
            self.arm(self.guard.limits.head_timeout_seconds, "head")
        super().data_received(data)

    def head_received(self, payload: StreamReader) -> None:
        """The head is in: a body still to come gets its own deadline."""
        self.disarm()
        self.in_request = True
        if not payload.is_eof():
            self.arm(self.guard.limits.body_timeout_seconds, "body")

    def answered(self) -> None:
        """The handler returned; the next request's deadline starts with its first byte."""
        self.disarm()
        self.in_request = False

    def arm(self, seconds: float, waiting_for: str) -> None:
        """Close the connection unless it is disarmed within `seconds`."""
        self.disarm()
        loop = asyncio.get_running_loop()
        self.deadline = loop.call_later(seconds, self.too_slow, seconds, waiting_for)

    def disarm(self) -> None:
        """Cancel the running deadline, if any."""
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None

    def too_slow(self, seconds: float, waiting_for: str) -> None:
        """The client took too long: close, and say so once without any of its bytes."""
        self.deadline = None
        log.warning(
            "closed a slow connection",
            extra={"remote": self.peer, "waiting_for": waiting_for, "seconds": seconds},
        )
        self.force_close()

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """Answer a request the parser refused (or a failure outside the app) in the API's JSON
        shape, logging one line with no byte of the request (it may hold a token)."""
        if request.writer.output_size > 0:
            # Part of an answer is out: nothing coherent can follow on this connection.
            raise ConnectionError("cannot answer an error after a response began")
        response = refused_request(status, exc, self.guard.limits, remote=self.peer)
        response.force_close()
        return response


def _head_seen(factory: RequestFactory) -> RequestFactory:
    """aiohttp builds a request once its head is parsed: tell the connection first."""

    def make(
        message: RawRequestMessage,
        payload: StreamReader,
        protocol: web.RequestHandler,
        writer: AbstractStreamWriter,
        task: asyncio.Task[None],
    ) -> web.BaseRequest:
        if isinstance(protocol, GuardedConnection):
            protocol.head_received(payload)
        return factory(message, payload, protocol, writer, task)

    return make


def _done_when_answered(handler: RequestHandlerFn) -> RequestHandlerFn:
    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        try:
            return await handler(request)
        finally:
            if isinstance(request.protocol, GuardedConnection):
                request.protocol.answered()

    return handle


@asynccontextmanager
async def serving(
    app: web.Application,
    host: str,
    port: int,
    limits: ConnectionLimits | None = None,
    *,
    sockets: Sequence[socket.socket] = (),
) -> AsyncIterator[int]:
    """Serve `app` on host:port (0 picks a free port), or on `sockets` already bound to it
    (`exporter.web.listening`, which this closes), and yield the port actually bound."""
    app_runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await app_runner.setup()  # runs the app's startup and cleanup contexts
    try:
        built = app_runner.server
        if built is None:  # setup() returned, so it built one; this narrows the type
            raise RuntimeError("the app runner built no server")
        server = GuardedServer(
            built.request_handler, built.request_factory, limits or ConnectionLimits()
        )
        runner = web.ServerRunner(
            server, handle_signals=False, shutdown_timeout=SHUTDOWN_TIMEOUT_SECONDS
        )
        await runner.setup()
        try:
            sites: Sequence[web.BaseSite] = [web.SockSite(runner, sock) for sock in sockets] or [
                web.TCPSite(runner, host, port)
            ]
            for site in sites:
                await site.start()
            bound: int = runner.addresses[0][1]
            yield bound
        finally:
            await runner.cleanup()
    finally:
        await app_runner.cleanup()
