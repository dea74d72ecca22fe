"""The event contract: what is accepted, what is rejected and with which reason."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.events import REASONS, Event, InvalidEvent, is_valid_type, parse_event


def body(**fields: object) -> bytes:
    base: dict[str, object] = {
        "type": "purchase",
        "value": 12.5,
        "occurred_at": "2020-10-06 10:02:05",
    }
    base.update(fields)
    return json.dumps({k: v for k, v in base.items() if v is not ...}).encode()


def test_seed_example_is_accepted() -> None:
    """The prototype's example event parses to an exact value and an aware UTC time."""
    event = parse_event(
        b'{"type": "purchase", "value": 12.5, "occurred_at": "2020-10-06 10:02:05"}'
    )
    assert event == Event(
        type="purchase",
        value_micros=12_500_000,
        occurred_at=datetime(2020, 10, 6, 10, 2, 5, tzinfo=UTC),
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2020-10-06 10:02:05", datetime(2020, 10, 6, 10, 2, 5, tzinfo=UTC)),
        ("2020-10-06T10:02:05", datetime(2020, 10, 6, 10, 2, 5, tzinfo=UTC)),
        ("2020-10-06T10:02:05Z", datetime(2020, 10, 6, 10, 2, 5, tzinfo=UTC)),
        ("2020-10-06T10:02:05.250Z", datetime(2020, 10, 6, 10, 2, 5, 250000, tzinfo=UTC)),
        ("2020-10-06T12:02:05+02:00", datetime(2020, 10, 6, 10, 2, 5, tzinfo=UTC)),
        ("10/06/2020 10:02", datetime(2020, 10, 6, 10, 2, tzinfo=UTC)),
    ],
)
def test_accepted_timestamp_forms_normalise_to_utc(raw: str, expected: datetime) -> None:
    """Each documented timestamp form is read as UTC (or converted to it from its offset)."""
    assert parse_event(body(occurred_at=raw)).occurred_at == expected


@pytest.mark.parametrize(
    "name", ["added-to-basket", "page_view", "checkout.v2", "a", "x" * 64, "ns:ev"]
)
def test_type_names_that_pass(name: str) -> None:
    """Letters, digits and _ . : - up to 64 characters are valid type names."""
    assert parse_event(body(type=name)).type == name
    assert is_valid_type(name)


@pytest.mark.parametrize(
    ("raw", "reason", "detail_mentions"),
    [
        (b"x" * 70_000, "too_large", "limit"),
        (b"\xff\xfe", "not_json", "UTF-8"),
        (b"{nope", "not_json", "not JSON"),
        (b"", "not_json", "not JSON"),
        (b"[" * 60_000, "not_json", "nested"),
        (b"1" * 5000, "not_json", "usable"),
        (b"[1, 2]", "not_object", "array"),
        (b"null", "not_object", "null"),
        (b'"purchase"', "not_object", "string"),
        (b"42", "not_object", "number"),
        (b"NaN", "not_object", "number"),
        (body(type=...), "missing_field", "'type'"),
        (body(value=...), "missing_field", "'value'"),
        (body(occurred_at=...), "missing_field", "'occurred_at'"),
        (body(value=None), "missing_field", "'value'"),
        (body(type=""), "bad_type", "'type'"),
        (body(type="has space"), "bad_type", "'type'"),
        (body(type='quo"te'), "bad_type", "'type'"),
        (body(type="new\nline"), "bad_type", "'type'"),
        (body(type="x" * 65), "bad_type", "'type'"),
        (body(type="-leading"), "bad_type", "'type'"),
        (body(type="café"), "bad_type", "'type'"),
        (body(type=7), "bad_type", "a number"),
        (body(value="12.5"), "bad_value", "a string"),
        (body(value=True), "bad_value", "a boolean"),
        (body(value=[1]), "bad_value", "an array"),
        (body(value=1e13), "bad_value", "1e12"),
        (body(value=-1e13), "bad_value", "1e12"),
        (b'{"type":"a","value":NaN,"occurred_at":"2020-10-06 10:02:05"}', "bad_value", "NaN"),
        (b'{"type":"a","value":Infinity,"occurred_at":"2020-10-06 10:02:05"}', "bad_value", "Inf"),
        (body(occurred_at="yesterday"), "bad_timestamp", "'occurred_at'"),
        (body(occurred_at="2020-13-45 10:02:05"), "bad_timestamp", "'occurred_at'"),
        (body(occurred_at="1900-01-01 00:00:00"), "bad_timestamp", "1900"),
        (body(occurred_at=1601978525), "bad_timestamp", "a number"),
        (body(occurred_at=""), "bad_timestamp", "'occurred_at'"),
        (body(occurred_at="13/45/2020 10:02"), "bad_timestamp", "'occurred_at'"),
        (body(occurred_at="2020-10-06"), "bad_timestamp", "'occurred_at'"),
        (body(occurred_at="2020-10-06T25:00:00Z"), "bad_timestamp", "'occurred_at'"),
        (body(occurred_at="2020-10-06 10:02:05 "), "bad_timestamp", "'occurred_at'"),
        (body(id=""), "bad_id", "'id'"),
        (body(id="x" * 129), "bad_id", "'id'"),
        (body(id=5), "bad_id", "'id'"),
        (
            b'{"type":"a","value":1,"occurred_at":"2020-10-06 10:02:05","id":"\\ud800x"}',
            "bad_id",
            "Unicode",
        ),
        (body(type={"a": 1}), "bad_type", "an object"),
    ],
)
def test_rejections_have_a_stable_reason_and_name_the_field(
    raw: bytes, reason: str, detail_mentions: str
) -> None:
    """Every broken body is rejected with its documented reason and a detail naming the problem."""
    with pytest.raises(InvalidEvent) as caught:
        parse_event(raw)
    assert caught.value.reason == reason
    assert reason in REASONS
    assert detail_mentions in caught.value.detail


def test_size_limit_is_configurable() -> None:
    """The body limit is a parameter; the boundary itself is allowed."""
    raw = body()
    assert parse_event(raw, max_bytes=len(raw)).type == "purchase"
    with pytest.raises(InvalidEvent, match="too_large"):
        parse_event(raw, max_bytes=len(raw) - 1)


def test_values_are_exact_and_rounded_half_even_past_six_decimals() -> None:
    """Decimal text is kept exactly; a seventh decimal rounds half to even."""
    assert (
        parse_event(b'{"type":"a","value":0.1,"occurred_at":"2020-10-06 10:02:05"}').value_micros
        == 100_000
    )
    assert (
        parse_event(
            b'{"type":"a","value":999999999999.999999,"occurred_at":"2020-10-06 10:02:05"}'
        ).value_micros
        == 999_999_999_999_999_999
    )
    assert (
        parse_event(
            b'{"type":"a","value":0.0000005,"occurred_at":"2020-10-06 10:02:05"}'
        ).value_micros
        == 0
    )
    assert (
        parse_event(
            b'{"type":"a","value":0.0000015,"occurred_at":"2020-10-06 10:02:05"}'
        ).value_micros
        == 2
    )
    assert (
        parse_event(b'{"type":"a","value":-3,"occurred_at":"2020-10-06 10:02:05"}').value_micros
        == -3_000_000
    )


def test_unknown_fields_are_ignored_and_id_is_kept() -> None:
    """Extra fields do not matter; an `id` becomes the event's identity."""
    event = parse_event(body(id="order-17", extra={"nested": [1, 2]}, other=None))
    assert event.id == "order-17"


def _outcome(raw: bytes) -> str | None:
    try:
        parse_event(raw)
    except InvalidEvent as exc:
        return exc.reason
    return None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=400)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_only_ever_raise_invalid_event(raw: bytes) -> None:
    """No byte string makes the parser raise anything but InvalidEvent."""
    reason = _outcome(raw)
    assert reason is None or reason in REASONS


@settings(max_examples=400)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "type": json_values
            | st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}", fullmatch=True),
            "value": json_values,
            "occurred_at": json_values | st.just("2020-10-06 10:02:05"),
            "id": json_values,
        },
    )
)
def test_arbitrary_objects_only_ever_raise_invalid_event(fields: dict[str, object]) -> None:
    """Objects with any mix of field shapes are accepted or rejected, never crash the parser."""
    raw = json.dumps(fields, allow_nan=True).encode()
    reason = _outcome(raw)
    assert reason is None or reason in REASONS


valid_events = st.builds(
    Event,
    type=st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}", fullmatch=True),
    value_micros=st.integers(min_value=-(10**18), max_value=10**18),
    occurred_at=st.datetimes(
        min_value=datetime(1970, 1, 1), max_value=datetime(2999, 12, 31), timezones=st.just(UTC)
    ),
    id=st.none() | st.text(min_size=1, max_size=128),
)


def as_json(event: Event) -> bytes:
    """The event as a producer would write it, its value exact (never in exponent form)."""
    fields = {
        "type": event.type,
        "occurred_at": event.occurred_at.isoformat().replace("+00:00", "Z"),
    }
    if event.id is not None:
        fields["id"] = event.id
    # A six-place exponent keeps plain notation (never 1E-6), which is valid JSON.
    value = str(Decimal(event.value_micros).scaleb(-6))
    return (json.dumps(fields)[:-1] + f', "value": {value}}}').encode()


@settings(max_examples=400)
@given(valid_events)
def test_every_valid_event_round_trips(event: Event) -> None:
    """Serialising a valid event and parsing it back gives the same event."""
    assert parse_event(as_json(event)) == event


def test_offsets_do_not_change_the_instant() -> None:
    """A timestamp with an offset is the same instant as its UTC form."""
    event = parse_event(body(occurred_at="2020-10-06T05:02:05-05:00"))
    assert event.occurred_at == datetime(2020, 10, 6, 10, 2, 5, tzinfo=timezone(timedelta(0)))
