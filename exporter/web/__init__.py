"""The stats API: an aiohttp application over a `Store` (`make_app`)."""

from exporter.web.app import make_app

__all__ = ["make_app"]
