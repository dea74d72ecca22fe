"""Noticing totals that vanished: a marker inside each shard's totals hash, and a watch over it.

Every apply call counts itself in its shard's totals hash (`@writes`, one HINCRBY) and the hash
records when it began (`@since`, unix ms: its first write, or a reset). A process remembers the
highest count it has seen per hash; a count that goes back, or a marker that is gone or began
again without a reset, means Redis lost what the hash held: an empty restart, FLUSHALL, a node
replaced, or a failover to a replica that had not caught up (decision 0017). Pure: the store
hands in what Redis returned.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

SINCE: Final = b"@since"
WRITES: Final = b"@writes"
RESET: Final = b"@reset"
MARKER_FIELDS: Final = (SINCE, WRITES, RESET)


@dataclass(frozen=True, slots=True)
class Marker:
    """One totals hash's marker: when it began, how many apply calls wrote it, its last reset."""

    since_ms: int
    writes: int
    reset_ms: int | None = None

    @classmethod
    def from_fields(cls, fields: Mapping[bytes, bytes | None]) -> Marker | None:
        """The marker among a hash's fields (HGETALL or HMGET), or None when it has none."""
        since, writes = fields.get(SINCE), fields.get(WRITES)
        if since is None or writes is None:
            return None
        reset = fields.get(RESET)
        return cls(int(since), int(writes), int(reset) if reset is not None else None)

    @property
    def began_by_reset(self) -> bool:
        """Whether the hash began with a reset (DELETE /stats), not with a first write."""
        return self.reset_ms == self.since_ms


@dataclass(frozen=True, slots=True)
class TotalsLost:
    """What one process found lost in one shard's totals."""

    shard: str
    """The totals hash, which names its shard's tag (and generation)."""
    since_ms: int | None
    """When the lost totals had begun counting; None if this process never saw it."""
    writes_before: int
    writes_now: int | None
    """The count of writes found now; None when the marker (and the hash) is gone."""
    counting_since_ms: int | None
    """When the totals count from now on; None until the next write creates the marker."""

    def describe(self) -> str:
        """One sentence for the ERROR log: what was lost, since when, and what happens now."""
        since = _iso(self.since_ms) if self.since_ms is not None else "an unknown time"
        if self.writes_now is None:
            how = "the hash is gone (a restart without persistence, FLUSHALL, or a node replaced)"
        elif self.writes_now <= 1 or self.since_ms != self.counting_since_ms:
            how = (
                f"it began again (writes {self.writes_before} -> {self.writes_now}: a restart "
                "without persistence, FLUSHALL, or a node replaced)"
            )
        else:
            how = (
                f"its write count went back from {self.writes_before} to {self.writes_now} "
                "(writes lost: a failover to a replica that had not caught up?)"
            )
        now = (
            f"counting goes on from zero, since {_iso(self.counting_since_ms)}"
            if self.counting_since_ms is not None
            else "counting goes on from zero with the next event"
        )
        return f"Redis lost the totals of {self.shard} counted since {since}: {how}; {now}"


class LossWatch:
    """The markers this process saw, and the losses that follow.

    Replies are compared only with replies that Redis is known to have executed before them:
    a process's apply calls run one at a time (the coalescer), and so do its snapshot reads
    (the API shares one read at a time), so each of those two is compared with its own kind. A
    write probe may run beside either (/ready and the recovery probe at once), so its read only
    tells that a marker seen before is gone: it cannot tell which count came first.
    """

    def __init__(self) -> None:
        self._written: dict[str, Marker] = {}
        self._read: dict[str, Marker] = {}

    def after_write(self, key: str, marker: Marker) -> TotalsLost | None:
        """An apply call returned `marker`: its own write is counted in it, so the count is above
        that of this process's previous call, and the beginning is the same unless a reset."""
        previous = self._written.get(key)
        self._written[key] = marker
        if previous is None or not _restarted(previous, marker, strict=True):
            return None
        self._read.pop(key, None)  # one loss, said once even where this process also reads
        return _lost(key, previous, marker)

    def after_read(self, key: str, marker: Marker | None) -> TotalsLost | None:
        """A snapshot read found `marker` (None: no marker, the hash empty or gone)."""
        if marker is None:
            return self.after_probe(key, None)
        previous = self._read.get(key)
        self._read[key] = marker
        if previous is None or not _restarted(previous, marker, strict=False):
            return None
        self._written.pop(key, None)
        return _lost(key, previous, marker)

    def after_probe(self, key: str, marker: Marker | None) -> TotalsLost | None:
        """A write probe found `marker`: only its absence, where one was seen, is a loss."""
        if marker is not None:
            return None
        previous = self._read.pop(key, None) or self._written.get(key)
        self._written.pop(key, None)
        if previous is None:
            return None
        return TotalsLost(key, previous.since_ms, previous.writes, None, None)


def _restarted(previous: Marker, marker: Marker, *, strict: bool) -> bool:
    """Whether `marker` cannot follow `previous` without a loss between them."""
    went_back = marker.writes <= previous.writes if strict else marker.writes < previous.writes
    began_again = marker.since_ms != previous.since_ms and not marker.began_by_reset
    return went_back or began_again


def _lost(key: str, previous: Marker, marker: Marker) -> TotalsLost:
    return TotalsLost(key, previous.since_ms, previous.writes, marker.writes, marker.since_ms)


def counting_since(markers: list[Marker | None]) -> datetime | None:
    """The moment from which every applied event is in the totals: the latest beginning among
    the shards (a shard that began later holds nothing from before), None before any write."""
    known = [m.since_ms for m in markers if m is not None]
    return datetime.fromtimestamp(max(known) / 1000, UTC) if known else None


def _iso(ms: int | None) -> str:
    if ms is None:
        return "unknown"
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


__all__ = [
    "MARKER_FIELDS",
    "RESET",
    "SINCE",
    "WRITES",
    "LossWatch",
    "Marker",
    "TotalsLost",
    "counting_since",
]
