"""What one client connection may take of an HTTP server."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """Deadlines, sizes and the connection cap of one server (settings set the first three)."""

    head_timeout_seconds: float = 10.0
    body_timeout_seconds: float = 10.0
    max_connections: int = 256
    # Both apps need a short URL and at most a token: well below aiohttp's defaults.
    max_line_size: int = 4096
    max_field_size: int = 8192
    max_headers: int = 64
    keepalive_timeout_seconds: float = 75.0
