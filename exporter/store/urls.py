"""REDIS_URL as the store reads it: one node or several, checked before anything connects, and
shown only without its password."""

from __future__ import annotations

import ipaddress
import re
from typing import Final
from urllib.parse import urlsplit

from redis.asyncio.connection import parse_url

# redis-py also takes the password as a query option (`unix:///run/redis.sock?password=...`).
_PASSWORD_OPTION: Final = re.compile(r"([?&]password=)[^&#]*")
_SCHEMES: Final = ("redis", "rediss", "unix")
# A host name as DNS allows it (letters, digits, hyphens, dots; underscores as service names use).
_HOST_NAME: Final = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_.-]{0,252})$")
# Where the authority of a `host:port` piece ends and the path or query of the last piece begins.
_AUTHORITY_END: Final = re.compile(r"[/?#]")


def redacted(url: str) -> str:
    """`url` with any password (in the user part or a `password=` option) shown as `***`.

    The user part runs to the last `@` of the authority, so a password holding a stray `@` is
    hidden whole too; with several nodes each piece is redacted.
    """
    return ",".join(_redacted_one(piece) for piece in url.split(","))


def _redacted_one(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if not sep:
        return _PASSWORD_OPTION.sub(r"\1***", url)
    match = _AUTHORITY_END.search(rest)
    authority, tail = (rest[: match.start()], rest[match.start() :]) if match else (rest, "")
    userinfo, at, hostport = authority.rpartition("@")
    if at and ":" in userinfo:
        authority = f"{userinfo.partition(':')[0]}:***@{hostport}"
    tail = _PASSWORD_OPTION.sub(r"\1***", tail)
    return f"{scheme}://{authority}{tail}"


class BadRedisUrl(ValueError):
    """REDIS_URL cannot name a Redis; the message says which part is wrong, never the password."""


def node_urls(url: str) -> tuple[str, ...]:
    """One URL per node that REDIS_URL names, each checked; raises BadRedisUrl.

    REDIS_URL may list several nodes of one Redis Cluster, as other cluster clients accept:
    `redis://:pw@h1:7000,h2:7001,h3:7002/0` (the scheme, user and password of the first, the path
    and options of the last apply to all) or full URLs separated by commas. The store tries them
    in turn, so the node named first may be gone for good.
    """
    pieces = [piece.strip() for piece in url.split(",")]
    if any(not piece for piece in pieces):
        raise BadRedisUrl("an empty entry in the comma-separated list of nodes")
    if len(pieces) == 1 or all("://" in piece for piece in pieces):
        urls = pieces
    elif any("://" in piece for piece in pieces[1:]):
        raise BadRedisUrl("mixes full URLs and host:port entries; use one form for every node")
    else:
        urls = _expanded(pieces)
    for one in urls:
        _check(one)
    if len(urls) > 1 and any(one.startswith("unix:") for one in urls):
        raise BadRedisUrl("a unix socket names one server; it cannot be one of several nodes")
    return tuple(dict.fromkeys(urls))


def _expanded(pieces: list[str]) -> list[str]:
    """`scheme://user:pw@h1:1,h2:2/0?opt` as one full URL per host."""
    scheme, _, first = pieces[0].partition("://")
    if _AUTHORITY_END.search(first):
        raise BadRedisUrl(
            "with several nodes the database and options go after the last one "
            "(redis://h1:7000,h2:7001/0)"
        )
    userinfo, at, first_host = first.rpartition("@")
    last = pieces[-1]
    match = _AUTHORITY_END.search(last)
    last_host, tail = (last[: match.start()], last[match.start() :]) if match else (last, "")
    hosts = [first_host, *pieces[1:-1], last_host]
    credentials = f"{userinfo}@" if at else ""
    return [f"{scheme}://{credentials}{host}{tail}" for host in hosts]


def _check(url: str) -> None:
    scheme, sep, _ = url.partition("://")
    if not sep or scheme.lower() not in _SCHEMES:
        shown = scheme if sep else url[:20]
        raise BadRedisUrl(
            f"the scheme must be redis://, rediss:// or unix://, not {redacted(shown)!r}"
        )
    if scheme.lower() != "unix":
        _check_authority(url)
    try:
        parse_url(url)
    except ValueError as exc:  # redis-py names the bad part (port, option), never the password
        raise BadRedisUrl(str(exc)) from None


def _check_authority(url: str) -> None:
    try:
        netloc = urlsplit(url).netloc
    except ValueError as exc:  # an unclosed '[' of an IPv6 address
        raise BadRedisUrl(f"the address cannot be read: {exc}") from None
    userinfo, at, hostport = netloc.rpartition("@")
    if at and "@" in userinfo:
        raise BadRedisUrl(
            "the user or password holds an '@' that is not percent-encoded (write it as %40)"
        )
    host = hostport
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise BadRedisUrl("an IPv6 address opened with '[' is never closed with ']'")
        host, port = hostport[1:end], hostport[end + 1 :].removeprefix(":")
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise BadRedisUrl(f"{host!r} is not an IPv6 address") from None
    else:
        host, _, port = hostport.partition(":")
        if not host:
            raise BadRedisUrl("no host is named (redis://HOST:PORT/DB)")
        if not _HOST_NAME.match(host):
            raise BadRedisUrl(f"{host!r} is not a host name or address")
    if port and not (port.isdigit() and 0 < int(port) <= 65535):
        raise BadRedisUrl(f"the port must be a number from 1 to 65535, not {port!r}")
    database = urlsplit(url).path.strip("/")
    if database and not database.isdigit():
        raise BadRedisUrl(f"the path must be a database number (/0), not {database!r}")


def with_address(url: str, host: str, port: int) -> str:
    """`url` (one node's) pointing at host:port instead, with its credentials and options."""
    scheme, _, rest = url.partition("://")
    match = _AUTHORITY_END.search(rest)
    authority, tail = (rest[: match.start()], rest[match.start() :]) if match else (rest, "")
    userinfo, at, _ = authority.rpartition("@")
    shown_host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{userinfo}{at}{shown_host}:{port}{tail}"


__all__ = ["BadRedisUrl", "node_urls", "redacted", "with_address"]
