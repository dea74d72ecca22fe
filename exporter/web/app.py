"""`make_app`: the stats API as an aiohttp application; thin handlers, the store does the work."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any, Final

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from exporter import __version__
from exporter.events import TYPE_RULE, is_valid_type
from exporter.store import (
    STORE_ERRORS,
    Snapshot,
    Store,
    StoreMisconfigured,
    StoreRefused,
    StoreUnavailable,
)
from exporter.store.detail import CountingConfig, Detail
from exporter.web.breakdowns import BadBreakdown, breakdown_json, breakdown_query
from exporter.web.errors import (
    body_limit_middleware,
    error_middleware,
    json_error,
    refusal_problem,
)
from exporter.web.openapi import openapi_document
from exporter.web.page import PageInfo, render_page
from exporter.web.series import add_series_routes
from exporter.web.snapshots import SharedReads, SharedSnapshots
from exporter.web.stats_body import detail_json, iso, stats_json
from exporter.web.telemetry import ApiMetrics, build_api_metrics, instrument_middleware
from exporter.web.totals_exposition import TotalsExposition

log = logging.getLogger("exporter.api")
audit_log = logging.getLogger("exporter.audit")

# The API takes no request bodies; anything bigger than this is refused with 413 unread.
MAX_BODY_BYTES: Final = 16 * 1024
# /health answers within this even while Redis hangs: probes wait 3 s (deploy/kubernetes,
# docker-compose.yaml), and must read the 503 and its reason, not time out.
HEALTH_TIMEOUT_SECONDS: Final = 1.5
# Where a client that asked for something not served here can look.
ROUTES_HINT: Final = "see /openapi.json for the routes"

# The page may talk to this origin only: no CDN, no third party, inline code being its own.
PAGE_POLICY: Final = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'"
)

STORE_KEY: Final = web.AppKey("store", Store)
METRICS_KEY: Final = web.AppKey("metrics", ApiMetrics)
REGISTRY_KEY: Final = web.AppKey("registry", CollectorRegistry)
ADMIN_TOKEN_KEY: Final = web.AppKey("admin_token", bytes)
STORE_TIMEOUT_KEY: Final = web.AppKey("store_timeout", float)
PAGE_KEY: Final = web.AppKey("page", bytes)
OPENAPI_KEY: Final = web.AppKey("openapi", dict[str, Any])
SNAPSHOTS_KEY: Final = web.AppKey("snapshots", SharedSnapshots)
STATS_BODY_KEY: Final = web.AppKey("stats_body", list[tuple[Snapshot | Detail, bytes]])
READS_KEY: Final = web.AppKey("reads", Store)
DETAILS_KEY: Final = web.AppKey("details", SharedReads[Detail])
EXPOSITION_KEY: Final = web.AppKey("exposition", TotalsExposition)
_EOF: Final = b"# EOF\n"


def make_app(
    store: Store,
    registry: CollectorRegistry,
    *,
    admin_token: str | None,
    store_timeout_seconds: float = 3.0,
    close_store_on_cleanup: bool = False,
    page_info: PageInfo | None = None,
    counting: CountingConfig | None = None,
) -> web.Application:
    """The stats API over `store`, with its metrics on `registry`; DELETE needs `admin_token`.

    `page_info` tells the live page which store it reads (redacted) and where the dashboards are.
    The store brings its configuration (dimensions, caps, value buckets); `counting`, when
    given, is the one the command read from its settings and must be the store's.
    """
    reads = _detail_reads(store, counting)
    counting = reads.counting
    metrics = build_api_metrics(registry, counting)
    app = web.Application(
        middlewares=[
            instrument_middleware(metrics),
            error_middleware(ROUTES_HINT),
            body_limit_middleware(MAX_BODY_BYTES),
        ],
        client_max_size=MAX_BODY_BYTES,
    )
    app[STORE_KEY] = store
    app[METRICS_KEY] = metrics
    app[REGISTRY_KEY] = registry
    # Empty means "reset disabled": an empty token must never authorise anything.
    app[ADMIN_TOKEN_KEY] = (admin_token or "").encode()
    app[STORE_TIMEOUT_KEY] = store_timeout_seconds
    app[SNAPSHOTS_KEY] = SharedSnapshots(store, store_timeout_seconds)
    app[READS_KEY] = reads
    app[DETAILS_KEY] = SharedReads(reads.detail, store_timeout_seconds)
    app[EXPOSITION_KEY] = TotalsExposition(counting)
    app[STATS_BODY_KEY] = []
    app[PAGE_KEY] = render_page(page_info or PageInfo(), counting)
    app[OPENAPI_KEY] = openapi_document(__version__, counting.dimensions)
    app.router.add_get("/", page, name="page")
    app.router.add_get("/stats", all_stats, name="stats")
    app.router.add_delete("/stats", reset_stats, name="reset")
    app.router.add_get("/stats/{type}", one_stats, name="type_stats")
    add_series_routes(app, store, app[SNAPSHOTS_KEY].get, store_timeout_seconds)
    app.router.add_get("/health", health, name="health")
    app.router.add_get("/metrics", metrics_page, name="metrics")
    app.router.add_get("/openapi.json", openapi, name="openapi")
    if close_store_on_cleanup:
        app.cleanup_ctx.append(_store_lifecycle)
    return app


def _detail_reads(store: Store, counting: CountingConfig | None) -> Store:
    if counting is not None and counting != store.counting:
        raise ValueError("the store was built with another counting configuration")
    return store


def _with_detail(app: web.Application) -> bool:
    """Whether /stats shows more than totals: value buckets are on or dimensions declared."""
    counting = app[READS_KEY].counting
    return counting.buckets.enabled or bool(counting.dimensions)


async def _store_lifecycle(app: web.Application) -> AsyncIterator[None]:
    """The app owns the store it was given: release its connections once the server stops."""
    yield
    await app[STORE_KEY].close()


async def _snapshot(request: web.Request) -> Snapshot:
    """All totals, read after the request arrived (shared with concurrent requests)."""
    return await request.app[SNAPSHOTS_KEY].get()


# Since when the totals count (decision 0017): a header, so that an empty list says it too.
COUNTING_SINCE_HEADER: Final = "Counting-Since"


def _since_headers(since: datetime | None) -> dict[str, str]:
    text = iso(since)
    return {} if text is None else {COUNTING_SINCE_HEADER: text}


async def all_stats(request: web.Request) -> web.Response:
    """GET /stats: every type's totals, sorted by type (with buckets and folds when on)."""
    app = request.app
    cache = app[STATS_BODY_KEY]
    read: Snapshot | Detail
    # The Redis store hands back the same Snapshot object while the totals are unchanged, so the
    # rendered body of the last one is reused: rendering 100 types costs more than reading them.
    if _with_detail(app):
        read = detail = await app[DETAILS_KEY].get()
        since = detail.counting_since
        if not cache or cache[0][0] is not read:
            counting = app[READS_KEY].counting
            rendered = [detail_json(t, counting, since) for t in detail.types]
            cache[:] = [(read, json.dumps(rendered).encode())]
    else:
        read = snapshot = await _snapshot(request)
        since = snapshot.counting_since
        if not cache or cache[0][0] is not read:
            rendered = [stats_json(t, since) for t in snapshot.types]
            cache[:] = [(read, json.dumps(rendered).encode())]
    return web.Response(
        body=cache[0][1],
        content_type="application/json",
        charset="utf-8",
        headers=_since_headers(since),
    )


async def one_stats(request: web.Request) -> web.Response:
    """GET /stats/{type}: one type's totals; 400 for an impossible name, 404 for an unseen one."""
    name = request.match_info["type"]
    if not is_valid_type(name):
        return json_error(
            400,
            "invalid_type",
            f"An event type is {TYPE_RULE}.",
        )
    app = request.app
    reads = app[READS_KEY]
    try:
        asked = breakdown_query(request.query, reads.counting.dimensions)
    except BadBreakdown as exc:
        return json_error(400, "invalid_query", str(exc))
    unknown = json_error(404, "unknown_type", f"No event of type {name!r} was counted.")
    if asked is not None:
        dimension, limit = asked
        try:
            async with asyncio.timeout(app[STORE_TIMEOUT_KEY]):
                breakdown = await reads.breakdown(name, dimension)
        except TimeoutError:
            raise StoreUnavailable("the store did not answer in time") from None
        if breakdown is None:
            return unknown
        return web.json_response(breakdown_json(breakdown, limit))
    if _with_detail(app):
        details = await app[DETAILS_KEY].get()
        detail = details.get(name)
        if detail is None:
            return unknown
        return web.json_response(
            detail_json(detail, reads.counting, details.counting_since),
            headers=_since_headers(details.counting_since),
        )
    snapshot = await _snapshot(request)
    totals = snapshot.get(name)
    if totals is None:
        return unknown
    return web.json_response(
        stats_json(totals, snapshot.counting_since),
        headers=_since_headers(snapshot.counting_since),
    )


async def reset_stats(request: web.Request) -> web.Response:
    """DELETE /stats: forget all totals at once; needs the admin bearer token."""
    expected = request.app[ADMIN_TOKEN_KEY]
    who = {"remote": request.remote, "user_agent": request.headers.get("User-Agent", "")}
    if not expected:
        audit_log.warning("reset refused: disabled", extra={"outcome": "disabled", **who})
        return json_error(
            403, "reset_disabled", "Resetting is disabled: the server has no admin token set."
        )
    scheme, _, provided = request.headers.get("Authorization", "").partition(" ")
    # aiohttp keeps header bytes that are not UTF-8 as surrogates; surrogateescape gives those
    # bytes back, so a garbled token is refused (401) rather than failing to encode (500).
    offered = provided.strip().encode("utf-8", "surrogateescape")
    if scheme.lower() != "bearer" or not hmac.compare_digest(offered, expected):
        audit_log.warning("reset refused: bad token", extra={"outcome": "unauthorized", **who})
        return json_error(
            401,
            "unauthorized",
            "DELETE /stats needs 'Authorization: Bearer <EXPORTER_ADMIN_TOKEN>'.",
            {"WWW-Authenticate": 'Bearer realm="exporter"'},
        )
    try:
        async with asyncio.timeout(request.app[STORE_TIMEOUT_KEY]):
            await request.app[STORE_KEY].reset()
    except (*STORE_ERRORS, TimeoutError):
        audit_log.warning("reset failed: store unavailable", extra={"outcome": "failed", **who})
        raise StoreUnavailable("the store did not complete the reset") from None
    audit_log.warning("statistics reset", extra={"outcome": "reset", **who})
    return web.Response(status=204)


async def health(request: web.Request) -> web.Response:
    """GET /health: 200 while the store answers; 503 saying whether it is down or refuses this
    server's configuration (which retrying cannot fix)."""
    app = request.app
    limit = min(app[STORE_TIMEOUT_KEY], HEALTH_TIMEOUT_SECONDS)
    try:
        async with asyncio.timeout(limit):
            await app[STORE_KEY].ping()
    except (StoreRefused, StoreMisconfigured) as exc:
        problem = refusal_problem(exc)
        # One line naming the fix; a trace adds nothing.
        log.error("health: store misconfigured", extra={"problem": problem})  # noqa: TRY400
        body = {"checks": {"store": "misconfigured"}, "problem": problem}
        return web.json_response(_unavailable() | body, status=503)
    except (StoreUnavailable, TimeoutError) as exc:
        detail = str(exc) or f"no answer within {limit:g} s"
        log.warning("health: store failing", extra={"detail": detail})
        # Redis's words can hold an address; the API's body names only what happened
        # (`problem`, what to fix, belongs to a misconfiguration).
        body = {"checks": {"store": "failing"}, "detail": _failing_detail(exc, limit)}
        return web.json_response(_unavailable() | body, status=503)
    return web.json_response({"status": "ok", "version": __version__, "checks": {"store": "ok"}})


def _unavailable() -> dict[str, Any]:
    return {"status": "unavailable", "version": __version__}


def _failing_detail(exc: BaseException, limit: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"the store did not answer within {limit:g} s"
    return "the store is not reachable"


async def metrics_page(request: web.Request) -> web.Response:
    """GET /metrics: request metrics plus the global totals, read from the store just now."""
    app = request.app
    totals = app[METRICS_KEY].totals
    try:
        detail: Detail | None = await app[DETAILS_KEY].get()
    except STORE_ERRORS:
        detail = None
    # No await between setting the detail and rendering: concurrent scrapes cannot mix.
    totals.detail = detail
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    body = encoder(app[REGISTRY_KEY])
    openmetrics = content_type.startswith("application/openmetrics-text")
    written = app[EXPOSITION_KEY].render(detail, openmetrics=openmetrics)
    # The totals' samples go after the library's families (and before OpenMetrics's end).
    body = body.removesuffix(_EOF) + written + _EOF if openmetrics else body + written
    return web.Response(body=body, headers={"Content-Type": content_type})


async def page(request: web.Request) -> web.Response:
    """GET /: the live page, one self-contained HTML file."""
    return web.Response(
        body=request.app[PAGE_KEY],
        content_type="text/html",
        charset="utf-8",
        headers={"Cache-Control": "no-cache", "Content-Security-Policy": PAGE_POLICY},
    )


async def openapi(request: web.Request) -> web.Response:
    """GET /openapi.json: the OpenAPI 3.1 description of every route."""
    return web.json_response(request.app[OPENAPI_KEY])
