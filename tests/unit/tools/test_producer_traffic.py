"""The producer's synthetic traffic, its JSON Lines reader and its summary arithmetic."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from exporter.events import InvalidEvent, micros_to_text, parse_event
from exporter.tools.producer import SendSummary, SyntheticTraffic, json_lines

NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)


def take(traffic: SyntheticTraffic, n: int) -> list[bytes]:
    source = iter(traffic)
    return [next(source) for _ in range(n)]


def fixed_clock() -> datetime:
    return NOW


def test_valid_events_have_the_prototype_shape() -> None:
    """pageview is 1, added-to-basket an integer 1-5, purchase 0-100 with at most two decimals."""
    traffic = SyntheticTraffic(malformed_ratio=0, seed=7, clock=fixed_clock)
    events = [parse_event(body) for body in take(traffic, 3000)]
    by_type: dict[str, list[Decimal]] = {}
    for event in events:
        by_type.setdefault(event.type, []).append(Decimal(event.value_micros).scaleb(-6))
    assert set(by_type) == {"pageview", "added-to-basket", "purchase"}
    assert set(by_type["pageview"]) == {1}
    assert set(by_type["added-to-basket"]) == {1, 2, 3, 4, 5}
    assert all(0 <= v <= 100 and v == round(v, 2) for v in by_type["purchase"])
    assert len(set(by_type["purchase"])) > 100
    ages = {NOW - e.occurred_at for e in events}
    assert ages == {timedelta(0), timedelta(hours=1)}


def test_about_the_requested_share_is_malformed_and_each_really_is() -> None:
    """With ratio 0.15, 10-20% of 5000 events fail the contract, for each of the spoilt fields."""
    traffic = SyntheticTraffic(seed=11, clock=fixed_clock)
    reasons = []
    for body in take(traffic, 5000):
        try:
            parse_event(body)
        except InvalidEvent as exc:
            reasons.append(exc.reason)
    assert 500 <= len(reasons) <= 1000
    assert set(reasons) == {"missing_field", "bad_value", "bad_timestamp"}


def test_the_same_seed_gives_the_same_traffic() -> None:
    """A seed makes the traffic reproducible; ids (when asked for) never repeat across runs."""
    first = take(SyntheticTraffic(seed=3, clock=fixed_clock), 200)
    again = take(SyntheticTraffic(seed=3, clock=fixed_clock), 200)
    assert first == again
    with_ids = [json.loads(b) for b in take(SyntheticTraffic(seed=3, with_ids=True), 50)]
    with_ids += [json.loads(b) for b in take(SyntheticTraffic(seed=3, with_ids=True), 50)]
    assert len({e["id"] for e in with_ids}) == 100


def test_custom_types_are_used_and_checked() -> None:
    """--types picks the generated types; a name that can never be a type is refused early."""
    traffic = SyntheticTraffic(types=("refund",), malformed_ratio=0, seed=1)
    assert {parse_event(b).type for b in take(traffic, 50)} == {"refund"}
    with pytest.raises(ValueError, match="invalid event types"):
        SyntheticTraffic(types=("no spaces",))
    with pytest.raises(ValueError, match="between 0 and 1"):
        SyntheticTraffic(malformed_ratio=1.5)


def test_json_lines_yields_each_non_blank_line_unchanged() -> None:
    """Lines are sent as written, malformed or not; blank lines are skipped."""
    stream = io.BytesIO(b'{"type":"a","value":1}\n\n  not json  \r\n{"x":1}')
    assert list(json_lines(stream)) == [b'{"type":"a","value":1}', b"not json", b'{"x":1}']


def test_the_summary_counts_exactly_as_the_processor_will() -> None:
    """Valid bodies add to their type's count and exact sum; invalid ones count as malformed."""
    summary = SendSummary()
    for value in ["0.1"] * 10 + ["19.99", "-5"]:
        summary.record(
            f'{{"type":"purchase","value":{value},"occurred_at":"2020-10-06 10:02:05"}}'.encode()
        )
    summary.record(b'{"type":"purchase","value":"abc","occurred_at":"2020-10-06 10:02:05"}')
    summary.record(b"not json")
    assert summary.to_json() == {
        "sent": 14,
        "malformed": 2,
        "failed": 0,
        "types": {"purchase": {"count": 12, "sum": "15.99"}},
    }
    assert "purchase" in summary.to_text()


@pytest.mark.parametrize(
    ("micros", "text"),
    [(0, "0"), (1_000_000, "1"), (1_500_000, "1.5"), (-250_000, "-0.25"), (1, "0.000001")],
)
def test_sums_are_written_like_the_api_writes_them(micros: int, text: str) -> None:
    """Exact sums have no exponent and no trailing zeros, the same form as /stats' sum_exact."""
    assert micros_to_text(micros) == text
