"""SQS's JSON protocol over aiohttp: one signed POST per call, tried again when transient.

The processor's hot path (receive, delete, visibility, dead letters) runs here instead of boto3,
whose per-call machinery cost about 50 times the rest of the pipeline (decision 0006).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urlsplit

from exporter import __version__
from exporter.retry import Backoff
from exporter.sqs.credentials import CredentialSource
from exporter.sqs.errors import SqsError, SqsUnreachable
from exporter.sqs.sigv4 import Signer
from exporter.sqs.transport import Transport, make_transport

log = logging.getLogger(__name__)

CONTENT_TYPE: Final = "application/x-amz-json-1.0"
ATTEMPTS: Final = 3  # as botocore's "standard" retry mode: the first try and two retries
DEFAULT_PORTS: Final = {"http": 80, "https": 443}
USER_AGENT: Final = f"sqs-metrics-exporter/{__version__}"


def endpoint_for(region: str, endpoint_url: str | None) -> str:
    """The URL to send SQS calls to: the one given, else the region's public endpoint."""
    if endpoint_url:
        return endpoint_url
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"https://sqs.{region}.{suffix}"


def _host_header(url: str) -> tuple[str, str]:
    """The Host header for `url` (port only when not the scheme's default), and its path."""
    parts = urlsplit(url)
    if parts.hostname is None or parts.scheme not in DEFAULT_PORTS:
        raise ValueError(f"not an http(s) URL: {url!r}")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname  # IPv6 literal
    if parts.port is not None and parts.port != DEFAULT_PORTS[parts.scheme]:
        host = f"{host}:{parts.port}"
    return host, parts.path or "/"


def error_from(status: int, headers: Mapping[str, str], body: bytes) -> SqsError:
    """The error an answer carries; the query-protocol code when SQS gives it, as boto3 reports."""
    try:
        document = json.loads(body)
    except ValueError:
        document = {}
    if not isinstance(document, dict):
        document = {}
    query_error = str(headers.get("x-amzn-query-error", "")).split(";", 1)[0]
    code = query_error or str(document.get("__type", "")).rsplit("#", 1)[-1] or f"HTTP{status}"
    message = str(document.get("message") or document.get("Message") or "")
    return SqsError(code, message, status)


@dataclass(slots=True)
class SqsClient:
    """Calls SQS operations by name with a JSON payload, over a transport of bounded connections."""

    endpoint: str
    region: str
    credentials: CredentialSource
    transport: Transport
    read_timeout: float = 15
    attempts: int = ATTEMPTS
    _signer: Signer = field(init=False, repr=False)
    _host: str = field(init=False, repr=False)
    _path: str = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._host, self._path = _host_header(self.endpoint)
        self._signer = Signer(self.region, "sqs")

    @classmethod
    def connect(
        cls,
        *,
        region: str,
        endpoint_url: str | None,
        credentials: CredentialSource,
        environ: Mapping[str, str],
        pool: int = 10,
        connect_timeout: float = 5,
        read_timeout: float = 15,
        attempts: int = ATTEMPTS,
    ) -> SqsClient:
        """A client of the region's endpoint (or `endpoint_url`); connections are made on use."""
        endpoint = endpoint_for(region, endpoint_url)
        transport = make_transport(endpoint, environ, limit=pool, connect_timeout=connect_timeout)
        return cls(endpoint, region, credentials, transport, read_timeout, attempts)

    async def close(self) -> None:
        """Close the connections."""
        await self.transport.close()

    async def call(self, operation: str, payload: dict[str, Any]) -> dict[str, Any]:
        """The answer to `operation` (e.g. "ReceiveMessage"); transient failures tried again.

        Raises SqsError for an error SQS answered, SqsUnreachable when there was no answer,
        CredentialsMissing when the chain has none.
        """
        body = json.dumps(payload, separators=(",", ":")).encode()
        backoff = Backoff(base_seconds=0.05, cap_seconds=2.0)
        for attempt in range(1, self.attempts + 1):
            try:
                return await self._send(operation, body)
            except SqsError as exc:
                if not exc.transient or attempt == self.attempts:
                    raise
                failure: Exception = exc
            except SqsUnreachable as exc:
                if attempt == self.attempts:
                    raise
                failure = exc
            log.debug("SQS %s failed, retrying", operation, extra={"error": str(failure)})
            await asyncio.sleep(backoff.next_delay())
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    async def _send(self, operation: str, body: bytes) -> dict[str, Any]:
        headers = {
            "Host": self._host,
            "Content-Type": CONTENT_TYPE,
            "X-Amz-Target": f"AmazonSQS.{operation}",
        }
        credentials = await self.credentials.current()
        headers.update(
            self._signer.sign(
                credentials,
                method="POST",
                path=self._path,
                query="",
                headers=headers,
                body=body,
                now=datetime.now(UTC),
            )
        )
        headers["User-Agent"] = USER_AGENT
        answer = await self.transport.post(headers, body, self.read_timeout)
        if answer.status >= 300:
            raise error_from(answer.status, answer.headers, answer.body)
        try:
            result = json.loads(answer.body) if answer.body else {}
        except ValueError as exc:
            raise SqsUnreachable(
                f"unreadable answer to {operation} (HTTP {answer.status})"
            ) from exc
        if not isinstance(result, dict):
            raise SqsUnreachable(f"unexpected answer to {operation} (HTTP {answer.status})")
        return result


__all__ = ["SqsClient", "endpoint_for", "error_from"]
