"""A lean HTTP/1.1 client for one host: keep-alive connections, one request at a time on each.

It knows only what SQS's JSON protocol needs: POST with a body, a response framed by
Content-Length, chunked encoding or the connection's close. No proxies (a proxied endpoint uses
aiohttp instead, see `exporter.sqs.transport`), no redirects, no cookies, no compression. A
connection is reused only after a complete answer; any failure, timeout or cancellation closes it,
so a late answer can never be read as the answer to the next request.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

MAX_HEAD_BYTES: Final = 64 * 1024
NO_BODY: Final = frozenset({204, 304})  # answers that never carry a body (RFC 9112, 6.3)


class HttpFailure(Exception):
    """No usable answer: the connection failed, closed early, timed out, or spoke nonsense."""


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP answer: status, headers (names in lower case), body."""

    status: int
    headers: Mapping[str, str]
    body: bytes


class _Connection(asyncio.Protocol):
    """One keep-alive connection; `request` sends bytes and waits for one complete answer."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.open = False
        self._buffer = bytearray()
        self._waiter: asyncio.Future[Answer] | None = None
        self._head: tuple[int, dict[str, str]] | None = None
        self._keep_alive = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.open = True

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        if self._head is not None and self._until_close():
            self._finish(bytes(self._buffer))
        self._fail(HttpFailure(f"connection closed before the answer ({exc or 'by the server'})"))

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if self._waiter is None:
            return  # nothing asked: the connection is closed when next taken from the pool
        try:
            self._parse()
        except HttpFailure as exc:
            self._fail(exc)

    def _until_close(self) -> bool:
        assert self._head is not None
        status, headers = self._head
        return (
            status not in NO_BODY
            and "content-length" not in headers
            and "chunked" not in headers.get("transfer-encoding", "")
        )

    def _parse(self) -> None:
        if self._head is None:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > MAX_HEAD_BYTES:
                    raise HttpFailure("answer head too long")
                return
            lines = self._buffer[:end].decode("latin-1").split("\r\n")
            del self._buffer[: end + 4]
            parts = lines[0].split(" ", 2)
            if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
                raise HttpFailure(f"not an HTTP/1.x answer: {lines[0][:80]!r}")
            headers: dict[str, str] = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            self._head = (int(parts[1]), headers)
            self._keep_alive = headers.get("connection", "").lower() != "close" and (
                parts[0] != "HTTP/1.0"
            )
        status, headers = self._head
        if status in NO_BODY:
            self._finish(b"")
        elif "chunked" in headers.get("transfer-encoding", ""):
            self._parse_chunked()
        elif "content-length" in headers:
            length = headers["content-length"]
            if not length.isdigit():
                raise HttpFailure(f"bad Content-Length {length[:20]!r}")
            if len(self._buffer) >= int(length):
                body = bytes(self._buffer[: int(length)])
                del self._buffer[: int(length)]
                self._finish(body)
        # Otherwise the body ends when the server closes the connection (connection_lost).

    def _parse_chunked(self) -> None:
        body = bytearray()
        at = 0
        while True:
            line_end = self._buffer.find(b"\r\n", at)
            if line_end < 0:
                return
            size_text = self._buffer[at:line_end].split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError as exc:
                raise HttpFailure("bad chunk size") from exc
            start = line_end + 2
            if size == 0:
                trailer_end = self._buffer.find(b"\r\n\r\n", line_end)
                if trailer_end < 0:
                    return
                del self._buffer[: trailer_end + 4]
                self._finish(bytes(body))
                return
            if len(self._buffer) < start + size + 2:
                return
            body += self._buffer[start : start + size]
            at = start + size + 2

    def _finish(self, body: bytes) -> None:
        assert self._head is not None
        status, headers = self._head
        waiter, self._waiter, self._head = self._waiter, None, None
        if waiter is not None and not waiter.done():
            waiter.set_result(Answer(status, headers, body))

    def _fail(self, exc: HttpFailure) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        self.close()

    def reusable(self) -> bool:
        """Whether the last request ended cleanly and the connection may carry another."""
        return self.open and self._keep_alive and self._waiter is None and not self._buffer

    async def request(self, data: bytes) -> Answer:
        """Send `data`, a whole request, and wait for the whole answer."""
        assert self.transport is not None
        self._waiter = asyncio.get_running_loop().create_future()
        self._head = None
        self.transport.write(data)
        return await self._waiter

    def close(self) -> None:
        """Close the connection at once."""
        self.open = False
        if self.transport is not None:
            self.transport.close()


@dataclass(slots=True)
class Http1Pool:
    """Up to `limit` keep-alive connections to one host; a request waits for a free one."""

    host: str
    port: int
    tls: bool
    limit: int = 10
    connect_timeout: float = 5.0
    ca_file: str | None = None
    _idle: list[_Connection] = field(default_factory=list, init=False)
    _slots: asyncio.Semaphore | None = field(default=None, init=False)
    _ssl: ssl.SSLContext | None = field(default=None, init=False)

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        if self.tls and self._ssl is None:
            self._ssl = ssl.create_default_context(cafile=self.ca_file)
        try:
            async with asyncio.timeout(self.connect_timeout):
                _transport, connection = await loop.create_connection(
                    _Connection,
                    self.host,
                    self.port,
                    ssl=self._ssl if self.tls else None,
                    server_hostname=self.host if self.tls else None,
                )
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            raise HttpFailure(f"cannot connect to {self.host}:{self.port}: {exc}") from exc
        return connection

    async def request(self, data: bytes, within: float) -> Answer:
        """Send `data` on a free connection; the answer within `within` seconds, or HttpFailure."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.limit)
        async with self._slots:
            connection = None
            while self._idle and connection is None:
                candidate = self._idle.pop()
                if candidate.reusable():
                    connection = candidate
                else:
                    candidate.close()
            if connection is None:
                connection = await self._connect()
            try:
                async with asyncio.timeout(within):
                    answer = await connection.request(data)
            except TimeoutError as exc:
                connection.close()
                raise HttpFailure(f"no answer within {within:g} s") from exc
            except BaseException:
                connection.close()
                raise
            if connection.reusable():
                self._idle.append(connection)
            else:
                connection.close()
            return answer

    def close(self) -> None:
        """Close every idle connection (one in use closes when its request ends)."""
        while self._idle:
            self._idle.pop().close()


__all__ = ["Answer", "Http1Pool", "HttpFailure"]
