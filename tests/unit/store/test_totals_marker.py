"""The watch over each totals hash's marker: a count of writes that goes back, a marker gone or
begun again without a reset is a loss, reported once; a reset and a first sight never are."""

from __future__ import annotations

from datetime import UTC, datetime

from exporter.store.totals_marker import LossWatch, Marker, counting_since

KEY = "{exporter}:totals"


def test_a_writer_sees_its_count_go_back_after_an_empty_restart_and_a_failover() -> None:
    """Counts must rise with every write; 1 again (emptied) or lower (writes lost) is a loss."""
    watch = LossWatch()
    assert watch.after_write(KEY, Marker(1000, 1)) is None
    assert watch.after_write(KEY, Marker(1000, 7)) is None
    emptied = watch.after_write(KEY, Marker(5000, 1))
    assert emptied is not None
    assert (emptied.since_ms, emptied.writes_before, emptied.writes_now) == (1000, 7, 1)
    assert "began again" in emptied.describe()
    assert watch.after_write(KEY, Marker(5000, 2)) is None  # reported once
    assert watch.after_write(KEY, Marker(5000, 9)) is None
    failover = watch.after_write(KEY, Marker(5000, 6))
    assert failover is not None
    assert "went back from 9 to 6" in failover.describe()


def test_a_reset_keeps_the_count_and_is_not_a_loss() -> None:
    """A reset begins the marker again (since = reset) and keeps counting writes."""
    watch = LossWatch()
    watch.after_write(KEY, Marker(1000, 4))
    assert watch.after_read(KEY, Marker(2000, 4, reset_ms=2000)) is None
    assert watch.after_write(KEY, Marker(2000, 5, reset_ms=2000)) is None


def test_a_write_is_compared_with_writes_only_and_a_probe_only_sees_what_is_gone() -> None:
    """A probe running beside an apply may read a count the apply's reply has not reached yet:
    neither that nor the reverse is a loss; a probe that finds a seen marker gone is one."""
    watch = LossWatch()
    assert watch.after_write(KEY, Marker(1000, 291)) is None
    assert watch.after_probe(KEY, Marker(1000, 292)) is None
    assert watch.after_write(KEY, Marker(1000, 293)) is None
    assert watch.after_probe(KEY, Marker(1000, 250)) is None
    gone = watch.after_probe(KEY, None)
    assert gone is not None
    assert gone.writes_before == 293
    assert watch.after_probe(KEY, None) is None
    assert watch.after_write(KEY, Marker(5000, 1)) is None  # said once


def test_a_reader_sees_a_marker_gone_or_begun_again_without_a_reset() -> None:
    """Gone (FLUSHALL, nothing written since), or a new beginning with a higher count (many
    writes since the loss): each a loss, once."""
    watch = LossWatch()
    assert watch.after_read(KEY, None) is None  # never seen: nothing to lose
    assert watch.after_read(KEY, Marker(1000, 50)) is None
    gone = watch.after_read(KEY, None)
    assert gone is not None
    assert gone.writes_now is None
    assert "the hash is gone" in gone.describe()
    assert watch.after_read(KEY, None) is None
    watch.after_read(KEY, Marker(3000, 10))
    again = watch.after_read(KEY, Marker(9000, 400))
    assert again is not None
    assert again.counting_since_ms == 9000


def test_counting_since_is_the_latest_beginning() -> None:
    """Every event since the latest beginning among the shards is in the totals."""
    assert counting_since([None, None]) is None
    since = counting_since([Marker(1_000_000, 1), None, Marker(2_000_000, 3)])
    assert since == datetime.fromtimestamp(2000, UTC)
