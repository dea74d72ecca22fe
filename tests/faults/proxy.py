"""Fault proxies in front of a real SQS endpoint: a TCP proxy that can go dark (an endpoint that
becomes unreachable), and an HTTP one that answers chosen actions with errors and counts them."""

from __future__ import annotations

import collections
import contextlib
import selectors
import socket
import threading
from collections.abc import Mapping
from urllib.parse import parse_qs

import aiohttp
from aiohttp import web

from tests.servers import free_port


class TcpProxy:
    """Forwards a loopback port to a target; `cut()` drops every connection and refuses new ones."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._lock = threading.Lock()
        self._running = False

    @property
    def url(self) -> str:
        """The endpoint URL clients use instead of the target's."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Listen and forward until `cut()`."""
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        self._running = True
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        selector = selectors.DefaultSelector()
        assert self._listener is not None
        self._listener.setblocking(False)
        selector.register(self._listener, selectors.EVENT_READ, None)
        while self._running:
            for key, _ in selector.select(timeout=0.1):
                if key.data is None:
                    self._accept(selector)
                else:
                    self._pump(selector, key.fileobj, key.data)  # type: ignore[arg-type]
        selector.close()

    def _accept(self, selector: selectors.BaseSelector) -> None:
        assert self._listener is not None
        try:
            client, _ = self._listener.accept()
            upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
        except OSError:
            return
        client.setblocking(False)
        upstream.setblocking(False)
        with self._lock:
            self._pairs.append((client, upstream))
        selector.register(client, selectors.EVENT_READ, upstream)
        selector.register(upstream, selectors.EVENT_READ, client)

    def _pump(
        self, selector: selectors.BaseSelector, source: socket.socket, sink: socket.socket
    ) -> None:
        try:
            data = source.recv(65536)
            if data:
                sink.setblocking(True)
                sink.sendall(data)
                sink.setblocking(False)
                return
        except OSError:
            pass
        for sock in (source, sink):
            with contextlib.suppress(KeyError, ValueError):
                selector.unregister(sock)
            sock.close()

    def cut(self) -> None:
        """Close the listener and every open connection: the endpoint is gone."""
        self._running = False
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            for client, upstream in self._pairs:
                client.close()
                upstream.close()
            self._pairs.clear()


class SqsFaultProxy:
    """An HTTP proxy in front of a real SQS endpoint (moto) that answers the actions it is told
    to fail with a 500 (`fail("DeleteMessageBatch")`) and counts every request by action; the
    rest goes through. It runs on the test's event loop: start and stop it there."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.port = free_port()
        self.failing: set[str] = set()
        self.requests: collections.Counter[str] = collections.Counter()
        self.failed: collections.Counter[str] = collections.Counter()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        """The endpoint URL clients use instead of the target's."""
        return f"http://127.0.0.1:{self.port}"

    def fail(self, *actions: str) -> None:
        """Answer every request of `actions` (SQS action names) with a 500 from now on."""
        self.failing.update(actions)

    async def start(self) -> None:
        """Listen on the proxy's port."""
        self._session = aiohttp.ClientSession(auto_decompress=False)
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        """Stop listening and close the connections to the target."""
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _forward(self, request: web.Request) -> web.Response:
        body = await request.read()
        action = _sqs_action(request.headers, body)
        self.requests[action] += 1
        if action in self.failing:
            self.failed[action] += 1
            return web.json_response(
                {"__type": "InternalFailure", "message": "injected by the test"}, status=500
            )
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS}
        async with self._session.post(
            self.target + request.path_qs, data=body, headers=headers
        ) as answer:
            kept = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP_HEADERS}
            return web.Response(status=answer.status, body=await answer.read(), headers=kept)


# Headers of one connection, not of the request: the proxy's own connections set them.
_HOP_HEADERS = frozenset(
    {"host", "content-length", "connection", "keep-alive", "transfer-encoding", "date", "server"}
)


def _sqs_action(headers: Mapping[str, str], body: bytes) -> str:
    """The SQS action of a request: JSON protocol's target header, or the query protocol's
    `Action` field (what boto3 sends older endpoints)."""
    target = headers.get("X-Amz-Target", "")
    if target:
        return target.rsplit(".", 1)[-1]
    return parse_qs(body.decode("utf-8", "replace")).get("Action", ["?"])[0]
