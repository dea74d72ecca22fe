"""Queue depth for the dashboard: how many messages wait, are in flight, or are delayed."""

from __future__ import annotations

import asyncio
import logging

from exporter.metrics import ProcessorMetrics
from exporter.retry import sleep_unless
from exporter.sqs.messages import Source, SourceMisconfigured, SourceUnavailable

log = logging.getLogger(__name__)


async def poll_depths(
    source: Source, metrics: ProcessorMetrics, stopping: asyncio.Event, interval_seconds: float
) -> None:
    """Refresh the queue depth gauges every `interval_seconds` until `stopping` is set."""
    while not stopping.is_set():
        try:
            depths = await source.depths()
        except (SourceUnavailable, SourceMisconfigured) as exc:
            # Depth is for dashboards only: a failure here must not stop consuming.
            log.debug("queue depth unavailable", extra={"error": str(exc)})
        else:
            for depth in depths:
                for state, count in depth.counts.items():
                    metrics.queue_messages.labels(
                        queue=depth.role, queue_name=depth.name, state=state
                    ).set(count)
        # A refresh, not a retry: a failed one is simply the next one's to make.
        await sleep_unless(stopping, interval_seconds)


__all__ = ["poll_depths"]
