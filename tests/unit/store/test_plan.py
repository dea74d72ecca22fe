"""The write plan, read without a server: shard routing, chunking, bucket numbering, the keys and
arguments of every script call, and where each result code goes back; and, for random batches,
exactly what the store sent before the plan existed."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from exporter.events import MICROS_PER_UNIT, Event
from exporter.store import Outcome
from exporter.store.detail import CountingConfig
from exporter.store.histograms import NO_BUCKETS
from exporter.store.keys import ShardKeys, StoreKeys, shard_of
from exporter.store.plan import (
    MAX_EVENTS_PER_SCRIPT,
    ONE_SHARD,
    Admission,
    ScriptCall,
    WritePlanner,
    read_reply,
)
from exporter.store.redis_series import bucket_marks, unbucketed_positions
from exporter.store.series import SeriesPolicy
from exporter.store.totals_marker import Marker

NOW_S = 1_796_000_000.25  # a quarter of a second into a second: now_ms truncates
NOW = datetime.fromtimestamp(NOW_S, UTC)
Item = tuple[str, Event]


def planner(
    shards: int = 1, series: SeriesPolicy | None = None, max_types: int = 7
) -> WritePlanner:
    """A planner of totals alone (no dimensions, no value buckets): what the store sent before
    decisions 0020 and 0021."""
    return WritePlanner(
        StoreKeys.build("shop", shards),
        3600,
        max_types,
        series or SeriesPolicy(),
        CountingConfig(buckets=NO_BUCKETS),
    )


def item(identity: str, kind: str = "purchase", micros: int = 2_500_000, age_s: float = 0) -> Item:
    return identity, Event(kind, micros, NOW - timedelta(seconds=age_s))


def test_one_shard_is_one_call_declaring_totals_types_seen_keys_then_buckets() -> None:
    """With one shard: no registration; one call whose keys are the totals, the type registry,
    a seen key per event in batch order, then the bucket index and the buckets it names; the
    arguments carry the window, the cap, now in ms, a line per event and the buckets' expiries."""
    plan_of = planner()
    batch = [item("id:a"), item("id:b", "refund", -1_250_000), item("id:c", age_s=60)]
    assert plan_of.registration(batch) is None
    plan = plan_of.plan(batch, ONE_SHARD, NOW_S)
    (part,) = plan.shards
    (call,) = part.calls
    minute = int(NOW_S // 60)
    hour = minute // 60
    shard = ShardKeys("{shop}")
    assert call.keys == (
        "{shop}:totals",
        "{shop}:types",
        b"{shop}:seen:id:a",
        b"{shop}:seen:id:b",
        b"{shop}:seen:id:c",
        "{shop}:series-index",
        shard.bucket(0, "purchase", hour),
        shard.bucket(0, "refund", hour),
        *([shard.bucket(0, "purchase", hour - 1)] if (minute - 1) // 60 != hour else []),
    )
    window, cap, now_ms, lines, _expiries = call.args
    assert (window, cap, now_ms) == (3600, 7, str(int(NOW_S * 1000)))
    assert str(lines).splitlines()[:2] == [
        f"2 500000 1 {minute % 60} purchase",
        f"-2 750000 2 {minute % 60} refund",  # floored units, millionths in [0, 1e6)
    ]
    assert part.positions == (0, 1, 2)
    assert call.size == 3


def test_a_large_batch_is_cut_into_calls_of_at_most_the_limit_in_order() -> None:
    """2,500 events on one shard: three calls of 1,000, 1,000 and 500, codes back in order."""
    batch = [item(f"id:{n}") for n in range(2500)]
    plan = planner().plan(batch, ONE_SHARD, NOW_S)
    (part,) = plan.shards
    assert [call.size for call in part.calls] == [MAX_EVENTS_PER_SCRIPT] * 2 + [500]
    assert part.calls[1].keys[2] == b"{shop}:seen:id:1000"
    codes: list[tuple[list[int], list[str]]] = [([1] * 1000 + [0] * 1000 + [1] * 500, [])]
    outcomes = plan.result(codes).outcomes
    assert outcomes[999:1001] == ("applied", "duplicate")
    assert outcomes.count("applied") == 1500


def test_with_shards_the_registration_comes_first_and_only_admitted_events_are_sent() -> None:
    """With 4 shards: register.lua on the global slot with the cap and the distinct types in
    order of first sight; its answer names the generation (in the keys) and the admitted types;
    an event of a refused type is in no call and comes back as too_many_types."""
    plan_of = planner(shards=4)
    batch = [item(f"id:{n}", kind) for n, kind in enumerate(["a", "b", "a", "c", "b", "a"])]
    registration = plan_of.registration(batch)
    assert registration is not None
    assert registration.keys == ("{shop}:types", "{shop}:generation")
    assert registration.args == (7, "a\nb\nc")
    admission = registration.admission([3, 1, 0, 1])
    assert admission == Admission(3, {"a", "c"})
    plan = plan_of.plan(batch, admission, NOW_S)
    sent = sorted(p for part in plan.shards for p in part.positions)
    assert sent == [0, 2, 3, 5]
    for part in plan.shards:
        assert {shard_of(batch[p][0], 4) for p in part.positions} == {
            plan_of.keys.shards.index(part.shard)
        }
        for call in part.calls:
            assert call.keys[0] == part.totals == part.shard.totals(3)
            assert call.args[1] == "global"  # the cap was the registration's
            assert not any(key == "{shop}:types" for key in call.keys)
    result = plan.result([([1] * len(part.positions), []) for part in plan.shards])
    assert result.outcomes == (
        "applied",
        "too_many_types",
        "applied",
        "applied",
        "too_many_types",
        "applied",
    )


def test_events_outside_the_bucket_range_are_reported_when_applied_only() -> None:
    """An event older than the retention takes no bucket: its line says bucket 0, and the result
    names it among the unbucketed only if it was applied (not a duplicate)."""
    batch = [item("id:old", age_s=8 * 24 * 3600), item("id:dup", age_s=9 * 24 * 3600)]
    plan = planner().plan(batch, ONE_SHARD, NOW_S)
    (call,) = plan.shards[0].calls
    assert all(line.split()[2] == "0" for line in str(call.args[3]).splitlines())
    assert len(call.keys) == 4  # totals, types, two seen keys: no bucket key
    assert plan.result([([1, 0], [])]).unbucketed == (0,)
    off = planner(series=SeriesPolicy(enabled=False)).plan(batch, ONE_SHARD, NOW_S)
    assert off.minutes is None
    assert off.result([([1, 1], [])]).unbucketed == ()


def test_a_reply_is_codes_then_the_totals_marker() -> None:
    """apply.lua's reply: one code per event, then writes, since and reset (decision 0017)."""
    three = ScriptCall((), (), 3)
    assert read_reply([1, 0, 3, 12, b"1700000000000", None], three) == (
        [1, 0, 3],
        [],
        Marker(1_700_000_000_000, 12, None),
    )
    assert read_reply([2, 5, b"10", b"10"], ScriptCall((), (), 1))[2] == Marker(10, 5, 10)


# -- the property: the plan sends what the store sent before it ---------------------------------

_OLD_OUTCOMES: dict[int, Outcome] = {
    0: "duplicate",
    1: "applied",
    2: "too_many_types",
    3: "sum_overflow",
}


def _old_script(
    keys: StoreKeys,
    planner_: WritePlanner,
    shard: ShardKeys,
    chunk: Sequence[Item],
    *,
    minutes: Sequence[int | None] | None,
    generation: int,
    now_ms: str,
) -> tuple[list[str | bytes], list[str | int]]:
    """`RedisStore._run_script` as it was before the plan (commit 5eb9b48), minus the call."""
    global_cap = len(keys.shards) > 1
    declared: list[str | bytes] = [shard.totals(generation)]
    if not global_cap:
        declared.append(keys.types)
    seen = shard.seen_prefix
    lines = []
    marks, bucket_keys, expiries = bucket_marks(
        shard, generation=generation, policy=planner_.series, chunk=chunk, minutes=minutes
    )
    for (identity, event), mark in zip(chunk, marks, strict=True):
        declared.append(seen + identity.encode())
        units, frac = divmod(event.value_micros, MICROS_PER_UNIT)
        lines.append(f"{units} {frac} {mark} {event.type}")
    declared.extend(bucket_keys)
    cap: str | int = "global" if global_cap else planner_.max_types
    return declared, [planner_.window_seconds, cap, now_ms, "\n".join(lines), expiries]


def _old_shard(
    keys: StoreKeys,
    planner_: WritePlanner,
    shard: ShardKeys,
    items: Sequence[Item],
    *,
    minutes: Sequence[int | None] | None,
    generation: int,
    now_ms: str,
) -> list[tuple[list[str | bytes], list[str | int]]]:
    """`RedisStore._apply_shard`'s chunks, each as `_old_script` built it."""
    return [
        _old_script(
            keys,
            planner_,
            shard,
            items[start : start + MAX_EVENTS_PER_SCRIPT],
            minutes=None if minutes is None else minutes[start : start + MAX_EVENTS_PER_SCRIPT],
            generation=generation,
            now_ms=now_ms,
        )
        for start in range(0, len(items), MAX_EVENTS_PER_SCRIPT)
    ]


def _old_calls(
    planner_: WritePlanner,
    batch: Sequence[Item],
    now_s: float,
    admission: Admission,
) -> tuple[Any, list[tuple[int, list[int], list[Any]]]]:
    """What `_apply_now` / `_apply_sharded` sent: the registration's keys and arguments (None
    with one shard), then per shard in order its positions and its calls."""
    keys = planner_.keys
    now_ms = str(int(now_s * 1000))
    minutes = (
        [planner_.series.minute_of(e.occurred_at.timestamp(), now_s) for _, e in batch]
        if planner_.series.enabled
        else None
    )
    if len(keys.shards) == 1:
        calls = _old_shard(
            keys, planner_, keys.shards[0], batch, minutes=minutes, generation=0, now_ms=now_ms
        )
        return None, [(0, list(range(len(batch))), calls)]
    distinct = list(dict.fromkeys(event.type for _, event in batch))
    # The distinct types travel as lines of one argument (room after them for dimensions).
    registration = ([keys.types, keys.generation], [planner_.max_types, "\n".join(distinct)])
    admitted = admission.admitted or set()
    positions: dict[int, list[int]] = {}
    for index, (identity, event) in enumerate(batch):
        if event.type in admitted:
            positions.setdefault(shard_of(identity, len(keys.shards)), []).append(index)
    parts = []
    for shard, ps in positions.items():
        calls = _old_shard(
            keys,
            planner_,
            keys.shards[shard],
            [batch[i] for i in ps],
            minutes=None if minutes is None else [minutes[i] for i in ps],
            generation=admission.generation,
            now_ms=now_ms,
        )
        parts.append((shard, ps, calls))
    return registration, parts


def _old_outcomes(
    size: int,
    parts: list[tuple[int, list[int], list[Any]]],
    codes: list[list[int]],
    minutes: Sequence[int | None] | None,
) -> tuple[tuple[Outcome, ...], tuple[int, ...]]:
    outcomes: list[Outcome] = ["too_many_types"] * size
    for (_, ps, _), part_codes in zip(parts, codes, strict=True):
        for index, code in zip(ps, part_codes, strict=True):
            outcomes[index] = _OLD_OUTCOMES[code]
    done = tuple(outcomes)
    return done, (unbucketed_positions(done, minutes) if minutes is not None else ())


_events = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c", "d", "pay:ment", "x1"]),
        st.integers(-(10**15), 10**15),
        # Seconds from now: far past the retention, inside it, a little and far in the future.
        st.one_of(st.integers(-3600, 3600), st.sampled_from([-(8 * 24 * 3600), 290, 400, 86_400])),
    ),
    min_size=1,
    max_size=30,
)


@given(
    events=_events,
    copies=st.sampled_from([1, 2, 40, 90]),
    shards=st.sampled_from([1, 2, 3, 16]),
    series=st.sampled_from(
        [SeriesPolicy(), SeriesPolicy(enabled=False), SeriesPolicy(retention_seconds=1800)]
    ),
    refused=st.sets(st.sampled_from(["a", "b", "c", "d", "pay:ment", "x1"])),
    generation=st.integers(0, 3),
    now_fraction=st.floats(0, 1, allow_nan=False),
    seed=st.randoms(use_true_random=False),
)
def test_the_plan_sends_exactly_what_the_store_sent_before_it(
    *,
    events: list[tuple[str, int, int]],
    copies: int,
    shards: int,
    series: SeriesPolicy,
    refused: set[str],
    generation: int,
    now_fraction: float,
    seed: Any,
) -> None:
    """For random batches (up to 2,700 events: chunks), shard counts, bucket settings and
    registration answers: the same calls, with the same keys in the same order and the same
    arguments, per shard in the same order, and the same outcomes from the same codes."""
    now_s = NOW_S + now_fraction * 60
    batch = [
        (f"id:{copy}-{n}", Event(kind, micros, NOW + timedelta(seconds=offset)))
        for copy in range(copies)
        for n, (kind, micros, offset) in enumerate(events)
    ]
    plan_of = planner(shards, series)
    registration = plan_of.registration(batch)
    admission = ONE_SHARD
    if registration is not None:
        flags = [0 if name in refused else 1 for name in registration.types]
        admission = registration.admission([generation, *flags])
    plan = plan_of.plan(batch, admission, now_s)
    old_registration, old_parts = _old_calls(plan_of, batch, now_s, admission)
    if registration is None:
        assert old_registration is None
    else:
        assert (list(registration.keys), list(registration.args)) == old_registration
    assert [
        (plan_of.keys.shards.index(part.shard), list(part.positions)) for part in plan.shards
    ] == [(shard, ps) for shard, ps, _ in old_parts]
    for part, (_, _, old_calls) in zip(plan.shards, old_parts, strict=True):
        assert [(list(call.keys), list(call.args)) for call in part.calls] == old_calls
    codes = [[seed.choice([0, 1, 2, 3]) for _ in part.positions] for part in plan.shards]
    result = plan.result([(part_codes, []) for part_codes in codes])
    assert (result.outcomes, result.unbucketed) == _old_outcomes(
        len(batch), old_parts, codes, plan.minutes
    )
