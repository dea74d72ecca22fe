"""Every error the API answers is JSON `{"error": <slug>, "message": <sentence>}`, never a trace."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Final

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from exporter.store import StoreUnavailable

log = logging.getLogger("exporter.api")

# aiohttp raises these itself (router, body limits); each gets a stable slug and a plain sentence.
_SLUGS: Final[Mapping[int, tuple[str, str]]] = {
    400: ("bad_request", "The request could not be understood."),
    401: ("unauthorized", "Authentication is required."),
    403: ("forbidden", "This action is not allowed."),
    404: ("not_found", "There is nothing at this path; see /openapi.json for the routes."),
    405: ("method_not_allowed", "This path does not accept that method."),
    413: ("payload_too_large", "The request body is larger than this API accepts."),
    415: ("unsupported_media_type", "The request body has a type this API does not accept."),
}
# Headers a client needs to act on an error, kept when an aiohttp error is rewritten as JSON.
_KEPT_HEADERS: Final = ("Allow", "WWW-Authenticate", "Retry-After")


def json_error(
    status: int, error: str, message: str, headers: Mapping[str, str] | None = None
) -> web.Response:
    """A JSON error response."""
    return web.json_response({"error": error, "message": message}, status=status, headers=headers)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every failure into a JSON error; unexpected ones are logged and answered generically."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        error, message = _SLUGS.get(exc.status, ("http_error", exc.reason))
        headers = {name: exc.headers[name] for name in _KEPT_HEADERS if name in exc.headers}
        return json_error(exc.status, error, message, headers)
    except StoreUnavailable as exc:
        log.warning("store unavailable", extra={"path": request.path, "detail": str(exc)})
        return json_error(
            503,
            "store_unavailable",
            "The statistics store is not reachable right now; retry shortly.",
            {"Retry-After": "5"},
        )
    except Exception:
        # The trace goes to the log only; a client learns nothing about the internals.
        log.exception("unhandled error", extra={"path": request.path, "method": request.method})
        return json_error(500, "internal_error", "The server failed to answer; this was logged.")


def body_limit_middleware(max_bytes: int) -> Middleware:
    """Refuse a declared body over `max_bytes` before any handler runs (handlers read none)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.content_length is not None and request.content_length > max_bytes:
            return json_error(
                413, "payload_too_large", f"Request bodies are limited to {max_bytes} bytes."
            )
        return await handler(request)

    return middleware
