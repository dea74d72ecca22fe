"""The SQS wire client over real HTTP: the stand-in for retries and errors, framing, reuse."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from exporter.sqs.config import SqsConfig
from exporter.sqs.credentials import Credentials, StaticCredentials
from exporter.sqs.errors import SqsError, SqsUnreachable
from exporter.sqs.messages import SourceMisconfigured, SourceUnavailable
from exporter.sqs.source import SqsSource
from exporter.sqs.transport import HttpTransport
from exporter.sqs.wire import SqsClient
from tests.integration.processing.processor_support import source_on
from tests.perf.sqs_standin import StandIn, make_app, prepared_bodies
from tests.servers import free_port

KEYS = StaticCredentials(Credentials("testing", "testing", "session-token"))


async def _serve(app: web.Application) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, port


@pytest.fixture(name="standin")
async def fixture_standin() -> AsyncIterator[StandIn]:
    """The SQS stand-in, served on a free port for this test."""
    port = free_port()
    state = StandIn(f"http://127.0.0.1:{port}", prepared_bodies(50))
    runner = web.AppRunner(make_app(state), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield state
    await runner.cleanup()


def _client(standin: StandIn, keys: StaticCredentials = KEYS) -> SqsClient:
    return SqsClient.connect(
        region="us-east-1", endpoint_url=standin.base_url, credentials=keys, environ={}, pool=4
    )


async def test_receive_checks_checksums_and_reads_attributes(standin: StandIn) -> None:
    """Ten messages per receive, MD5s verified, the traceparent attribute and counts read."""
    source = source_on(_client(standin), standin.queue_url("q"), standin.queue_url("q-dlq"))
    try:
        messages = await source.receive(10)
        assert len(messages) == 10
        assert all(m.traceparent and m.receive_count == 1 for m in messages)
        assert all(m.first_received_at is not None for m in messages)
        assert await source.delete(messages) == []
        await source.change_visibility(messages, 0)
    finally:
        await source.close()
    assert standin.counts.deleted == 10
    assert standin.counts.visibility_changed == 10
    assert standin.counts.unsigned == 0


async def test_transient_server_errors_are_retried_with_backoff(standin: StandIn) -> None:
    """Two 500s then success: the call succeeds on its third attempt, nothing surfaces; the wire
    client itself makes one attempt, its caller's retry layer the others."""
    client = _client(standin)
    source = source_on(client, standin.queue_url("q"), standin.queue_url("q-dlq"))
    standin.fail_next = 2
    try:
        counts = await source.depths()
        standin.fail_next = 1
        with pytest.raises(SqsError, match="InternalFailure"):
            await client.call("GetQueueUrl", {"QueueName": "q"})
    finally:
        await source.close()
    assert [depth.role for depth in counts] == ["main", "dead_letter"]
    assert standin.counts.failed == 3


async def test_persistent_server_errors_end_as_transient_failures(standin: StandIn) -> None:
    """503 on every attempt: after three the source reports SourceUnavailable, each failed
    attempt counted."""
    errors: list[str] = []
    source = source_on(
        _client(standin), standin.queue_url("q"), standin.queue_url("q-dlq"), on_error=errors.append
    )
    standin.fail_next, standin.fail_status = 10, 503
    try:
        with pytest.raises(SourceUnavailable, match="InternalFailure"):
            await source.ping()
    finally:
        await source.close()
    assert standin.counts.failed == 3
    assert errors == ["ping"] * 3


async def test_a_missing_queue_and_refused_keys_are_configuration_errors(standin: StandIn) -> None:
    """A missing queue (query-protocol code) and refused keys make open() fail for good."""
    missing = SqsConfig(
        queue_name="missing-q", dlq_name="missing-dlq", endpoint_url=standin.base_url,
        create_queues=False,
    )  # fmt: skip
    with pytest.raises(SourceMisconfigured, match="does not exist"):
        await SqsSource.open(
            missing, environ={"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"}
        )
    before = standin.counts.requests  # the lookups of the missing queue and its dead letters
    refused = SqsConfig(queue_name="q", dlq_name="q-dlq", endpoint_url=standin.base_url)
    environ = {"AWS_ACCESS_KEY_ID": "refused", "AWS_SECRET_ACCESS_KEY": "b"}
    with pytest.raises(SourceMisconfigured, match="UnrecognizedClientException"):
        await SqsSource.open(refused, environ=environ)
    client = _client(standin, StaticCredentials(Credentials("refused", "x")))
    try:
        with pytest.raises(SqsError) as raised:
            await client.call("GetQueueUrl", {"QueueName": "q"})
    finally:
        await client.close()
    assert raised.value.status == 403
    assert standin.counts.requests == before + 2  # refused keys are not retried


async def test_a_proxy_that_refuses_connections_is_named_as_the_proxy() -> None:
    """HTTPS_PROXY pointing at nothing: SqsUnreachable names the proxy, not SQS, and no password."""
    port = free_port()
    client = SqsClient.connect(
        region="eu-west-1",
        endpoint_url=None,
        credentials=KEYS,
        environ={"HTTPS_PROXY": f"http://user:s3cret@127.0.0.1:{port}"},
    )
    expected = r"cannot connect to the proxy 127\.0\.0\.1:"
    try:
        with pytest.raises(SqsUnreachable, match=expected) as refused:
            await client.call("GetQueueUrl", {"QueueName": "q"})
    finally:
        await client.close()
    assert f"127.0.0.1:{port}" in str(refused.value)
    assert "s3cret" not in str(refused.value)


async def test_an_endpoint_that_refuses_connections_is_unreachable() -> None:
    """Nothing listening: SqsUnreachable, no hang."""
    client = SqsClient.connect(
        region="us-east-1",
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        credentials=KEYS,
        environ={},
    )
    try:
        with pytest.raises(SqsUnreachable, match="cannot connect"):
            await client.call("GetQueueUrl", {"QueueName": "q"})
    finally:
        await client.close()


def _transport(port: int, *, read_timeout: float = 5) -> HttpTransport:
    return HttpTransport(
        f"http://127.0.0.1:{port}/", proxy=None, limit=1, connect_timeout=5,
        read_timeout=read_timeout,
    )  # fmt: skip


async def test_answers_framed_by_chunks_or_by_close_are_read_whole() -> None:
    """Chunked, empty (204) and close-delimited answers arrive whole; connections are reused."""
    peers: list[object] = []

    async def chunked(request: web.Request) -> web.StreamResponse:
        peers.append(request.transport.get_extra_info("peername") if request.transport else None)
        reply = web.StreamResponse()
        reply.enable_chunked_encoding()
        await reply.prepare(request)
        for part in (b'{"a":', b"1", b"}"):
            await reply.write(part)
        await reply.write_eof()
        return reply

    async def closing(request: web.Request) -> web.StreamResponse:
        reply = web.StreamResponse(headers={"Connection": "close"})
        reply.force_close()
        await reply.prepare(request)
        await reply.write(b"closed-")
        await reply.write(b"body")
        await reply.write_eof()
        return reply

    async def empty(_request: web.Request) -> web.Response:
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/", chunked)
    app.router.add_post("/closing", closing)
    app.router.add_post("/empty", empty)
    runner, port = await _serve(app)
    transport = _transport(port)
    try:
        for _ in range(3):
            answer = await transport.post([("Host", "x")], b"{}")
            assert (answer.status, answer.body) == (200, b'{"a":1}')
        assert len(set(map(str, peers))) == 1  # one connection carried all three
        for path, expected in (("/empty", (204, b"")), ("/closing", (200, b"closed-body"))):
            other = HttpTransport(
                f"http://127.0.0.1:{port}{path}", proxy=None, limit=1, connect_timeout=5,
                read_timeout=5,
            )  # fmt: skip
            try:
                answer = await other.post([("Host", "x")], b"")
            finally:
                await other.close()
            assert (answer.status, answer.body) == expected
    finally:
        await transport.close()
        await runner.cleanup()


async def test_a_silent_server_times_out_and_its_connection_is_not_reused() -> None:
    """No answer within the limit: SqsUnreachable, and the next request gets a fresh connection."""
    calls = 0
    release = asyncio.Event()

    async def slow_once(_request: web.Request) -> web.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            await release.wait()
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/", slow_once)
    runner, port = await _serve(app)
    transport = _transport(port, read_timeout=0.3)
    try:
        with pytest.raises(SqsUnreachable, match=r"no answer from http://127\.0\.0\.1:\d+ within"):
            await transport.post([("Host", "x")], b"")
        release.set()
        answer = await transport.post([("Host", "x")], b"")
        assert answer.body == b"ok"
    finally:
        await transport.close()
        await runner.cleanup()


async def test_a_request_a_connection_lost_is_sent_once_more_and_only_once() -> None:
    """A server that closes the connection without answering: the request goes once more on a
    new connection (keep-alive's cost, not a retry), never a third time; one that drops only
    the first request answers the second."""
    drops = {"left": 1}
    requests = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal requests
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        await reader.readexactly(length)
        requests += 1
        if drops["left"]:
            drops["left"] -= 1
        else:
            writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()
        writer.close()

    port = free_port()
    server = await asyncio.start_server(serve, "127.0.0.1", port)
    transport = _transport(port)
    try:
        answer = await transport.post([("Host", "x")], b"{}")
        assert (answer.status, answer.body, requests) == (200, b"ok", 2)
        drops["left"], requests = 10, 0
        with pytest.raises(SqsUnreachable, match="ServerDisconnectedError"):
            await transport.post([("Host", "x")], b"{}")
        assert requests == 2
    finally:
        await transport.close()
        server.close()
        await server.wait_closed()
