"""The HTTP server both apps run on, over real sockets: oversized and malformed requests get a
fixed JSON 4xx and one log line without their bytes; slow clients and floods are bounded."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator

import pytest
from prometheus_client import CollectorRegistry

from exporter.web.health import make_health_app
from exporter.web.limits import ConnectionLimits
from exporter.web.server import serving
from tests.polling import eventually, scaled

SECRET = "s3cr3t-admin-token"
JSON_TYPE = "application/json; charset=utf-8"
GET_HEALTH = b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


async def _ok() -> None:
    return None


# Deadlines short enough for a quick test, long enough that a loaded machine does not trip them
# between two steps of a test.
HEAD_SECONDS = 2.0


@pytest.fixture(name="port")
async def fixture_port() -> AsyncIterator[int]:
    """The processor's health app served with short deadlines and a cap of three connections."""
    limits = ConnectionLimits(
        head_timeout_seconds=HEAD_SECONDS, body_timeout_seconds=HEAD_SECONDS, max_connections=3
    )
    app = make_health_app(CollectorRegistry(), {"redis": _ok})
    async with serving(app, "127.0.0.1", 0, limits) as port:
        yield port


async def _exchange(port: int, data: bytes) -> bytes:
    """Send `data`, then read until the server closes the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        async with asyncio.timeout(10):
            return await reader.read()
    finally:
        writer.close()


def _parse(answer: bytes) -> tuple[int, dict[str, str], dict[str, object]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    payload = json.loads(body)
    assert isinstance(payload, dict)
    return int(lines[0].split(" ")[1]), headers, payload


@pytest.mark.parametrize(
    ("request_bytes", "status", "error"),
    [
        (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "uri_too_long"),
        (
            b"GET /health HTTP/1.1\r\nAuthorization: Bearer "
            + SECRET.encode()
            + b"a" * 9000
            + b"\r\n\r\n",
            431,
            "header_too_large",
        ),
        (
            b"GET /health HTTP/1.1\r\n"
            + b"".join(b"X-%d: %s\r\n" % (n, SECRET.encode()) for n in range(100))
            + b"\r\n",
            431,
            "too_many_headers",
        ),
        (b"FOO /health HTTP/1.1\r\nHost: x\r\n\r\n", 400, "unknown_method"),
        (b"GET /health HTTP/1.1\r\nContent-Length: -5\r\n\r\n", 400, "bad_request"),
    ],
)
async def test_refused_requests_get_a_fixed_json_answer_and_one_quiet_warning(
    port: int,
    caplog: pytest.LogCaptureFixture,
    request_bytes: bytes,
    status: int,
    error: str,
) -> None:
    """Parser refusals are 414/431/400 JSON with a fixed sentence; the log has one WARNING line,
    no traceback, and no byte of the request (the token never reaches any log)."""
    caplog.set_level(logging.DEBUG)
    got, headers, body = _parse(await _exchange(port, request_bytes))
    assert (got, body["error"]) == (status, error)
    assert headers["Content-Type"] == JSON_TYPE
    assert set(body) == {"error", "message"}
    message = str(body["message"])
    assert "aaaa" not in message
    assert SECRET not in message
    assert "bytearray" not in message
    assert "Invalid method encountered" not in message
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [(r.name, r.levelname, r.exc_info) for r in warnings] == [
        ("exporter.http", "WARNING", None)
    ]
    assert not [r for r in caplog.records if SECRET in r.getMessage() + str(r.__dict__)]


async def test_every_error_of_the_metrics_port_has_the_one_shape(port: int) -> None:
    """A 404 and a 405 from the processor's port are the same JSON shape and type as the API's."""
    for request_bytes, status in (
        (b"GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 404),
        (b"POST /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 405),
    ):
        got, headers, body = _parse(await _exchange(port, request_bytes))
        assert got == status
        assert headers["Content-Type"] == JSON_TYPE
        assert set(body) == {"error", "message"}
        assert "/metrics" in str(body["message"])


async def test_a_slow_client_is_cut_off_while_others_are_served(port: int) -> None:
    """A client dribbling its head a byte at a time is closed after the head deadline (2 s);
    meanwhile other clients get their answers."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    served = 0
    closed_after: float | None = None
    try:
        for byte in b"GET /health HTTP/1.1\r\nX-Slow: " + b"z" * 200:
            writer.write(bytes([byte]))
            try:
                async with asyncio.timeout(0.1):
                    if await reader.read(1) == b"":
                        closed_after = time.monotonic() - started
                        break
            except TimeoutError:
                pass  # still open: the next byte comes, and another client is served
            got, _, _ = _parse(await _exchange(port, GET_HEALTH))
            assert got == 200
            served += 1
    finally:
        writer.close()
    assert closed_after is not None, "the slow client was never cut off"
    assert HEAD_SECONDS * 0.9 <= closed_after < scaled(HEAD_SECONDS + 5)
    assert served >= 3


async def test_a_body_that_does_not_arrive_in_time_closes_the_connection(port: int) -> None:
    """A request declaring a body that never fully arrives is closed after the body deadline."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"POST /health HTTP/1.1\r\nContent-Length: 1000\r\n\r\npartial")
        await writer.drain()
        async with asyncio.timeout(5):
            while await reader.read(65536):
                pass  # the 405 answer, then the close
    finally:
        writer.close()


async def test_connections_over_the_cap_get_a_503_and_the_server_recovers(port: int) -> None:
    """With three connections open, a fourth is answered 503 JSON; once one closes, it is served."""
    idle = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
    try:
        got, headers, body = _parse(await _exchange(port, b""))
        assert got == 503
        assert headers["Content-Type"] == JSON_TYPE
        assert body["error"] == "too_many_connections"
    finally:
        for _, writer in idle:
            writer.close()

    async def served() -> bool:
        return _parse(await _exchange(port, GET_HEALTH))[0] == 200

    await eventually(served, timeout=5, message="the closed connections to free their slots")
