"""The names a processor gives its queues, for tests that look them up with their own client."""

from __future__ import annotations

from exporter.cli.parts import sqs_config
from exporter.settings import Settings
from exporter.sqs.names import default_dlq_name


def dlq_name_of(settings: Settings) -> str:
    """The first queue's dead-letter queue, as a processor with these settings names it when no
    redrive policy names one: SQS_DLQ_NAME, else the default after the queue's name (from
    SQS_QUEUE_URL when set: `orders-dlq`; `orders-dlq.fifo` for `orders.fifo`)."""
    spec = sqs_config(settings).specs()[0]
    return spec.dlq_name or default_dlq_name(spec.setting, spec.name)
