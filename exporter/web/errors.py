"""Every error either HTTP app answers is JSON `{"error": <slug>, "message": <sentence>}` with
`Content-Type: application/json; charset=utf-8`, never a trace nor a byte of the request."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Final

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMethod, LineTooLong
from aiohttp.typedefs import Handler, Middleware

from exporter.store import StoreMisconfigured, StoreRefused, StoreUnavailable, StoreUntrusted
from exporter.web.limits import ConnectionLimits

log = logging.getLogger("exporter.api")
http_log = logging.getLogger("exporter.http")

GENERIC_FAILURE: Final = "The server failed to answer; this was logged."
# How much of Redis's own message a refusal shows; its code and first words say what it is.
MAX_REDIS_WORDS: Final = 160
# aiohttp raises these itself (router, body limits); each gets a stable slug and a plain sentence.
_SLUGS: Final[Mapping[int, tuple[str, str]]] = {
    400: ("bad_request", "The request could not be understood."),
    401: ("unauthorized", "Authentication is required."),
    403: ("forbidden", "This action is not allowed."),
    404: ("not_found", "There is nothing at this path; {routes}."),
    405: ("method_not_allowed", "This path does not accept that method; {routes}."),
    413: ("payload_too_large", "The request body is larger than this server accepts."),
    415: ("unsupported_media_type", "The request body has a type this server does not accept."),
}
# Headers a client needs to act on an error, kept when an aiohttp error is rewritten as JSON.
_KEPT_HEADERS: Final = ("Allow", "WWW-Authenticate", "Retry-After")
# aiohttp's parser says "too many headers" only in its message (a BadHttpMessage like others);
# the pinned aiohttp range keeps this wording, and a change only turns 431 back into 400.
_TOO_MANY_HEADERS: Final = "Too many headers"


def json_error(
    status: int, error: str, message: str, headers: Mapping[str, str] | None = None
) -> web.Response:
    """A JSON error response."""
    return web.json_response({"error": error, "message": message}, status=status, headers=headers)


def error_middleware(routes: str) -> Middleware:
    """Turn every failure into a JSON error; `routes` tells a lost client what is served here."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            error, message = _SLUGS.get(exc.status, ("http_error", exc.reason))
            headers = {name: exc.headers[name] for name in _KEPT_HEADERS if name in exc.headers}
            return json_error(exc.status, error, message.format(routes=routes), headers)
        except (StoreRefused, StoreMisconfigured) as exc:
            # One line naming the fix; a trace adds nothing.
            log.error("store misconfigured", extra={"problem": refusal_problem(exc)})  # noqa: TRY400
            return json_error(
                503,
                "store_misconfigured",
                "The statistics store refuses this server's configuration; retrying will "
                "not help until an operator fixes it (see /health).",
            )
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
            return json_error(500, "internal_error", GENERIC_FAILURE)

    return middleware


def refusal_problem(exc: StoreRefused | StoreMisconfigured) -> str:
    """What an operator should fix, in the API's words: the change to make when the settings are
    refused, with what Redis said; else Redis's own words (READONLY, OOM, WRONGTYPE ...)."""
    if isinstance(exc, StoreUntrusted):
        return str(exc)  # the exporter's own sentence, naming what failed and what to set
    said = str(exc)[:MAX_REDIS_WORDS]
    if exc.advice is None or exc.advice == str(exc):
        return said
    return f"{exc.advice} (Redis said: {said})"


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


def classify_refusal(
    status: int, exc: BaseException | None, limits: ConnectionLimits
) -> tuple[int, str, str]:
    """Status, slug and fixed sentence for a request aiohttp refused before the app saw it."""
    if status >= 500:
        return 500, "internal_error", GENERIC_FAILURE
    if isinstance(exc, LineTooLong):
        limit = exc.args[1] if len(exc.args) > 1 else None
        if limit == limits.max_line_size != limits.max_field_size:
            return (
                414,
                "uri_too_long",
                f"The request line is longer than {limits.max_line_size} bytes.",
            )
        return (
            431,
            "header_too_large",
            f"A request header is longer than {limits.max_field_size} bytes.",
        )
    if exc is not None and str(exc).find(_TOO_MANY_HEADERS) >= 0:
        return 431, "too_many_headers", f"A request may have at most {limits.max_headers} headers."
    if isinstance(exc, BadHttpMethod):
        return (
            400,
            "unknown_method",
            "The request does not start with a known HTTP method (HTTPS to an HTTP port?); "
            "see /openapi.json for the routes.",
        )
    if status == 400:
        return 400, "bad_request", "The request is not valid HTTP/1.1."
    phrase = HTTPStatus(status).phrase
    return status, phrase.lower().replace(" ", "_"), f"{phrase}."


def refused_request(
    status: int, exc: BaseException | None, limits: ConnectionLimits, *, remote: str
) -> web.Response:
    """The answer to a request aiohttp refused, logged as one line without the request's bytes
    (an oversized header may be the admin token)."""
    status, error, message = classify_refusal(status, exc, limits)
    if status >= 500:
        # A failure of ours, not the client's: the trace helps, and holds no request bytes.
        http_log.error("request failed outside the app", extra={"remote": remote}, exc_info=exc)
    else:
        http_log.warning(
            "refused a malformed request",
            extra={"remote": remote, "status": status, "error": error},
        )
    return json_error(status, error, message)


def _busy_response() -> bytes:
    body = json.dumps(
        {
            "error": "too_many_connections",
            "message": "The server has as many connections open as it allows; retry shortly.",
        }
    ).encode()
    head = (
        "HTTP/1.1 503 Service Unavailable\r\n"
        "Content-Type: application/json; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Retry-After: 1\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


# Written straight to a connection over the cap, before aiohttp reads anything from it.
BUSY_RESPONSE: Final = _busy_response()
