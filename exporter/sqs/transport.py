"""How a signed SQS request travels: aiohttp, straight to the endpoint or through a proxy.

One session per client, made inside the running loop (as aiohttp requires), with settings chosen
for many small keep-alive requests to one host (decision 0006): the connector's limit is the
client's pool, cookies are ignored, answers are never decompressed (none is asked for), and the
headers aiohttp would add by itself are given once, as the session's defaults.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

import aiohttp
from yarl import URL

from exporter import __version__
from exporter.sqs.errors import SqsUnreachable

USER_AGENT: Final = f"sqs-metrics-exporter/{__version__}"
# aiohttp adds Accept, Accept-Encoding and User-Agent to a request that lacks them; naming them
# here costs less per request than asking aiohttp to skip them.
SESSION_HEADERS: Final = {
    "User-Agent": USER_AGENT,
    "Accept": "*/*",
    "Accept-Encoding": "identity",
}


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP answer: status, headers (looked up in any case), body."""

    status: int
    headers: Mapping[str, str]
    body: bytes


class HttpTransport:
    """POSTs to one endpoint over aiohttp's keep-alive connections, at most `limit` at a time."""

    def __init__(
        self,
        url: str,
        *,
        proxy: str | None,
        limit: int,
        connect_timeout: float,
        read_timeout: float,
        ca_file: str | None = None,
    ) -> None:
        self.url = URL(url)
        self.proxy = proxy
        self.limit = limit
        self.ca_file = ca_file
        self.read_timeout = read_timeout
        # One budget for connecting, sending and reading the whole answer; a long poll
        # legitimately takes most of it.
        self._timeout = aiohttp.ClientTimeout(total=read_timeout, sock_connect=connect_timeout)
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=self.limit,
                ssl=ssl.create_default_context(cafile=self.ca_file),
                # Python 3.11's TLS transport can leave a socket open when a server never
                # completes the TLS shutdown; this aborts such a one after two seconds.
                enable_cleanup_closed=True,
            ),
            headers=SESSION_HEADERS,
            cookie_jar=aiohttp.DummyCookieJar(),
            timeout=self._timeout,
            auto_decompress=False,
            proxy=self.proxy,
            # The proxy is chosen once, from the settings' environment, not per request.
            trust_env=False,
        )

    async def post(self, headers: Iterable[tuple[str, str]], body: bytes) -> Answer:
        """The whole answer to one POST of `body`, or SqsUnreachable.

        A request that a kept-alive connection lost (the server, or a proxy's tunnel, closed it
        just as it was reused) is sent once more on a new connection, as aiohttp does for
        idempotent methods. That is keep-alive's own cost, not a retry of a failure: an answer,
        a timeout or a refused connection is never sent again, and the call path's one retry
        layer (decision 0022) sees only what fails twice. Without it, back-to-back calls
        through a proxy that closes its tunnels after each answer failed every second call.
        """
        session = self._session
        if session is None:
            session = self._session = self._open()
        sent = list(headers)
        try:
            try:
                return await self._exchange(session, sent, body)
            except aiohttp.ClientOSError as exc:
                if isinstance(exc, aiohttp.ClientConnectorError):
                    raise
                return await self._exchange(session, sent, body)
            except aiohttp.ServerDisconnectedError:
                return await self._exchange(session, sent, body)
        except TimeoutError as exc:
            raise SqsUnreachable(
                f"no answer from {self.url.origin()} within {self.read_timeout:g} s"
            ) from exc
        except aiohttp.ClientConnectorError as exc:
            # The proxy's host and port only: its URL may carry credentials.
            what = "the proxy " if isinstance(exc, aiohttp.ClientProxyConnectionError) else ""
            raise SqsUnreachable(
                f"cannot connect to {what}{exc.host}:{exc.port}: {exc.os_error.strerror or exc}"
            ) from exc
        except aiohttp.ClientError as exc:
            raise SqsUnreachable(f"{type(exc).__name__}: {exc}") from exc

    async def _exchange(
        self, session: aiohttp.ClientSession, headers: list[tuple[str, str]], body: bytes
    ) -> Answer:
        reply = await session.post(self.url, data=body, headers=headers, allow_redirects=False)
        try:
            data = await reply.read()
        finally:
            reply.release()
        return Answer(reply.status, reply.headers, data)

    async def close(self) -> None:
        """Close the connections."""
        if self._session is not None:
            await self._session.close()
            self._session = None


def proxy_for(url: str, environ: Mapping[str, str]) -> str | None:
    """The proxy the standard variables name for `url` (HTTPS_PROXY, HTTP_PROXY, NO_PROXY).

    Lower-case names win, as for curl; a NO_PROXY entry matches its host and the host's
    subdomains, with or without a leading dot, and `*` matches every host.
    """
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
    url: str,
    environ: Mapping[str, str],
    *,
    limit: int,
    connect_timeout: float,
    read_timeout: float,
) -> HttpTransport:
    """The transport to `url`, through the proxy the environment names for it, if any."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    return HttpTransport(
        url,
        proxy=proxy_for(url, environ),
        limit=limit,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        ca_file=ca_bundle(environ),
    )


__all__ = [
    "SESSION_HEADERS",
    "USER_AGENT",
    "Answer",
    "HttpTransport",
    "ca_bundle",
    "make_transport",
    "proxy_for",
]
