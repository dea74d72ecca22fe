"""The stats API as a real process under hostile requests: never a 5xx, never a reset without
the token, never a stack trace."""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator

import pytest
import redis

from tests.faults.harness import Exporter, Stack
from tests.servers import RedisServer
from tests.store_support import DEFAULT_KEYS


@pytest.fixture(name="api_stack", scope="module")
def fixture_api_stack(
    redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """One real `exporter api` process for the module, on the session's real Redis."""
    stack = Stack(
        redis_url=redis_server.url,
        sqs_endpoint="http://127.0.0.1:9",  # the API never talks to SQS
        workdir=tmp_path_factory.mktemp("api"),
        queue="unused",
    )
    stack.start_api()
    yield stack
    stack.stop_all()


@pytest.fixture(name="api")
def fixture_api(api_stack: Stack) -> Exporter:
    """The module's API process, checked alive before each test."""
    assert api_stack.api is not None
    assert api_stack.api.process is not None
    assert api_stack.api.process.poll() is None, api_stack.api.tail()
    return api_stack.api


def _request(
    port: int, method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b""
) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        reply = connection.getresponse()
        return reply.status, reply.read()
    finally:
        connection.close()


def _raw(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/stats/../health"),
        ("GET", "/stats/%2e%2e/%2e%2e/etc/passwd"),
        ("GET", "//stats"),
        ("GET", "/stats/" + "a" * 5000),
        ("GET", "/stats/%00"),
        ("GET", "/stats/%ff%fe"),
        ("GET", "/stats/<script>alert(1)</script>"),
        ("GET", "/stats?type='%20OR%201=1%20--"),
        ("GET", "/../../../../etc/passwd"),
        ("PUT", "/stats"),
        ("PATCH", "/stats/purchase"),
        ("POST", "/health"),
        ("TRACE", "/"),
        ("OPTIONS", "/stats"),
        ("BREW", "/stats"),
        ("DELETE", "/stats/purchase"),
    ],
)
def test_path_tricks_and_bad_methods_get_json_4xx(api: Exporter, method: str, path: str) -> None:
    """Odd paths and methods are answered with a 4xx (or a harmless 200) and JSON, never a 5xx."""
    status, body = _request(api.port, method, path)
    assert status < 500, body
    if status >= 400:
        payload = json.loads(body)
        assert "message" in payload
        assert "Traceback" not in body.decode(errors="replace")


def test_huge_headers_and_bodies_are_refused_without_a_5xx(api: Exporter) -> None:
    """A 100 KiB header and a 10 MiB body are refused with a 4xx; the API keeps serving."""
    status, _ = _request(api.port, "GET", "/stats", headers={"X-Huge": "h" * 100_000})
    assert 400 <= status < 500
    status, _ = _request(
        api.port,
        "DELETE",
        "/stats",
        headers={"Authorization": "Bearer fault-suite-token"},
        body=b"x" * (10 * 1024 * 1024),
    )
    assert 400 <= status < 500
    for hostile in (
        b"GET /stats HTTP/1.1\r\nHost: x\r\n" + b"X: y\r\n" * 5000 + b"\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n",  # TLS to an HTTP port
        b"GET /stats HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
        b"GET /stats HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ):
        head, _, body = _raw(api.port, hostile).partition(b"\r\n\r\n")
        assert head.split(b" ")[1].startswith(b"4"), head
        assert "message" in json.loads(body)
    status, _ = _request(api.port, "GET", "/health")
    assert status == 200


def test_an_oversized_token_header_never_reaches_the_log(api: Exporter) -> None:
    """A 9 KiB Authorization header holding the admin token is a 431 with a fixed message, logged
    as one WARNING line on exporter.http with no traceback and no byte of the header."""
    marker = "fault-suite-token" + "q" * 9000
    before = api.log.read_text(errors="replace") if api.log.exists() else ""
    head, _, body = _raw(
        api.port,
        f"GET /stats HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {marker}\r\n\r\n".encode(),
    ).partition(b"\r\n\r\n")
    assert head.split(b" ")[1] == b"431", head
    assert b"qqqq" not in body
    assert json.loads(body)["error"] == "header_too_large"
    status, _ = _request(api.port, "GET", "/health")  # a line logged after ours: ours is flushed
    assert status == 200
    new = api.log.read_text(errors="replace")[len(before) :]
    assert "fault-suite-token" not in new
    assert "Traceback" not in new
    refused = [json.loads(line) for line in new.splitlines() if "refused a malformed" in line]
    assert [(r["level"], r["logger"]) for r in refused] == [("warning", "exporter.http")], new


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Bearer wrong-token",
        "Bearer fault-suite-toke",
        "Bearer fault-suite-token-and-more",
        "Token fault-suite-token",
        "Basic ZmF1bHQtc3VpdGUtdG9rZW4=",
        "Bearer " + "x" * 4000,
    ],
)
def test_reset_is_impossible_without_the_token(
    api: Exporter, api_stack: Stack, authorization: str | None
) -> None:
    """Every wrong or missing credential gets 401 and the totals stay; the right one resets."""
    client = redis.Redis.from_url(api_stack.redis_url)
    totals = {"count:keep": 3, "units:keep": 6, "frac:keep": 0}
    client.hset(DEFAULT_KEYS.legacy_totals, mapping=totals)  # type: ignore[arg-type]
    client.sadd(DEFAULT_KEYS.types, "keep")
    headers = {} if authorization is None else {"Authorization": authorization}
    status, body = _request(api.port, "DELETE", "/stats", headers=headers)
    assert status == 401, body
    assert json.loads(body)["message"]
    status, body = _request(api.port, "GET", "/stats/keep")
    assert status == 200
    assert json.loads(body)["count"] == 3
    status, _ = _request(
        api.port, "DELETE", "/stats", headers={"Authorization": "Bearer fault-suite-token"}
    )
    assert status == 204
    status, _ = _request(api.port, "GET", "/stats/keep")
    assert status == 404
    client.close()
