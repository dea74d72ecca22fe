"""Structured logs: JSON fields, trace ids inside a span, readable text for terminals."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider

from exporter.logs import configure_logging


@pytest.fixture(autouse=True, name="restore_root_logger")
def fixture_restore_root_logger() -> Iterator[None]:
    """Put the root logger back as it was, so other tests' log capture keeps working."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_lines_carry_extra_fields_and_trace_ids() -> None:
    """Inside a span, a JSON log line names the trace and span; extra fields become keys."""
    out = io.StringIO()
    configure_logging("DEBUG", "json", out)
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("batch") as span:
        logging.getLogger("exporter.test").info("batch done", extra={"applied": 7})
        expected_trace = f"{span.get_span_context().trace_id:032x}"
    line = json.loads(out.getvalue().splitlines()[-1])
    assert line["message"] == "batch done"
    assert line["applied"] == 7
    assert line["level"] == "info"
    assert line["trace_id"] == expected_trace
    assert len(line["span_id"]) == 16


def test_text_format_is_one_readable_line_without_span() -> None:
    """Outside a span, text lines have no trace id and show extra fields as key=value."""
    out = io.StringIO()
    configure_logging("INFO", "text", out)
    logging.getLogger("exporter.test").warning("redis down", extra={"retry_in": 2})
    logging.getLogger("exporter.test").debug("hidden")
    text = out.getvalue()
    assert "warning exporter.test: redis down retry_in=2" in text
    assert "trace_id" not in text
    assert "hidden" not in text
