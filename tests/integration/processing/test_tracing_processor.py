"""Processor traces: a span per batch with stage children, producer links, exemplars, OTLP."""

from __future__ import annotations

import asyncio
import time

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry

from exporter.metrics import build_metrics
from exporter.processing.loop import Processor, ProcessorConfig
from exporter.store.memory import MemoryStore
from exporter.tracing import configure_tracing, traces_endpoint
from exporter.web.health import make_health_app
from tests.servers import free_port
from tests.unit.processing.processor_fakes import RecordingSource, message

GOOD = '{"type":"t","value":1,"occurred_at":"2020-10-06 10:02:05"}'
PRODUCER_TRACE = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = f"00-{PRODUCER_TRACE}-b7ad6b7169203331-01"


async def traced_batch() -> tuple[InMemorySpanExporter, CollectorRegistry]:
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    registry = CollectorRegistry()
    processor = Processor(
        MemoryStore(),
        RecordingSource(),
        build_metrics(registry),
        ProcessorConfig(),
        tracer=provider.get_tracer("test"),
    )
    start = time.time_ns()
    batch = [message(GOOD, "a", traceparent=TRACEPARENT), message("bad", "b")]
    await processor.handle_batch(batch, receive_window_ns=(start, start + 1000))
    return spans, registry


async def test_a_batch_is_one_span_with_stage_children_and_a_producer_link() -> None:
    """One `batch` span; receive, store, dead_letter, delete are its children; producer linked."""
    spans, _ = await traced_batch()
    finished = spans.get_finished_spans()
    [batch] = [s for s in finished if s.name == "batch"]
    children = {s.name for s in finished if s.parent and s.parent.span_id == batch.context.span_id}
    assert children == {"receive", "store", "dead_letter", "delete"}
    assert [f"{link.context.trace_id:032x}" for link in batch.links] == [PRODUCER_TRACE]
    [receive] = [s for s in finished if s.name == "receive"]
    assert receive.end_time is not None
    assert receive.start_time is not None
    assert receive.end_time - receive.start_time == 1000


async def test_openmetrics_scrapes_carry_trace_id_exemplars() -> None:
    """With tracing on, an OpenMetrics scrape shows counters and histograms with trace ids."""
    spans, registry = await traced_batch()
    [batch] = [s for s in spans.get_finished_spans() if s.name == "batch"]
    trace_id = f"{batch.context.trace_id:032x}"
    app = make_health_app(registry, {})
    async with TestClient(TestServer(app)) as client:
        response = await client.get(
            "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
        )
        text = await response.text()
        plain = await (await client.get("/metrics")).text()
    assert response.headers["Content-Type"].startswith("application/openmetrics-text")
    exemplar = f'# {{trace_id="{trace_id}"}}'
    processed = [line for line in text.splitlines() if line.startswith("exporter_events_processed")]
    assert any(exemplar in line for line in processed)
    assert any(
        exemplar in line
        for line in text.splitlines()
        if line.startswith("exporter_batch_stage_duration_seconds_bucket")
    )
    assert "trace_id" not in plain  # the classic text format has no exemplars


def test_tracing_is_off_without_an_otlp_endpoint() -> None:
    """Without OTEL_EXPORTER_OTLP_ENDPOINT nothing is configured; the variables follow the spec."""
    assert not configure_tracing({}, service_name="x", set_global=False).enabled
    disabled = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}
    assert not configure_tracing(disabled, service_name="x", set_global=False).enabled
    no_exporter = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"}
    assert not configure_tracing(no_exporter, service_name="x", set_global=False).enabled
    assert traces_endpoint({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/"}) == (
        "http://c:4318/v1/traces"
    )
    assert traces_endpoint({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t/x"}) == "http://t/x"


async def test_spans_are_exported_over_otlp_http_and_flushed_on_shutdown() -> None:
    """With an endpoint set, shutdown flushes the batch's spans to a real OTLP/HTTP receiver."""
    received: list[tuple[str, bytes]] = []

    async def collect(request: web.Request) -> web.Response:
        received.append((request.headers.get("Content-Type", ""), await request.read()))
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/v1/traces", collect)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        tracing = configure_tracing(
            {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}"},
            service_name="exporter-test",
            set_global=False,
        )
        assert tracing.enabled
        with tracing.tracer("test").start_as_current_span("batch"):
            pass
        await asyncio.to_thread(tracing.shutdown)
    finally:
        await runner.cleanup()
    assert received
    content_type, body = received[0]
    assert content_type == "application/x-protobuf"
    assert b"batch" in body
    assert b"exporter-test" in body
