"""Dimensions in the event contract: which field values become which dimension values."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporter import events
from exporter.envelopes import read_event
from exporter.events import (
    ABSENT,
    MAX_DIMENSIONS,
    NO_DIMENSIONS,
    OTHER,
    ContractOptions,
    InvalidEvent,
    checked_dimension_names,
    dimension_value,
    parse_event,
)
from tests.unit.envelopes.test_envelopes import eventbridge, sns
from tests.unit.processing.processor_fakes import json_values

BASE = {"type": "purchase", "value": 12.5, "occurred_at": "2020-10-06 10:02:05"}
COUNTRY = ContractOptions.of(["country"])
VALUE_RULE = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.:/@+-]{0,63}")


def country_of(raw_field: str | None) -> str:
    """The `country` dimension of an event whose country field is the JSON text `raw_field`
    (None: the field is left out)."""
    fields = "" if raw_field is None else f', "country": {raw_field}'
    body = '{"type": "purchase", "value": 1, "occurred_at": "2020-10-06 10:02:05"' + fields + "}"
    (value,) = parse_event(body.encode(), options=COUNTRY).dimensions
    return value


@pytest.mark.parametrize(
    ("raw_field", "expected"),
    [
        # strings: taken as they are, case kept, no trimming
        ('"NL"', "NL"),
        ('"nl"', "nl"),
        ('"web shop"', "web shop"),
        ('"v2.1:beta/x@y+z-1_0"', "v2.1:beta/x@y+z-1_0"),
        ('"' + "a" * 64 + '"', "a" * 64),
        ('"NL "', "NL "),  # not trimmed: another value than "NL"
        # integers as their decimal text, within +-1e15
        ("42", "42"),
        ("0", "0"),
        ("-0", "0"),
        ("-7", "-7"),
        ("1000000000000000", "1000000000000000"),
        ("-1000000000000000", "-1000000000000000"),
        # booleans as true / false
        ("true", "true"),
        ("false", "false"),
        # missing and null: absent, not an error
        (None, ABSENT),
        ("null", ABSENT),
        # everything else breaks the rule and is counted under __other__
        ('""', OTHER),
        ('"' + "a" * 65 + '"', OTHER),
        ('" NL"', OTHER),
        ('"_x"', OTHER),
        ('"__absent__"', OTHER),
        ('"__other__"', OTHER),
        ('"-5"', OTHER),
        ('"a|b"', OTHER),
        ('"a\\nb"', OTHER),
        ('"caf\\u00e9"', OTHER),
        ('"\\ud800"', OTHER),
        ("1.5", OTHER),
        ("1.0", OTHER),
        ("1e3", OTHER),
        ("0.1", OTHER),
        ("1000000000000001", OTHER),
        ("-1000000000000001", OTHER),
        ("123456789012345678901234567890", OTHER),
        ("{}", OTHER),
        ('{"code": "NL"}', OTHER),
        ("[]", OTHER),
        ('["NL"]', OTHER),
    ],
)
def test_every_json_kind_has_one_dimension_value(raw_field: str | None, expected: str) -> None:
    """Strings by the rule, integers and booleans as text, null or missing absent, else other."""
    assert country_of(raw_field) == expected


def test_no_dimension_value_ever_rejects_an_event() -> None:
    """A dimension field of any shape leaves the event valid, with its other fields intact."""
    for raw in ("{}", "[1, 2]", '"tab\\there"', "NaN", "1e999", '"' + "é" * 200 + '"'):
        body = json.dumps(BASE)[:-1] + f', "country": {raw}}}'
        event = parse_event(body.encode(), options=COUNTRY)
        assert (event.type, event.value_micros) == ("purchase", 12_500_000)
        assert event.dimensions == (OTHER,)


def test_dimensions_follow_the_sorted_configuration() -> None:
    """Values come in the configuration's order, whatever order the names were declared in."""
    options = ContractOptions.of(["country", "channel", "payment"])
    assert options.dimensions == ("channel", "country", "payment")
    assert options == ContractOptions.of(["payment", "channel", "country"])
    body = json.dumps({**BASE, "payment": "card", "country": "NL"}).encode()
    assert parse_event(body, options=options).dimensions == (ABSENT, "NL", "card")


def test_without_declared_dimensions_nothing_is_read() -> None:
    """With no dimension declared, an event's fields beyond the contract's are ignored."""
    body = json.dumps({**BASE, "country": "NL"}).encode()
    assert parse_event(body).dimensions == ()
    assert parse_event(body, options=NO_DIMENSIONS) == parse_event(body)


def test_a_rejected_event_stays_rejected_with_dimensions_declared() -> None:
    """Dimensions never change the verdict on the contract's own fields, nor its reason."""
    body = json.dumps({"type": "purchase", "value": "12", "country": "NL"}).encode()
    with pytest.raises(InvalidEvent) as plain:
        parse_event(body)
    with pytest.raises(InvalidEvent) as declared:
        parse_event(body, options=COUNTRY)
    assert (declared.value.reason, declared.value.detail) == (
        plain.value.reason,
        plain.value.detail,
    )


def test_envelopes_carry_the_dimensions_of_the_event_inside() -> None:
    """An event in an SNS notification or an EventBridge event gives its own fields' values."""
    inner = {**BASE, "country": "DE"}
    assert read_event(sns(json.dumps(inner)), options=COUNTRY)[0].dimensions == ("DE",)
    assert read_event(eventbridge(inner), options=COUNTRY)[0].dimensions == ("DE",)
    # The envelope's own top-level fields are never dimensions of the event.
    outer = json.loads(eventbridge(BASE))
    outer["country"] = "FR"
    assert read_event(json.dumps(outer).encode(), options=COUNTRY)[0].dimensions == (ABSENT,)


def exact_dimension(value: Any) -> str:
    """The value as the exact decoder reads it back from JSON (fractions as Decimal)."""
    text = json.dumps(value, allow_nan=True)
    return dimension_value(json.JSONDecoder(parse_float=Decimal).decode(text))


@given(json_values)
def test_the_rule_holds_for_every_json_value(value: Any) -> None:
    """Any JSON value gives `__absent__` (null only), `__other__`, or a text by the rule that
    neither starts with `__` nor holds `|`; both decoders agree on it."""
    result = exact_dimension(value)
    if value is None:
        assert result == ABSENT
    elif result != OTHER:
        assert VALUE_RULE.fullmatch(result) or re.fullmatch(r"-?[0-9]{1,16}", result)
        assert not result.startswith("__")
        assert "|" not in result
    body = json.dumps({**BASE, "country": value}, allow_nan=True).encode()
    assert parse_event(body, options=COUNTRY).dimensions == (result,)


@given(st.from_regex(VALUE_RULE, fullmatch=True))
def test_a_string_by_the_rule_is_its_own_value(value: str) -> None:
    """Every string the rule allows is kept exactly as sent."""
    assert dimension_value(value) == value
    assert exact_dimension(value) == value


@given(st.integers(-(10**15), 10**15))
def test_integers_within_range_are_their_decimal_text(number: int) -> None:
    """An integer within +-1e15 is its decimal text, so 42 and "42" are one value."""
    assert exact_dimension(number) == str(number)
    if number >= 0:
        assert exact_dimension(str(number)) == str(number)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_a_number_with_a_fraction_or_exponent_is_never_a_value(number: float) -> None:
    """A JSON number written with a fraction or exponent is `__other__`, even 1.0."""
    assert exact_dimension(number) == OTHER


@pytest.mark.parametrize(
    "names",
    [
        ["country"],
        ["channel", "country"],
        ["_x"],
        ["a" * 40],
        ["x1_2"],
        [f"d{i}" for i in range(8)],
    ],
)
def test_dimension_names_that_pass(names: list[str]) -> None:
    """Prometheus label names of lower-case letters, digits and _ up to 40 characters pass."""
    assert checked_dimension_names(names) == tuple(sorted(names))


@pytest.mark.parametrize(
    ("names", "problem"),
    [
        (["Country"], "must be"),
        (["1st"], "must be"),
        (["__hidden"], "must be"),
        (["a" * 41], "must be"),
        (["pay-method"], "must be"),
        ([""], "must be"),
        (["type"], "reserved"),
        (["le"], "reserved"),
        (["instance"], "reserved"),
        (["queue_name"], "reserved"),
        (["country", "country"], "named twice"),
        ([f"d{i}" for i in range(MAX_DIMENSIONS + 1)], "at most 8"),
    ],
)
def test_dimension_names_that_fail_say_why(names: list[str], problem: str) -> None:
    """A bad, reserved, repeated or ninth name is refused with what was wrong."""
    with pytest.raises(ValueError, match=problem):
        ContractOptions.of(names)
    for reserved in ("type", "value", "occurred_at", "id", "le", "quantile", "job"):
        assert reserved in events.RESERVED_DIMENSION_NAMES
