"""The fast decoder never changes what `parse_event` answers: same event, or same reason and detail.

`parse_event` reads bodies with orjson where its answer provably agrees with the exact (stdlib,
Decimal) decoder; these tests compare it with the exact decoder alone on every kind of body.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

import orjson
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from exporter import events
from exporter.events import Event, InvalidEvent, parse_event, parse_timestamp
from tests.faults.malformed import MALFORMED
from tests.unit.processing.processor_fakes import bodies, json_values

Answer = Event | tuple[str, str]


def answer(parse: object, raw: bytes) -> Answer:
    """The event, or the rejection's reason and detail."""
    assert callable(parse)
    try:
        result = parse(raw)
    except InvalidEvent as exc:
        return (exc.reason, exc.detail)
    assert isinstance(result, Event)
    return result


def exactly(raw: bytes) -> Event:
    """`parse_event` as it was before the fast decoder: the exact decoder alone."""
    if len(raw) > events.DEFAULT_MAX_MESSAGE_BYTES:
        return parse_event(raw)  # the size check comes first on both paths
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return parse_event(raw)  # rejected before any decoder runs
    return events._validate(events._exact_decode(text))


def same(raw: bytes) -> None:
    fast, exact = answer(parse_event, raw), answer(exactly, raw)
    assert fast == exact
    if isinstance(fast, Event) and isinstance(exact, Event):
        assert fast.occurred_at.utcoffset() == exact.occurred_at.utcoffset()


# Number literals of every shape: many digits, halfway points, exponents, huge and tiny.
digits = st.text("0123456789", min_size=1, max_size=30)
number_literals = st.one_of(
    st.builds(
        lambda sign, whole, frac, exp: (
            f"{sign}{whole.lstrip('0') or '0'}" + (f".{frac}" if frac else "") + exp
        ),
        st.sampled_from(["", "-"]),
        digits,
        st.one_of(st.just(""), digits),
        st.one_of(st.just(""), st.integers(-400, 400).map(lambda e: f"e{e}")),
    ),
    st.decimals(allow_nan=False, allow_infinity=False).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(
        [
            "0.0000005",
            "0.0000015",
            "0.00000050000000000000001",
            "-0.0000025",
            "999999999.9999995",
            "1000000000.0000005",
            "999999999999.999999",
            "1000000000000",
            "1000000000000.0000001",
            "-0.0",
            "1e-400",
            "1E5",
            "12.34",
            "0.1",
            "123456789012345678901234567890",
            "18446744073709551616",
        ]
    ),
)


def with_value(literal: str) -> bytes:
    return (
        '{"type": "purchase", "value": ' + literal + ', "occurred_at": "2020-10-06 10:02:05"}'
    ).encode()


@settings(max_examples=1500)
@given(literal=number_literals)
@example(literal="NaN")
@example(literal="-Infinity")
def test_every_number_literal_gets_the_exact_answer(literal: str) -> None:
    """Any value literal, however many digits, gets the exact path's event or rejection."""
    same(with_value(literal))


@settings(max_examples=500)
@given(raw=bodies)
def test_any_body_gets_the_exact_answer(raw: bytes) -> None:
    """Arbitrary bytes, text and event-like objects: the same event, or reason and detail."""
    same(raw)


@given(field=st.sampled_from(["type", "occurred_at", "id"]), value=json_values)
def test_any_value_in_another_field_gets_the_exact_answer(field: str, value: object) -> None:
    """Floats, huge integers, objects and arrays where a string belongs: the same detail."""
    fields = {"type": "t", "value": 1, "occurred_at": "2020-10-06 10:02:05", field: value}
    same(json.dumps(fields).encode())


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_the_malformed_corpus_gets_the_exact_answer(name: str) -> None:
    """Every body of the fault suite's corpus is rejected as before, with the same detail."""
    same(MALFORMED[name][0].encode())


@pytest.mark.parametrize(
    "raw",
    [
        b'{"type": "t", "value": 1, "occurred_at": "2020-10-06 10:02:05", "x": '
        + b"[" * 900
        + b"]" * 900
        + b"}",
        b'{"type": "t", "type": "u", "value": 1, "occurred_at": "2020-10-06 10:02:05"}',
        b'{"type": "t\\ud800", "value": 1, "occurred_at": "2020-10-06 10:02:05"}',
        b'{"type": "t", "value": 1, "occurred_at": "2020-10-06 10:02:05", "id": "\\ud800"}',
        b'\xef\xbb\xbf{"type": "t", "value": 1, "occurred_at": "2020-10-06 10:02:05"}',
        b'{"type": 123456789012345678901234567890, "value": 1, "occurred_at": "x"}',
        b'{"type": 1.5, "value": 1, "occurred_at": "x"}',
        b'{"type": "t", "value": 1, "occurred_at": "2020-10-06T10:02:05.5+01:30"}',
        b"1e400",
        b"-1.5",
    ],
)
def test_bodies_the_two_decoders_read_differently_get_the_exact_answer(raw: bytes) -> None:
    """Deep nesting, duplicate keys, lone surrogates, a BOM, huge integers: as before."""
    same(raw)


@settings(max_examples=1500)
@given(literal=number_literals)
def test_a_double_is_trusted_only_when_it_rounds_exactly(literal: str) -> None:
    """Whenever the fast path takes a double, its millionths are the literal's, exactly rounded."""
    try:
        value = orjson.loads(literal)
    except orjson.JSONDecodeError:
        return
    if type(value) is not float:
        return
    try:
        micros = events._float_micros(value)
    except events._Inexact:
        return
    exact = Decimal(literal).quantize(Decimal("0.000001"), rounding=ROUND_HALF_EVEN)
    assert micros == int(exact.scaleb(6))


@given(
    moment=st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2999, 12, 31)),
    separator=st.sampled_from([" ", "T"]),
    places=st.sampled_from([0, 3, 6]),
)
def test_a_naive_timestamp_is_read_as_utc(moment: datetime, separator: str, places: int) -> None:
    """A timestamp without an offset is the same wall time in UTC, fraction kept."""
    text = moment.isoformat(sep=separator, timespec="seconds")
    if places:
        text += "." + f"{moment.microsecond:06d}"[:places]
    expected = datetime.fromisoformat(text).replace(tzinfo=UTC)
    parsed = parse_timestamp(text)
    assert parsed == expected
    assert parsed.utcoffset() == timedelta(0)
