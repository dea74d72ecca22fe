"""The processor's small HTTP app: /metrics for Prometheus, /health (alive), /ready (can work)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Final

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.aiohttp import make_aiohttp_handler

from exporter.web.errors import error_middleware

ReadinessCheck = Callable[[], Awaitable[None]]
"""Returns when the part works; raises with a short, secret-free message when it does not."""

# Probes wait 3 s (deploy/kubernetes, docker-compose.yaml): a check that hangs must be cut well
# before, so that the probe reads the 503 and its reason rather than timing out.
CHECK_TIMEOUT_SECONDS: Final = 1.5
MAX_PROBLEM_CHARS: Final = 200
ROUTES_HINT: Final = "this port serves GET /metrics, /health and /ready"


async def _run_check(check: ReadinessCheck, limit_seconds: float) -> str | None:
    try:
        async with asyncio.timeout(limit_seconds):
            await check()
    except TimeoutError:
        return f"no answer within {limit_seconds:g}s"
    except Exception as exc:  # any failure means not ready; the text says which
        return (str(exc) or type(exc).__name__)[:MAX_PROBLEM_CHARS]
    return None


def make_health_app(
    registry: CollectorRegistry,
    checks: Mapping[str, ReadinessCheck],
    *,
    check_timeout: float = CHECK_TIMEOUT_SECONDS,
) -> web.Application:
    """An app serving the registry on /metrics and the readiness `checks` on /ready."""

    async def health(_request: web.Request) -> web.Response:
        return web.json_response({"status": "alive"})

    async def ready(_request: web.Request) -> web.Response:
        names = list(checks)
        results = await asyncio.gather(*(_run_check(checks[n], check_timeout) for n in names))
        failing = {
            name: problem
            for name, problem in zip(names, results, strict=True)
            if problem is not None
        }
        if failing:
            return web.json_response({"status": "not_ready", "failing": failing}, status=503)
        return web.json_response({"status": "ready"})

    app = web.Application(middlewares=[error_middleware(ROUTES_HINT)])
    app.router.add_get("/metrics", make_aiohttp_handler(registry))
    app.router.add_get("/health", health)
    app.router.add_get("/ready", ready)
    return app


__all__ = ["ReadinessCheck", "make_health_app"]
