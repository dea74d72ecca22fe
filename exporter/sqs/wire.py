"""SQS's JSON protocol over aiohttp: one signed POST per call.

The processor's hot path (receive, delete, visibility, dead letters) runs here instead of boto3,
whose per-call machinery cost several times the rest of the pipeline (decision 0006). A call is
one attempt: whether and how to try again is decided by the one retry layer of each call path
above it (`exporter.sqs.queue_calls` names each; decision 0022), never here as well.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Final
from urllib.parse import urlsplit

import orjson

from exporter.sqs.credentials import CredentialSource
from exporter.sqs.errors import SqsError, SqsUnreachable, xml_error
from exporter.sqs.signing import RequestSigner
from exporter.sqs.transport import HttpTransport, make_transport

log = logging.getLogger(__name__)

CONTENT_TYPE: Final = "application/x-amz-json-1.0"
DEFAULT_PORTS: Final = {"http": 80, "https": 443}
# Calls whose signature is worth remembering for its second (signing.py): the same request again.
REPEATED_OPERATIONS: Final = frozenset({"ReceiveMessage", "GetQueueAttributes"})
# The codes AWS answers a request signed at the wrong time with (the set AWS's JavaScript SDK
# corrects its clock on); SQS itself says SignatureDoesNotMatch ("Signature expired").
CLOCK_SKEW_CODES: Final = frozenset(
    {
        "AuthFailure",
        "InvalidSignatureException",
        "RequestExpired",
        "RequestInTheFuture",
        "RequestTimeTooSkewed",
        "SignatureDoesNotMatch",
    }
)
# A refusal with one of those codes from a server whose clock is this far from ours is taken
# for skew; closer, it is what it says (wrong keys, say) and is not tried again.
SKEW_SECONDS: Final = 60.0


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
    """The error an answer carries; the query-protocol code when SQS gives it, as boto3 reports.

    An XML error document (the query protocol's, which moto answers a refused signature with)
    is read too: its code must not be lost to an `HTTP403` that says nothing.
    """
    try:
        document = json.loads(body)
    except ValueError:
        code, message = xml_error(body[:4096].decode("utf-8", "replace"))
        document = {"__type": code or "", "message": message or ""}
    if not isinstance(document, dict):
        document = {}
    query_error = str(headers.get("x-amzn-query-error", "")).split(";", 1)[0]
    code = query_error or str(document.get("__type", "")).rsplit("#", 1)[-1] or f"HTTP{status}"
    message = str(document.get("message") or document.get("Message") or "")
    return SqsError(code, message, status)


def encode(payload: dict[str, Any]) -> bytes:
    """A request's JSON: orjson's, or the standard library's for what orjson refuses."""
    try:
        return orjson.dumps(payload)
    except TypeError:  # a lone surrogate, say: escaped, so that SQS judges it, not the encoder
        return json.dumps(payload, separators=(",", ":")).encode()


def decode(body: bytes) -> Any:
    """An answer's JSON: orjson's, or the standard library's for what orjson refuses."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:  # e.g. an escaped lone surrogate, which json accepts
        return json.loads(body)


class _ClockCorrected(Exception):
    """`error` showed our clock to be skewed and the offset is corrected: sign again."""

    def __init__(self, error: SqsError) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass(slots=True)
class SqsClient:
    """Calls SQS operations by name with a JSON payload, over one transport's connections."""

    endpoint: str
    region: str
    credentials: CredentialSource
    transport: HttpTransport
    clock: Callable[[], float] = time.time
    # Seconds to add to `clock` for the server's time: 0 until an answer shows a skew.
    clock_offset: float = 0.0
    _signer: RequestSigner = field(init=False, repr=False)
    _host: str = field(init=False, repr=False)
    _path: str = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._host, self._path = _host_header(self.endpoint)
        self._signer = RequestSigner(self.region, "sqs")

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
    ) -> SqsClient:
        """A client of the region's endpoint (or `endpoint_url`); connections are made on use."""
        endpoint = endpoint_for(region, endpoint_url)
        transport = make_transport(
            endpoint,
            environ,
            limit=pool,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
        )
        return cls(endpoint, region, credentials, transport)

    async def close(self) -> None:
        """Close the connections."""
        await self.transport.close()

    async def call(self, operation: str, payload: dict[str, Any]) -> dict[str, Any]:
        """The answer to `operation` (e.g. "ReceiveMessage"), in one attempt.

        Raises SqsError for an error SQS answered, SqsUnreachable when there was no answer,
        CredentialsMissing when the chain has none.
        A refusal that shows our clock to be skewed corrects it and is signed again at once, once
        per call: not a retry of a failure, but the same request with the right time.
        """
        body = encode(payload)
        try:
            return await self._send(operation, body)
        except _ClockCorrected:
            try:
                return await self._send(operation, body)
            except _ClockCorrected as again:
                raise again.error from None

    async def _send(self, operation: str, body: bytes) -> dict[str, Any]:
        credentials = await self.credentials.current()
        headers = self._signer.sign(
            credentials,
            method="POST",
            path=self._path,
            headers=(
                ("Host", self._host),
                ("Content-Type", CONTENT_TYPE),
                ("X-Amz-Target", f"AmazonSQS.{operation}"),
            ),
            body=body,
            now=datetime.fromtimestamp(self.clock() + self.clock_offset, UTC),
            # The pollers' long polls of a queue repeat within a second; nothing else does.
            reuse=operation in REPEATED_OPERATIONS,
        )
        answer = await self.transport.post(headers, body)
        if answer.status >= 300:
            error = error_from(answer.status, answer.headers, answer.body)
            if error.code in CLOCK_SKEW_CODES and self._corrects_clock(answer.headers):
                raise _ClockCorrected(error)
            raise error
        try:
            result = decode(answer.body) if answer.body else {}
        except ValueError as exc:
            raise SqsUnreachable(
                f"unreadable answer to {operation} (HTTP {answer.status})"
            ) from exc
        if not isinstance(result, dict):
            raise SqsUnreachable(f"unexpected answer to {operation} (HTTP {answer.status})")
        return result

    def _corrects_clock(self, headers: Mapping[str, str]) -> bool:
        """Take the server's time from its Date header when ours is off by more than a minute."""
        try:
            server = parsedate_to_datetime(headers.get("Date", "")).timestamp()
        except (TypeError, ValueError):
            return False
        skew = server - (self.clock() + self.clock_offset)
        if abs(skew) <= SKEW_SECONDS:
            return False
        self.clock_offset += skew
        log.warning(
            "the local clock differs from SQS's; signing with SQS's time from now on",
            extra={"skew_seconds": round(skew, 1)},
        )
        return True


__all__ = ["CLOCK_SKEW_CODES", "SqsClient", "decode", "encode", "endpoint_for", "error_from"]
