"""The HTTP servers' connection limits from the settings (the API's and the metrics port's)."""

from __future__ import annotations

from exporter.settings import Settings
from exporter.web.limits import ConnectionLimits

SETTINGS = ("http_head_timeout_seconds", "http_body_timeout_seconds", "http_max_connections")


def connection_limits(settings: Settings) -> ConnectionLimits:
    """What one client connection may take of a server, as configured."""
    return ConnectionLimits(
        head_timeout_seconds=settings.http_head_timeout_seconds,
        body_timeout_seconds=settings.http_body_timeout_seconds,
        max_connections=settings.http_max_connections,
    )
