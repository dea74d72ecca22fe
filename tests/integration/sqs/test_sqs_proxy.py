"""SQS's public endpoint reached only through a real HTTPS proxy, trusting AWS_CA_BUNDLE's CA.

moto's proxy (`python -m moto.proxy`) answers CONNECT for sqs.us-east-1.amazonaws.com with a
certificate of its own CA and serves the calls from moto: the client can only succeed if it went
through the proxy and trusted the CA the environment names (this machine has no route to AWS).
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import moto.moto_proxy
import pytest

from exporter.sqs.config import SqsConfig
from exporter.sqs.credentials import Credentials, StaticCredentials
from exporter.sqs.errors import SqsUnreachable
from exporter.sqs.source import SqsSource
from exporter.sqs.wire import SqsClient
from tests.servers import end_process, free_port, require_binary, start_process, wait_ready

MOTO_CA = Path(moto.moto_proxy.__file__).with_name("ca.crt")
KEYS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def _listens(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True


@pytest.fixture(name="proxy_url", scope="module")
def fixture_proxy_url() -> Iterator[str]:
    """moto's intercepting proxy on a free port (it makes its certificates with openssl)."""
    require_binary("openssl")
    port = free_port()
    process = start_process(
        [sys.executable, "-m", "moto.proxy", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_ready(process, lambda: _listens(port), message=f"moto proxy on {port}")
    yield f"http://127.0.0.1:{port}"
    end_process(process)


def _client(environ: dict[str, str]) -> SqsClient:
    """A client of the region's public endpoint (one attempt a call), configured by `environ`."""
    return SqsClient.connect(
        region="us-east-1",
        endpoint_url=None,
        credentials=StaticCredentials(Credentials("testing", "testing")),
        environ=environ,
    )


async def test_the_processors_source_works_through_an_https_proxy(proxy_url: str) -> None:
    """Queues created, a message sent, received with its MD5 checked and deleted, all proxied."""
    environ = {**KEYS, "HTTPS_PROXY": proxy_url, "AWS_CA_BUNDLE": str(MOTO_CA)}
    config = SqsConfig(
        queue_name="proxied", dlq_name="proxied-dlq", wait_time_seconds=1, create_queues=True
    )
    source = await SqsSource.open(config, environ=environ)
    producer = _client(environ)
    try:
        assert source.queues[0].url.startswith("https://sqs.us-east-1.amazonaws.com/")
        await producer.call(
            "SendMessage", {"QueueUrl": source.queues[0].url, "MessageBody": '{"x":"é"}'}
        )
        messages = await source.receive(10)
        assert [m.body for m in messages] == ['{"x":"é"}'.encode()]
        assert await source.delete(messages) == []
    finally:
        await producer.close()
        await source.close()


async def test_without_the_proxys_ca_the_connection_is_refused(proxy_url: str) -> None:
    """The same path trusting certifi's bundle only: the proxy's certificate is not accepted."""
    client = _client({"HTTPS_PROXY": proxy_url})
    try:
        with pytest.raises(SqsUnreachable, match=r"(?i)certificate verify failed"):
            await client.call("GetQueueUrl", {"QueueName": "proxied"})
    finally:
        await client.close()
