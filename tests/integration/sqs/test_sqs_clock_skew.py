"""Clock skew: a refusal of a request signed at the wrong time corrects the clock, once a call."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from aiohttp import web
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotocoreCredentials

from exporter.sqs.credentials import Credentials, StaticCredentials
from exporter.sqs.errors import SqsError, classify
from exporter.sqs.messages import SourceMisconfigured
from exporter.sqs.wire import SqsClient
from tests.servers import free_port

SECRET = "the-secret"
AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<scope>[^,]+), "
    r"SignedHeaders=(?P<signed>[^,]+), Signature=(?P<signature>[0-9a-f]{64})"
)
# How far AWS lets a request's time stray from its own before refusing it.
ALLOWED_SKEW_SECONDS = 300


@dataclass
class SigningEndpoint:
    """An SQS stand-in that checks every signature (with botocore) and its time, as AWS does."""

    skew_code: str
    url: str = ""
    seen: list[str] = field(default_factory=list)  # per request: "ok", "skewed" or "forged"

    def _verdict(self, request: web.Request, body: bytes) -> str:
        match = AUTHORIZATION.fullmatch(request.headers.get("Authorization", ""))
        if match is None:
            return "forged"
        stamp = request.headers.get("X-Amz-Date", "")
        names = match["signed"].split(";")
        signed = AWSRequest(
            method=request.method,
            url=f"http://{request.host}{request.path}",
            data=body,
            headers={name: request.headers.get(name, "") for name in names},
        )
        signed.context["timestamp"] = stamp
        token = request.headers.get("X-Amz-Security-Token")
        auth = SigV4Auth(BotocoreCredentials(match["key"], SECRET, token), "sqs", "us-east-1")
        to_sign = auth.string_to_sign(signed, auth.canonical_request(signed))
        expected = auth.signature(to_sign, signed)
        if expected != match["signature"]:
            return "forged"
        sent = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()
        return "ok" if abs(sent - time.time()) <= ALLOWED_SKEW_SECONDS else "skewed"

    async def handle(self, request: web.Request) -> web.Response:
        """GetQueueUrl for a request signed right and in time, else AWS's refusal."""
        verdict = self._verdict(request, await request.read())
        self.seen.append(verdict)
        if verdict == "ok":
            return web.json_response({"QueueUrl": f"{self.url}/123456789012/q"})
        code = self.skew_code if verdict == "skewed" else "SignatureDoesNotMatch"
        # aiohttp's server adds the Date header, from this (the correct) clock.
        return web.json_response(
            {"__type": f"com.amazon.coral.service#{code}", "message": verdict},
            status=403,
            headers={"x-amzn-query-error": f"{code};Sender"},
        )


Serve = Callable[[str], Awaitable[SigningEndpoint]]


@pytest.fixture(name="serve")
async def fixture_serve() -> AsyncIterator[Serve]:
    """Starts signature-checking endpoints on free ports; stops them after the test."""
    runners: list[web.AppRunner] = []

    async def serve(skew_code: str) -> SigningEndpoint:
        endpoint = SigningEndpoint(skew_code)
        app = web.Application()
        app.router.add_post("/", endpoint.handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        runners.append(runner)
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        endpoint.url = f"http://127.0.0.1:{port}"
        return endpoint

    yield serve
    for runner in runners:
        await runner.cleanup()


def _client(url: str, *, secret: str, skew_seconds: float) -> SqsClient:
    client = SqsClient.connect(
        region="us-east-1",
        endpoint_url=url,
        credentials=StaticCredentials(Credentials("AKIATEST", secret, "token")),
        environ={},
        pool=2,
    )
    client.clock = lambda: time.time() + skew_seconds
    return client


@pytest.mark.parametrize(
    ("code", "skew_seconds"),
    [("SignatureDoesNotMatch", -3600.0), ("RequestTimeTooSkewed", 900.0)],
    ids=["an hour slow, SQS's code", "a quarter of an hour fast, S3's code"],
)
async def test_a_skewed_clock_is_corrected_from_the_servers_date(
    serve: Serve, code: str, skew_seconds: float
) -> None:
    """Refused as skewed: signed again at the server's time at once; later calls sign right."""
    endpoint = await serve(code)
    client = _client(endpoint.url, secret=SECRET, skew_seconds=skew_seconds)
    try:
        first = await client.call("GetQueueUrl", {"QueueName": "q"})
        second = await client.call("GetQueueUrl", {"QueueName": "q"})
    finally:
        await client.close()
    assert first == second == {"QueueUrl": f"{endpoint.url}/123456789012/q"}
    assert endpoint.seen == ["skewed", "ok", "ok"]
    assert abs(client.clock_offset + skew_seconds) < 5  # the Date header has whole seconds


async def test_a_wrong_secret_with_a_right_clock_is_refused_without_a_retry(serve: Serve) -> None:
    """SignatureDoesNotMatch from a server that agrees on the time: not skew, not retried."""
    endpoint = await serve("SignatureDoesNotMatch")
    client = _client(endpoint.url, secret="not-the-secret", skew_seconds=0)
    try:
        with pytest.raises(SqsError) as raised:
            await client.call("GetQueueUrl", {"QueueName": "q"})
    finally:
        await client.close()
    assert endpoint.seen == ["forged"]
    assert client.clock_offset == 0
    assert isinstance(classify(raised.value, "receive"), SourceMisconfigured)


async def test_a_skewed_clock_and_a_wrong_secret_are_corrected_once_then_refused(
    serve: Serve,
) -> None:
    """The clock is corrected, the signature still fails: one more request, then the error."""
    endpoint = await serve("RequestTimeTooSkewed")
    client = _client(endpoint.url, secret="not-the-secret", skew_seconds=-3600)
    try:
        with pytest.raises(SqsError, match="SignatureDoesNotMatch"):
            await client.call("GetQueueUrl", {"QueueName": "q"})
    finally:
        await client.close()
    assert endpoint.seen == ["forged", "forged"]
