"""The write plan of dimensions and value buckets (decisions 0020, 0021), read without a server:
the keys each call declares, what each event's line carries, the registration's admission with
K shards, and the folds read back from the replies."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from exporter.events import ABSENT, OTHER, Event
from exporter.store.detail import CountingConfig, Fold
from exporter.store.histograms import NO_BUCKETS, BucketBounds
from exporter.store.keys import StoreKeys
from exporter.store.plan import ONE_SHARD, ScriptCall, WritePlanner, read_folds, read_reply
from exporter.store.series import SeriesPolicy
from exporter.store.totals_marker import Marker

NOW_S = 1_796_000_000.0
WHEN = datetime.fromtimestamp(NOW_S, UTC)
TWO = CountingConfig(("channel", "country"), max_values=5, max_combinations=9,
                     buckets=BucketBounds.of([1, 10]))  # fmt: skip


def planner(counting: CountingConfig, shards: int = 1) -> WritePlanner:
    # Event-time series off: the calls then hold only what this file is about.
    return WritePlanner(
        StoreKeys.build("shop", shards), 3600, 7, SeriesPolicy(enabled=False), counting
    )


def names(keys: tuple[str | bytes, ...]) -> tuple[str, ...]:
    """Declared keys as text (some travel as ready bytes)."""
    return tuple(k.decode() if isinstance(k, bytes) else k for k in keys)


def item(identity: str, kind: str, micros: int, *values: str) -> tuple[str, Event]:
    return identity, Event(kind, micros, WHEN, None, tuple(values))


def test_one_shard_declares_detail_joint_and_admission_keys_per_type() -> None:
    """With one shard: after the seen keys come the detail index, the set of admission sets,
    then per type of the call its detail hash, joint hash, value sets and combination set; each
    line carries its type's block, its bucket's bound, no fold text (apply.lua decides) and its
    values as read."""
    batch = [
        item("id:1", "purchase", 5_000_000, "web", "NL"),
        item("id:2", "refund", 10_000_000, ABSENT, OTHER),
        item("id:3", "purchase", 10_000_001, "app", "DE"),
    ]
    plan = planner(TWO).plan(batch, ONE_SHARD, NOW_S)
    ((call,),) = [part.calls for part in plan.shards]
    assert names(call.keys) == (
        "{shop}:totals",
        "{shop}:types",
        "{shop}:seen:id:1",
        "{shop}:seen:id:2",
        "{shop}:seen:id:3",
        "{shop}:detail-index",
        "{shop}:admissions",
        "{shop}:detail:purchase",
        "{shop}:joint:purchase:channel,country",
        "{shop}:values:purchase:channel",
        "{shop}:values:purchase:country",
        "{shop}:combos:purchase:channel,country",
        "{shop}:detail:refund",
        "{shop}:joint:refund:channel,country",
        "{shop}:values:refund:channel",
        "{shop}:values:refund:country",
        "{shop}:combos:refund:channel,country",
    )
    window, cap, now_ms, lines, expiries, header, dimension_names = call.args
    assert (window, cap, now_ms, expiries) == (3600, 7, "1796000000000", "")
    # index at 6, admissions at 7, blocks from 8 of 5 keys, 2 dimensions, caps 5 and 9.
    assert (header, dimension_names) == ("6 7 8 5 2 5 9", "channel,country")
    assert str(lines).splitlines() == [
        "5 0 0 0 purchase|1|10||web|NL",
        "10 0 0 0 refund|2|10||__absent__|__other__",
        "10 1 0 0 purchase|1|+Inf||app|DE",
    ]
    assert call.folds


def test_with_shards_the_registration_admits_and_the_shards_only_add() -> None:
    """With K shards: register.lua gets each type's value and combination sets and one line per
    event; its fold texts come back per event, the shard calls carry the values they resolve to
    (a value past the cap as `__other__`) with the fold text, and declare no admission set."""
    planner_ = planner(TWO, shards=3)
    batch = [
        item("id:1", "purchase", 1_000_000, "web", "NL"),
        item("id:2", "purchase", 2_000_000, "kiosk", "NL"),
        item("id:3", "gift", 3_000_000, "web", "BE"),
    ]
    registration = planner_.registration(batch)
    assert registration is not None
    assert registration.keys == (
        "{shop}:types",
        "{shop}:generation",
        "{shop}:admissions",
        "{shop}:values:purchase:channel",
        "{shop}:values:purchase:country",
        "{shop}:combos:purchase:channel,country",
        "{shop}:values:gift:channel",
        "{shop}:values:gift:country",
        "{shop}:combos:gift:channel,country",
    )
    assert registration.args == (
        7,
        "purchase\ngift",
        "2 5 9",
        "1|web|NL\n1|kiosk|NL\n2|web|BE",
    )
    admission = registration.admission([4, 1, 0, b"---", b"v-c", b""])
    assert admission.admitted == {"purchase"}
    assert list(admission.folds or ()) == ["---", "v-c", ""]
    plan = planner_.plan(batch, admission, NOW_S)
    lines = {
        line.split("|", 1)[0].split()[-1] + "|" + line.split("|", 1)[1]
        for part in plan.shards
        for call in part.calls
        for line in str(call.args[3]).splitlines()
    }
    assert lines == {"purchase|1|1|---|web|NL", "purchase|1|10|v-c|__other__|NL"}
    for part in plan.shards:
        for call in part.calls:
            assert not any("values:" in k for k in names(call.keys))
            assert str(call.args[5]).split()[5] == "0"  # max values 0: admitted already
            assert names(call.keys)[-1] == part.shard.joint(4, "purchase", "channel,country")
    replies = [
        ([1] * len(part.positions), [admission.folds[p] for p in part.positions])  # type: ignore[index]
        for part in plan.shards
    ]
    result = plan.result(replies)
    assert result.outcomes == ("applied", "applied", "too_many_types")
    assert result.folds == (Fold(1, "channel", "values"), Fold(1, "*", "combinations"))


def test_buckets_alone_add_a_detail_hash_per_type_and_no_fold_texts() -> None:
    """Without dimensions but with buckets: the detail index and one detail hash per type;
    each line carries only its block and bound; the reply has no fold texts."""
    counting = CountingConfig(buckets=BucketBounds.of([5]))
    batch = [item("id:1", "a", 1), item("id:2", "a", 6_000_000)]
    ((call,),) = [p.calls for p in planner(counting).plan(batch, ONE_SHARD, NOW_S).shards]
    assert names(call.keys)[-2:] == ("{shop}:detail-index", "{shop}:detail:a")
    assert str(call.args[3]).splitlines() == ["0 1 0 0 a|1|5|", "6 0 0 0 a|1|+Inf|"]
    # index at 5, no admissions, blocks from 6 of one key, no dimensions, no value cap.
    assert call.args[5] == f"5 0 6 1 0 0 {counting.max_combinations}"
    assert not call.folds


def test_totals_alone_send_nothing_more() -> None:
    """No dimensions and no buckets: the call is exactly the totals' call (five arguments)."""
    batch = [item("id:1", "a", 1)]
    ((call,),) = [
        p.calls
        for p in planner(CountingConfig(buckets=NO_BUCKETS)).plan(batch, ONE_SHARD, NOW_S).shards
    ]
    assert len(call.args) == 5
    assert str(call.args[3]) == "0 1 0 0 a"


def test_fold_texts_become_folds_of_applied_events_only() -> None:
    """A fold text names per dimension an invalid value or one past the value cap, then a
    combination past its cap; a duplicate's text is read as no fold at all."""
    assert read_folds(3, "ivc", ("channel", "country")) == [
        Fold(3, "channel", "invalid"),
        Fold(3, "country", "values"),
        Fold(3, "*", "combinations"),
    ]
    assert read_folds(0, "---", ("channel", "country")) == []
    plan = planner(TWO).plan(
        [item("id:1", "a", 1, OTHER, "NL"), item("id:2", "a", 1, OTHER, "NL")], ONE_SHARD, NOW_S
    )
    result = plan.result([([0, 1], ["", "i--"])])
    assert result.folds == (Fold(1, "channel", "invalid"),)


def test_a_reply_with_dimensions_is_codes_fold_texts_then_the_marker() -> None:
    """apply.lua's reply with dimensions: a code per event, a fold text per event, the marker."""
    call = ScriptCall((), (), 2, folds=True)
    assert read_reply([1, 0, b"-v-", b"", 3, b"10", None], call) == (
        [1, 0],
        ["-v-", ""],
        Marker(10, 3, None),
    )


def test_events_read_with_other_dimensions_are_refused_before_any_call() -> None:
    """An event with another number of dimension values than the store's is a wiring mistake."""
    with pytest.raises(ValueError, match="2 dimensions"):
        planner(TWO).check([item("id:1", "a", 1, "NL")])
    planner(TWO).check([item("id:1", "a", 1, "web", "NL")])
