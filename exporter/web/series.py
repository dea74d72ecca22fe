"""GET /stats/{type}/series (event-time buckets summed into steps) and GET /rejected."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Final, TypeVar

from aiohttp import web
from multidict import MultiMapping

from exporter.events import is_valid_type, micros_to_decimal, micros_to_text
from exporter.store import Snapshot, Store, StoreUnavailable
from exporter.store.series import HOUR, MAX_POINTS, MINUTE, SeriesPoint, to_steps
from exporter.web.errors import json_error

# A year per step is plenty for a picture; it also keeps every answer inside datetime's range.
MAX_STEP_SECONDS: Final = 366 * 24 * 3600
PARAMETERS: Final = ("from", "to", "step")
# Without parameters, the live page's chart: the last hour, a point per minute.
DEFAULT_SPAN_SECONDS: Final = HOUR
DEFAULT_STEP_SECONDS: Final = MINUTE
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_FIRST_SECOND: Final = int((datetime(1, 1, 1, tzinfo=UTC) - _EPOCH).total_seconds())
_LAST_SECOND: Final = int((datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC) - _EPOCH).total_seconds())
_RFC3339: Final = re.compile(
    r"(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})"
)

T = TypeVar("T")
SnapshotReader = Callable[[], Awaitable[Snapshot]]
STORE_KEY: Final = web.AppKey("series_store", Store)
SNAPSHOT_KEY: Final[web.AppKey[SnapshotReader]] = web.AppKey("series_snapshot")
TIMEOUT_KEY: Final = web.AppKey("series_timeout", float)


class BadQuery(Exception):
    """A query parameter that cannot be used; the message names it and says what would work."""


async def _within(seconds: float, read: Awaitable[T]) -> T:
    """`read`'s answer; a store slower than `seconds` is an outage (503), not a bug (500)."""
    try:
        async with asyncio.timeout(seconds):
            return await read
    except TimeoutError:
        raise StoreUnavailable("the store did not answer in time") from None


def add_series_routes(
    app: web.Application, store: Store, snapshot: SnapshotReader, timeout_seconds: float
) -> None:
    """Route the series and rejected-count reads of `store` on `app`."""
    app[STORE_KEY] = store
    app[SNAPSHOT_KEY] = snapshot
    app[TIMEOUT_KEY] = timeout_seconds
    app.router.add_get("/stats/{type}/series", type_series, name="type_series")
    app.router.add_get("/rejected", rejected, name="rejected")


def iso(seconds: int) -> str:
    """Seconds since the epoch as RFC 3339 in UTC with a Z."""
    return (_EPOCH + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def parse_moment(name: str, text: str) -> int:
    """An RFC 3339 timestamp with its offset as whole seconds since the epoch (floored)."""
    match = _RFC3339.fullmatch(text)
    moment = None
    if match:
        date, clock, fraction, offset = match.groups()
        offset = "+00:00" if offset in "Zz" else offset
        try:
            moment = datetime.fromisoformat(f"{date}T{clock}.{(fraction or '0')[:6]}{offset}")
        except ValueError:
            moment = None
    if moment is None:
        raise BadQuery(
            f"'{name}' {text[:40]!r} is not an RFC 3339 time with an offset, "
            "such as 2026-01-31T10:00:00Z."
        )
    return (moment - _EPOCH) // timedelta(seconds=1)


def parse_step(text: str) -> int:
    """The step in seconds: a whole number of minutes."""
    if not text.isascii() or not text.isdigit() or len(text) > 12:
        raise BadQuery(f"'step' {text[:20]!r} must be a whole number of seconds, such as 60.")
    step = int(text)
    if step < MINUTE or step % MINUTE or step > MAX_STEP_SECONDS:
        raise BadQuery(
            f"'step' must be a multiple of 60 between 60 and {MAX_STEP_SECONDS} seconds."
        )
    return step


def _given(query: MultiMapping[str], problems: list[str]) -> dict[str, str]:
    """Each parameter given once; an unknown or repeated one is a problem (a typo must not fall
    back to a default unnoticed, and `from=A&from=B` has no right answer)."""
    unknown = [name for name in dict.fromkeys(query) if name not in PARAMETERS]
    if unknown:
        shown = ", ".join(repr(name[:40]) for name in unknown[:5])
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        problems.append(
            f"Unknown parameter {shown}{more}: this route takes only 'from', 'to' and 'step'."
        )
    given = {}
    for name in PARAMETERS:
        values = query.getall(name, [])
        if len(values) > 1:
            problems.append(f"'{name}' is given {len(values)} times; give it once.")
        elif values:
            given[name] = values[0]
    return given


def parse_range(query: MultiMapping[str], now: float) -> tuple[int, int, int]:
    """(start, step, points) from the query, start floored to its minute, every step in range.

    Each parameter is optional: by default the hour up to the end of the current minute, at one
    minute per step (what the live page draws). Every problem is named in one BadQuery.
    """
    problems: list[str] = []
    given = _given(query, problems)
    parsers: dict[str, Callable[[str], int]] = {
        "from": partial(parse_moment, "from"),
        "to": partial(parse_moment, "to"),
        "step": parse_step,
    }
    parsed: dict[str, int] = {}
    for name, text in given.items():
        try:
            parsed[name] = parsers[name](text)
        except BadQuery as exc:
            problems.append(str(exc))
    if problems:
        raise BadQuery(" ".join(problems))
    end = parsed.get("to", int(now) // MINUTE * MINUTE + MINUTE)
    start = parsed.get("from", end - DEFAULT_SPAN_SECONDS)
    step = parsed.get("step", DEFAULT_STEP_SECONDS)
    start -= start % MINUTE
    if end <= start:
        if "to" in parsed:
            raise BadQuery("'to' must be later than 'from'.")
        raise BadQuery(
            f"'from' must be earlier than 'to', which is by default the end of the current "
            f"minute, {iso(end)}."
        )
    points = -(-(end - start) // step)
    if points > MAX_POINTS:
        raise BadQuery(
            f"The range holds {points} steps of {step} seconds; at most {MAX_POINTS} are "
            "answered: shorten it or raise 'step'."
        )
    if start < _FIRST_SECOND or start + points * step > _LAST_SECOND:
        raise BadQuery("The range must lie within the years 1 to 9999 (UTC).")
    return start, step, points


def point_json(point: SeriesPoint) -> dict[str, Any]:
    """One step as the API shows it: exact sum as text, as in /stats."""
    return {
        "start": iso(point.start_s),
        "count": point.count,
        "sum": float(micros_to_decimal(point.sum_micros)),
        "sum_exact": micros_to_text(point.sum_micros),
    }


async def type_series(request: web.Request) -> web.Response:
    """GET /stats/{type}/series: counts and sums per step by when the events occurred."""
    name = request.match_info["type"]
    if not is_valid_type(name):
        return json_error(
            400,
            "invalid_type",
            "An event type is 1-64 letters, digits and _ . : -, starting with a letter or digit.",
        )
    try:
        start, step, points = parse_range(request.query, time.time())
    except BadQuery as exc:
        return json_error(400, "invalid_query", str(exc))
    app = request.app
    if (await app[SNAPSHOT_KEY]()).get(name) is None:
        return json_error(404, "unknown_type", f"No event of type {name!r} was counted.")
    end = start + points * step
    minutes = await _within(
        app[TIMEOUT_KEY], app[STORE_KEY].series(name, start // MINUTE, end // MINUTE)
    )
    body = {
        "type": name,
        "from": iso(start),
        "to": iso(end),
        "step": step,
        "points": [point_json(p) for p in to_steps(minutes, start, step, points)],
    }
    return web.Response(body=json.dumps(body).encode(), content_type="application/json")


async def rejected(request: web.Request) -> web.Response:
    """GET /rejected: events the processors dead-lettered since the last reset, by reason."""
    app = request.app
    counts = await _within(app[TIMEOUT_KEY], app[STORE_KEY].rejected())
    reasons = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return web.json_response(
        {
            "total": sum(counts.values()),
            "reasons": [{"reason": reason, "count": count} for reason, count in reasons],
        }
    )


__all__ = ["add_series_routes", "parse_range"]
