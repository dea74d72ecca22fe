"""The series query's parsing: any text is either a usable range or a BadQuery, never a crash."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from exporter.store.series import MAX_POINTS, MINUTE
from exporter.web.series import BadQuery, iso, parse_range

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


@given(moments, moments, steps)
def test_any_query_is_a_range_or_a_bad_query(start: str, end: str, step: str) -> None:
    """A range that parses starts on a minute, has 1 to 10,000 steps and prints as RFC 3339."""
    try:
        first, seconds, points = parse_range({"from": start, "to": end, "step": step})
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
        {"from": "2026-01-01T01:00:30.1234567+01:00", "to": "2026-01-01T00:10:00Z", "step": "300"}
    )
    assert (iso(first), step, points) == ("2026-01-01T00:00:00Z", 300, 2)
