"""The series query's parsing: any text is either a usable range or a BadQuery, never a crash;
missing parameters take the live page's defaults; every problem is named at once."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from multidict import MultiDict

from exporter.store.series import MAX_POINTS, MINUTE
from exporter.web.series import BadQuery, iso, parse_range

# 2026-01-31T10:30:17Z, in mid-minute.
NOW = datetime(2026, 1, 31, 10, 30, 17, tzinfo=UTC).timestamp()

moments = st.one_of(
    st.text(max_size=40),
    st.datetimes(timezones=st.timezones()).map(lambda moment: moment.isoformat()),
    st.sampled_from(
        [
            "9999-12-31T23:59:59-01:00",
            "0001-01-01T00:00:00+14:00",
            "2026-01-01T00:00:00.1234567Z",
            "2026-01-01T00:00:60Z",
            "2026-01-01t00:00:00z",
        ]
    ),
)
steps = st.one_of(st.integers(-10, 10**13).map(str), st.text(max_size=8))


def query(**values: str | list[str]) -> MultiDict[str]:
    """A query string's parameters; a list is a parameter given once per item."""
    pairs = []
    for name, value in values.items():
        pairs += [(name.rstrip("_"), v) for v in ([value] if isinstance(value, str) else value)]
    return MultiDict(pairs)


def problem(params: MultiDict[str], now: float = NOW) -> str:
    with pytest.raises(BadQuery) as raised:
        parse_range(params, now)
    return str(raised.value)


@given(
    st.none() | moments,
    st.none() | moments,
    st.none() | steps,
    st.floats(0, 253402300799),
)
def test_any_query_is_a_range_or_a_bad_query(
    start: str | None, end: str | None, step: str | None, now: float
) -> None:
    """A range that parses, with or without each parameter, starts on a minute, has 1 to 10,000
    steps and prints as RFC 3339."""
    present = {
        name: value
        for name, value in [("from_", start), ("to", end), ("step", step)]
        if value is not None
    }
    try:
        first, seconds, points = parse_range(query(**present), now)
    except BadQuery:
        return  # the API answers 400 with its message
    assert first % MINUTE == 0
    assert seconds % MINUTE == 0
    assert 1 <= points <= MAX_POINTS
    assert iso(first).endswith("Z")
    assert iso(first + points * seconds).endswith("Z")


def test_offsets_and_fractions_are_read_as_rfc_3339_says() -> None:
    """An offset moves the instant; a fraction past microseconds is cut; `from` is floored."""
    first, step, points = parse_range(
        query(from_="2026-01-01T01:00:30.1234567+01:00", to="2026-01-01T00:10:00Z", step="300"),
        NOW,
    )
    assert (iso(first), step, points) == ("2026-01-01T00:00:00Z", 300, 2)


def test_without_parameters_it_is_the_last_hour_per_minute_as_the_page_draws() -> None:
    """No parameter: 60 one-minute steps ending with the current minute (10:30 included)."""
    first, step, points = parse_range(query(), NOW)
    assert (iso(first), step, points) == ("2026-01-31T09:31:00Z", 60, 60)
    assert iso(first + step * points) == "2026-01-31T10:31:00Z"


def test_each_missing_parameter_takes_its_own_default() -> None:
    """`to` alone: the hour before it; `from` alone: up to the current minute; `step` alone: the
    last hour at that step."""
    first, step, points = parse_range(query(to="2026-01-01T12:00:00Z"), NOW)
    assert (iso(first), step, points) == ("2026-01-01T11:00:00Z", 60, 60)
    first, step, points = parse_range(query(from_="2026-01-31T10:00:00Z"), NOW)
    assert (iso(first), step, points) == ("2026-01-31T10:00:00Z", 60, 31)
    first, step, points = parse_range(query(step="600"), NOW)
    assert (iso(first), step, points) == ("2026-01-31T09:31:00Z", 600, 6)


def test_a_from_after_the_default_to_names_the_default() -> None:
    """`from` in the future without `to`: the answer says what `to` was taken to be."""
    message = problem(query(from_="2026-02-01T00:00:00Z"))
    assert "'from' must be earlier than 'to'" in message
    assert "2026-01-31T10:31:00Z" in message


def test_every_bad_parameter_is_named_in_one_answer() -> None:
    """A bad `from`, a bad `to` and a bad `step` are all named at once, in the parameters' order."""
    message = problem(query(from_="yesterday", to="2026-13-01T00:00:00Z", step="90"))
    named = [
        message.find("'from' 'yesterday'"),
        message.find("'to' '2026-13"),
        message.find("'step'"),
    ]
    assert -1 not in named, message
    assert named == sorted(named)


def test_a_repeated_parameter_is_a_problem_not_its_first_value() -> None:
    """`from=A&from=B` has no right answer: refused, with the other problems of the query."""
    message = problem(
        query(from_=["2026-01-31T09:00:00Z", "2026-01-31T10:00:00Z"], step=["60", "60"])
    )
    assert "'from' is given 2 times; give it once." in message
    assert "'step' is given 2 times; give it once." in message


def test_an_unknown_parameter_is_named_rather_than_ignored() -> None:
    """A typo (`stpe`) would silently fall back to a default: it is refused, naming it."""
    message = problem(query(stpe="300", from_="nope"))
    assert "Unknown parameter 'stpe'" in message
    assert "'from' 'nope'" in message
    many = problem(query(**{f"p{n}": "1" for n in range(8)}))
    assert "'p0', 'p1', 'p2', 'p3', 'p4' and 3 more" in many
