"""A server's address bound before anything else starts, so that a taken port is found first.

`serving(..., sockets=...)` then serves on these sockets; the binding mirrors what asyncio does
for a host and port (every address the host resolves to; the address reusable, as on POSIX
asyncio's default; an IPv6 socket for IPv6 only, so that the IPv4 one can share the port). Each
socket listens at once: Linux lets two sockets with SO_REUSEADDR bind one port while neither
listens, so only listening proves the port is ours. Connections that arrive before the server
starts wait in the backlog.
"""

from __future__ import annotations

import socket
from typing import Final

BACKLOG: Final = 128  # aiohttp's, which it sets again when it serves


def bind(host: str, port: int) -> list[socket.socket]:
    """Sockets listening on every address of `host` at `port` (0: a free one); OSError
    (socket.gaierror for a host that does not resolve) when one cannot be bound, and then none
    is left open."""
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    bound: list[socket.socket] = []
    try:
        for family, kind, protocol, _, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, protocol)
            bound.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(BACKLOG)
    except OSError:
        for sock in bound:
            sock.close()
        raise
    return bound


def port_of(sockets: list[socket.socket]) -> int:
    """The port the first of `sockets` is bound to (the one to print)."""
    port: int = sockets[0].getsockname()[1]
    return port


__all__ = ["bind", "port_of"]
