"""How a signed SQS request travels: the lean HTTP/1.1 pool, or aiohttp when a proxy is in the way.

The lean pool costs a fraction of aiohttp's CPU per request (decision 0006); aiohttp stays for an
endpoint reached through an HTTP(S) proxy, which the pool does not speak.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlsplit

import aiohttp

from exporter.sqs.errors import SqsUnreachable
from exporter.sqs.http1 import Answer, Http1Pool, HttpFailure


class Transport(Protocol):
    """Sends one POST to the endpoint and returns the whole answer."""

    async def post(self, headers: Mapping[str, str], body: bytes, within: float) -> Answer:
        """The answer, or SqsUnreachable."""
        ...

    async def close(self) -> None:
        """Close the connections."""
        ...


@dataclass(slots=True)
class LeanTransport:
    """Requests written as bytes on the lean HTTP/1.1 pool."""

    pool: Http1Pool
    path: str

    async def post(self, headers: Mapping[str, str], body: bytes, within: float) -> Answer:
        """The answer, or SqsUnreachable."""
        head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        data = f"POST {self.path} HTTP/1.1\r\n{head}Content-Length: {len(body)}\r\n\r\n".encode()
        try:
            return await self.pool.request(data + body, within)
        except HttpFailure as exc:
            raise SqsUnreachable(str(exc)) from exc

    async def close(self) -> None:
        """Close the idle connections."""
        self.pool.close()


@dataclass(slots=True)
class AiohttpTransport:
    """Requests through aiohttp, via `proxy` when one is set."""

    url: str
    proxy: str | None
    limit: int
    connect_timeout: float
    ca_file: str | None = None
    _session: aiohttp.ClientSession | None = field(default=None, init=False, repr=False)

    async def post(self, headers: Mapping[str, str], body: bytes, within: float) -> Answer:
        """The answer, or SqsUnreachable."""
        if self._session is None:  # made inside the running loop, as aiohttp requires
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=self.limit, ssl=ssl.create_default_context(cafile=self.ca_file)
                ),
                cookie_jar=aiohttp.DummyCookieJar(),
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"),
            )
        limits = aiohttp.ClientTimeout(total=within, sock_connect=self.connect_timeout)
        try:
            async with self._session.post(
                self.url, data=body, headers=dict(headers), proxy=self.proxy, timeout=limits
            ) as reply:
                answer = await reply.read()
                names = {name.lower(): value for name, value in reply.headers.items()}
                return Answer(reply.status, names, answer)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise SqsUnreachable(f"{type(exc).__name__}: {exc}") from exc

    async def close(self) -> None:
        """Close the session."""
        if self._session is not None:
            await self._session.close()
            self._session = None


def proxy_for(url: str, environ: Mapping[str, str]) -> str | None:
    """The proxy the standard variables name for `url` (HTTPS_PROXY, HTTP_PROXY, NO_PROXY)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    proxy = environ.get(f"{scheme}_proxy") or environ.get(f"{scheme.upper()}_PROXY")
    if not proxy:
        return None
    host = (parts.hostname or "").lower()
    bypass = environ.get("no_proxy") or environ.get("NO_PROXY") or ""
    for entry in (e.strip().lower().lstrip(".") for e in bypass.split(",")):
        if entry == "*" or (entry and (host == entry or host.endswith("." + entry))):
            return None
    return proxy


def ca_bundle(environ: Mapping[str, str]) -> str | None:
    """The CA certificates to trust, as botocore picks them: AWS_CA_BUNDLE, else certifi's."""
    if environ.get("AWS_CA_BUNDLE"):
        return environ["AWS_CA_BUNDLE"]
    try:
        import certifi  # noqa: PLC0415 - optional, as for botocore; else the system's store
    except ImportError:
        return None
    return str(certifi.where())


def make_transport(
    url: str, environ: Mapping[str, str], *, limit: int, connect_timeout: float
) -> Transport:
    """The lean pool for `url`, or aiohttp when the environment names a proxy for it."""
    proxy = proxy_for(url, environ)
    if proxy is not None:
        return AiohttpTransport(url, proxy, limit, connect_timeout, ca_bundle(environ))
    parts = urlsplit(url)
    tls = parts.scheme == "https"
    if parts.hostname is None:
        raise ValueError(f"not an http(s) URL: {url!r}")
    pool = Http1Pool(
        parts.hostname,
        parts.port or (443 if tls else 80),
        tls,
        limit=limit,
        connect_timeout=connect_timeout,
        ca_file=ca_bundle(environ) if tls else None,
    )
    return LeanTransport(pool, parts.path or "/")


__all__ = [
    "AiohttpTransport",
    "LeanTransport",
    "Transport",
    "ca_bundle",
    "make_transport",
    "proxy_for",
]
