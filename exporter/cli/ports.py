"""A server's port, bound before the server starts: a port that cannot be bound is one line
naming it and the flag (and variable) that changes it, the same in `processor`, `api` and `demo`.
"""

from __future__ import annotations

import errno
import socket
from typing import Final, Literal

from exporter.settings import env_name
from exporter.web.listening import bind

Role = Literal["api", "metrics"]
_SERVED: Final[dict[Role, str]] = {"api": "the stats API", "metrics": "the processor's /metrics"}


class PortUnavailable(Exception):
    """A port a command is to serve on cannot be bound; the message names it and the flag."""


def bind_port(role: Role, host: str, port: int) -> list[socket.socket]:
    """Sockets listening on `host`:`port` (0: a free one) for the API or the processor's
    /metrics; PortUnavailable saying which and how to change it, and none left open."""
    try:
        return bind(host, port)
    except OSError as exc:
        raise PortUnavailable(_unavailable(role, host, port, exc)) from None


def _unavailable(role: Role, host: str, port: int, exc: OSError) -> str:
    """One line: which address failed, why, and the flag (and variable) that changes it."""
    what = _SERVED[role]
    why = exc.strerror or str(exc)
    if isinstance(exc, socket.gaierror) or exc.errno == errno.EADDRNOTAVAIL:
        fix = f"--{role}-host ({env_name(f'{role}_host')})"
        return f"cannot serve {what} on {host}:{port}: {why}; give another address with {fix}"
    fix = f"--{role}-port ({env_name(f'{role}_port')})"
    taken = "is taken" if exc.errno == errno.EADDRINUSE else "cannot be used"
    return f"port {port} for {what} {taken} ({why}); choose another with {fix}"


__all__ = ["PortUnavailable", "Role", "bind_port"]
