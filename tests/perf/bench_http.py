"""Benchmark 4: /stats and /metrics with 100 event types, against a static aiohttp handler.

The apps are served by this process on loopback ports; the load comes from a second process
(`wrk` when installed, else `tests.perf.http_load`), one endpoint at a time, same connections and
duration for each. The static handler returns the very bytes /stats returned, so the difference is
the work behind the response (a Redis read, decoding, JSON, or the Prometheus text), not its size.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import sys
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry

from exporter.events import Event
from exporter.web import make_app
from exporter.web.server import serving
from tests.store_support import redis_store

TYPES = 100


async def _wrk(url: str, seconds: float, connections: int) -> dict[str, Any]:
    process = await asyncio.create_subprocess_exec(
        "wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", url,
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await process.communicate()
    text = out.decode()
    requests = re.search(r"(\d+) requests in ([\d.]+)(m?s)", text)
    if requests is None:
        raise RuntimeError(f"wrk printed no request count: {text}")
    elapsed = float(requests.group(2)) / (1000 if requests.group(3) == "ms" else 1)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    return {
        "requests": int(requests.group(1)),
        "non_200": int(errors.group(1)) if errors else 0,
        "seconds": elapsed,
    }


async def _python_load(url: str, seconds: float, connections: int) -> dict[str, Any]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.perf.http_load", url, str(seconds), str(connections),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await process.communicate()
    result: dict[str, Any] = json.loads(out)
    return result


async def _static_app(body: bytes) -> web.Application:
    async def static(_: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/static", static)
    return app


async def http(
    redis_url: str, *, seconds: float, connections: int = 16, loader: str = "auto"
) -> dict[str, Any]:
    """Requests/s of /stats, /metrics and the static handler under the same load."""
    use_wrk = loader == "wrk" or (loader == "auto" and shutil.which("wrk") is not None)
    measure = _wrk if use_wrk else _python_load
    store = redis_store(redis_url, prefix="bench-http")
    await store.reset()
    when = datetime.now(UTC)
    await store.apply(
        [(f"msg:http-{n}", Event(f"type-{n:03d}", 1_250_000 * n, when)) for n in range(TYPES)]
    )
    app = make_app(store, CollectorRegistry(), admin_token=None)
    results: dict[str, dict[str, Any]] = {}
    async with serving(app, "127.0.0.1", 0) as port:
        base = f"http://127.0.0.1:{port}"
        body = await _fetch(f"{base}/stats")
        if len(json.loads(body)) != TYPES:
            raise RuntimeError("/stats does not show the benchmark's 100 types")
        for path in ("/stats", "/metrics"):
            results[path] = await measure(base + path, seconds, connections)
    async with serving(await _static_app(body), "127.0.0.1", 0) as port:
        results["static"] = await measure(f"http://127.0.0.1:{port}/static", seconds, connections)
    await store.reset()
    await store.close()
    rates = {name: r["requests"] / r["seconds"] for name, r in results.items()}
    static = rates["static"]
    return {
        "benchmark": "http",
        "loader": "wrk" if use_wrk else "python",
        "connections": connections,
        "seconds_each": seconds,
        "event_types": TYPES,
        "requests": {name: r["requests"] for name, r in results.items()},
        "non_200": sum(r["non_200"] for r in results.values()),
        "stats_requests_per_s": round(rates["/stats"]),
        "metrics_requests_per_s": round(rates["/metrics"]),
        "baseline_requests_per_s": round(static),
        "ratio": {
            "stats": round(rates["/stats"] / static, 3),
            "metrics": round(rates["/metrics"] / static, 3),
        },
        "target": ">= 0.5 of the static handler, each endpoint",
        "target_met": min(rates["/stats"], rates["/metrics"]) >= 0.5 * static,
    }


async def _fetch(url: str) -> bytes:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        response.raise_for_status()
        return await response.read()
