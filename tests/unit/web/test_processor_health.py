"""The processor's /health, /ready and /metrics endpoints on a real aiohttp test server."""

from __future__ import annotations

import asyncio

from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from exporter.metrics import build_metrics
from exporter.web.health import make_health_app


async def ok() -> None:
    return None


async def refused() -> None:
    raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")


async def hangs() -> None:
    await asyncio.Event().wait()


async def test_ready_names_each_failing_part_without_a_traceback() -> None:
    """/ready is 503 JSON naming the failing checks and why; /health stays 200."""
    app = make_health_app(
        CollectorRegistry(), {"redis": refused, "sqs": hangs, "processor": ok}, check_timeout=0.2
    )
    async with TestClient(TestServer(app)) as client:
        ready = await client.get("/ready")
        body = await ready.json()
        health = await client.get("/health")
    assert ready.status == 503
    assert body == {
        "status": "not_ready",
        "failing": {
            "redis": "Error 111 connecting to 127.0.0.1:6379. Connection refused.",
            "sqs": "no answer within 0.2s",
        },
    }
    assert health.status == 200


async def test_ready_is_200_when_every_check_passes_and_metrics_are_served() -> None:
    """All checks passing gives 200; /metrics serves the registry passed in, not the global one."""
    registry = CollectorRegistry()
    build_metrics(registry).ready.set(1)
    app = make_health_app(registry, {"redis": ok, "sqs": ok})
    async with TestClient(TestServer(app)) as client:
        ready = await client.get("/ready")
        ready_body = await ready.json()
        text = await (await client.get("/metrics")).text()
    assert ready.status == 200
    assert ready_body == {"status": "ready"}
    assert "exporter_ready 1.0" in text
    assert "python_gc_objects_collected_total" not in text


async def test_unknown_paths_and_methods_are_answered_in_json() -> None:
    """A wrong path is a JSON 404 and a wrong method a JSON 405 naming what the port serves."""

    async def ok() -> None:
        return None

    app = make_health_app(CollectorRegistry(), {"redis": ok})
    async with TestClient(TestServer(app)) as client:
        missing = await client.get("/stats")
        assert missing.status == 404
        assert "/metrics" in (await missing.json())["message"]
        wrong = await client.post("/health")
        assert wrong.status == 405
        assert (await wrong.json())["error"] == "method_not_allowed"
        assert wrong.headers["Allow"] == "GET,HEAD"
