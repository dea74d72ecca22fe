"""SQS's batch calls: how to cut items into calls, and which failed entries to try again.

Shared by the source (delete, visibility, dead letters, redrive) and the producer, so that both
follow SQS's limits and its `SenderFault` rule the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar

T = TypeVar("T")

MAX_BATCH: Final = 10  # SQS's limit for receive and every *Batch call
MAX_BATCH_BYTES: Final = 256 * 1024  # SQS's limit for a whole SendMessageBatch payload
BATCH_ATTEMPTS: Final = 4  # tries of a batch call's retryable entries before giving up on them


def send_chunks(items: Sequence[T], size_of: Callable[[T], int]) -> Iterator[Sequence[T]]:
    """Cut `items` into SendMessageBatch calls: at most 10 entries and 256 KiB in all.

    An item too big on its own still gets a call of its own, whose failure is then reported
    for that item only.
    """
    chunk: list[T] = []
    total = 0
    for item in items:
        size = size_of(item)
        if chunk and (len(chunk) == MAX_BATCH or total + size > MAX_BATCH_BYTES):
            yield chunk
            chunk, total = [], 0
        chunk.append(item)
        total += size
    if chunk:
        yield chunk


@dataclass(frozen=True, slots=True)
class Failures:
    """The failed entries of one batch call, by entry Id: worth another try, or refused for good."""

    retry: Sequence[str]
    refused: Sequence[str]


def sort_failures(failed: Iterable[Mapping[str, Any]]) -> Failures:
    """Split a response's `Failed` entries: a `SenderFault` fails again, others may not."""
    retry: list[str] = []
    refused: list[str] = []
    for failure in failed:
        (refused if failure.get("SenderFault") else retry).append(str(failure["Id"]))
    return Failures(retry, refused)


__all__ = [
    "BATCH_ATTEMPTS",
    "MAX_BATCH",
    "MAX_BATCH_BYTES",
    "Failures",
    "send_chunks",
    "sort_failures",
]
