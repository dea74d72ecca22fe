"""Timing a batch's stages: one histogram per stage, inside the stage's span when traced."""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from types import TracebackType

from prometheus_client import Histogram

from exporter.sqs.messages import Message


@dataclass(frozen=True, slots=True)
class BatchContext:
    """One received batch as every stage sees it, made once per batch: its messages, when their
    receive started (`time.monotonic()`: their visibility timeout runs from then), whether its
    span records, and its exemplar."""

    messages: Sequence[Message]
    received_at: float
    traced: bool = False
    exemplar: dict[str, str] | None = None


class StageTimer:
    """Times one stage of a batch into its histogram, inside its span when the batch is traced.

    A small class rather than a generator context manager: it runs twice per batch, and the
    generator machinery cost more than the timing itself (docs/benchmarks.md).
    """

    __slots__ = ("_exemplar", "_histogram", "_span", "_started")

    def __init__(
        self,
        histogram: Histogram,
        span: AbstractContextManager[object] | None,
        exemplar: dict[str, str] | None,
    ) -> None:
        self._histogram = histogram
        self._span = span
        self._exemplar = exemplar
        self._started = 0.0

    def __enter__(self) -> None:
        if self._span is not None:
            self._span.__enter__()
        self._started = time.monotonic()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace_back: TracebackType | None,
    ) -> None:
        self._histogram.observe(time.monotonic() - self._started, self._exemplar)
        if self._span is not None:
            self._span.__exit__(kind, error, trace_back)


__all__ = ["BatchContext", "StageTimer"]
