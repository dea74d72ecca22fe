"""The event contract: what a message body must look like, checked once at the boundary.

This module is pure (no I/O, no project imports) so that every other part can trust an `Event`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any, Final, Literal

import orjson

DEFAULT_MAX_MESSAGE_BYTES: Final = 64 * 1024
MAX_ABS_VALUE: Final = 10**12
MICROS_PER_UNIT: Final = 1_000_000
MAX_ID_LENGTH: Final = 128
TYPE_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")
# The same rule in words, for every message and document that states it.
TYPE_RULE: Final = "1-64 characters of letters, digits and _ . : -, starting with a letter or digit"

# Years outside this range are almost always a unit mix-up (milliseconds as seconds, a zero date).
MIN_YEAR: Final = 1970
MAX_YEAR: Final = 2999

# Dimensions (decision 0020): top-level fields a deployment names in EXPORTER_DIMENSIONS. A name
# becomes a Prometheus label, so it follows the label rule, and may not shadow a label the
# exporter or Prometheus sets itself.
MAX_DIMENSIONS: Final = 8
DIMENSION_NAME_PATTERN: Final = re.compile(r"[a-z_][a-z0-9_]{0,39}")
RESERVED_DIMENSION_NAMES: Final = frozenset(
    {"type", "value", "occurred_at", "id", "le", "quantile", "queue_name", "instance", "job"}
)
DIMENSION_NAME_RULE: Final = (
    "1-40 characters of lower-case letters, digits and _, not starting with a digit or __, "
    f"and none of {', '.join(sorted(RESERVED_DIMENSION_NAMES))}"
)
# A value starts with a letter or digit, so no producer value can be mistaken for a reserved one
# (they start with __), and `|`, which joins a combination's values, is never in one.
DIMENSION_VALUE_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.:/@+-]{0,63}")
MAX_DIMENSION_INTEGER: Final = 10**15
DIMENSION_VALUE_RULE: Final = (
    "a string of 1-64 letters, digits, spaces and _ . : / @ + -, starting with a letter or "
    "digit; an integer within -1e15..1e15; or true or false"
)
ABSENT: Final = "__absent__"
"""The value of a dimension whose field is missing or null: not an error, not a fold."""
OTHER: Final = "__other__"
"""The value of a dimension whose field breaks the value rule (in the store: or is past a cap)."""

Reason = Literal[
    "too_large",
    "not_json",
    "not_object",
    "missing_field",
    "bad_type",
    "bad_value",
    "bad_timestamp",
    "bad_id",
    "too_many_types",
    "sum_overflow",
]
"""Every reason an event can be rejected for; stable, snake_case, used as a metric label."""

REASONS: Final[tuple[Reason, ...]] = Reason.__args__  # type: ignore[attr-defined]

_SIX_PLACES: Final = Decimal("0.000001")
# The exact decoder: every number with all its digits. One for every body: json.loads(...,
# parse_float=...) builds a new one per call. NaN and Infinity become non-finite Decimals, so
# 'value' rejects them by name below. It also names every JSON error a body is rejected for.
_DECODER: Final = json.JSONDecoder(parse_float=Decimal, parse_constant=Decimal)
# orjson decodes a body five times faster, but reads numbers as doubles and nests up to 1024
# levels where the exact decoder gives up sooner. It is used only where its answer provably
# agrees with the exact decoder's (see _fast_decode and _float_micros); everything else, every
# malformed body included, goes through the exact decoder as before.
_FAST_MAX_BRACKETS: Final = 64
# Below 1e9 a double's ulp is at most 2^-23 (1.2e-7), well under half a millionth (5e-7).
_FAST_FLOAT_LIMIT: Final = 1e9


class _Inexact(Exception):
    """A double from the fast decoder that may not carry the value's exact millionths."""


class InvalidEvent(Exception):
    """A message body that breaks the contract; `reason` is stable, `detail` names the field."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason: Reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class ContractOptions:
    """What a deployment adds to the contract: the dimension names it reads, sorted.

    Sorted, because the configuration `country,channel` is the configuration `channel,country`:
    an event's `dimensions` follow this order. Build it with `ContractOptions.of(names)`.
    """

    dimensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if list(self.dimensions) != sorted(set(self.dimensions)):
            raise ValueError("dimension names must be sorted and distinct")

    @classmethod
    def of(cls, names: Iterable[str]) -> ContractOptions:
        """The options for `names` (any order); ValueError naming a bad, repeated or extra one."""
        return cls(checked_dimension_names(names))


NO_DIMENSIONS: Final = ContractOptions()


@dataclass(frozen=True, slots=True)
class Event:
    """A validated business event; `value_micros` is the value in millionths, exactly.

    `dimensions` holds one value per dimension of the contract's options, in their order: the
    value's text, `ABSENT` or `OTHER`; empty when none are declared.
    """

    type: str
    value_micros: int
    occurred_at: datetime
    id: str | None = None
    dimensions: tuple[str, ...] = ()


def micros_to_decimal(micros: int) -> Decimal:
    """Exact decimal form of a quantity kept in millionths."""
    return Decimal(micros).scaleb(-6)


def micros_to_text(micros: int) -> str:
    """An exact quantity in millionths as plain decimal text: no exponent, no trailing zeros."""
    text = format(micros_to_decimal(micros), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def parse_event(
    body: bytes,
    max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    options: ContractOptions = NO_DIMENSIONS,
) -> Event:
    """Validate one message body; raise `InvalidEvent` for anything that breaks the contract."""
    if len(body) > max_bytes:
        raise InvalidEvent("too_large", f"body is {len(body)} bytes, the limit is {max_bytes}")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidEvent(
            "not_json", f"body is not UTF-8 ({exc.reason} at byte {exc.start})"
        ) from None
    return parse_event_text(text, options)


def parse_event_text(text: str, options: ContractOptions = NO_DIMENSIONS) -> Event:
    """Validate a body already decoded from UTF-8 (its size checked by the caller)."""
    data = _fast_decode(text)
    if data is not _UNDECODED:
        try:
            return _validate(data, "body", options)
        except _Inexact:
            pass  # a value with more digits than a double proves: read it exactly below
    return _validate(_exact_decode(text), "body", options)


_UNDECODED: Final = object()


def _fast_decode(text: str) -> Any:
    """orjson's reading of `text`, or `_UNDECODED` when the exact decoder must decide."""
    # Deep nesting: the exact decoder's limit is Python's recursion limit, orjson's is 1024.
    if text.count("[") + text.count("{") > _FAST_MAX_BRACKETS:
        return _UNDECODED
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        # Not JSON to orjson (NaN and Infinity included, which the exact decoder reads so that
        # 'value' can name them): the exact decoder gives the reason and its usual message.
        return _UNDECODED


def _exact_decode(text: str) -> Any:
    try:
        return _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise InvalidEvent(
            "not_json", f"body is not JSON: {exc.msg} at position {exc.pos}"
        ) from None
    except ValueError as exc:  # an integer literal longer than Python's digit limit
        raise InvalidEvent("not_json", f"body is not usable JSON: {exc}") from None
    except RecursionError:
        raise InvalidEvent("not_json", "body is nested too deeply to be an event") from None


def validate_event(
    data: Any, what: str = "body", options: ContractOptions = NO_DIMENSIONS
) -> Event:
    """Validate a JSON value decoded exactly (numbers as int or Decimal, as `json.loads` with
    `parse_float=Decimal` gives them); `what` names it in a rejection's detail."""
    return _validate(data, what, options)


def _validate(data: Any, what: str = "body", options: ContractOptions = NO_DIMENSIONS) -> Event:
    if not isinstance(data, dict):
        raise InvalidEvent("not_object", f"{what} must be a JSON object, got {_json_kind(data)}")
    names = options.dimensions
    # Positional: a keyword call of the dataclass costs more than the dimensions' check.
    if not names:  # the common case pays for one attribute read and nothing else
        return Event(
            _check_type(data), _check_value(data), _check_occurred_at(data), _check_id(data)
        )
    return Event(
        _check_type(data),
        _check_value(data),
        _check_occurred_at(data),
        _check_id(data),
        tuple([dimension_value(data.get(name)) for name in names]),
    )


def dimension_value(raw: Any) -> str:
    """The value a dimension takes from its field's JSON value (None for missing or null).

    Never an error: a value that breaks the rule (a fraction, an object, a list, a string too
    long, empty or with another character) is `OTHER`, so the event still counts.
    """
    kind = type(raw)
    if kind is str:
        return raw if DIMENSION_VALUE_PATTERN.fullmatch(raw) else OTHER
    if raw is None:
        return ABSENT
    if kind is bool:
        return "true" if raw else "false"
    if kind is int:
        return str(raw) if -MAX_DIMENSION_INTEGER <= raw <= MAX_DIMENSION_INTEGER else OTHER
    return OTHER  # a fraction or exponent (float or Decimal), an object, a list


def checked_dimension_names(names: Iterable[str]) -> tuple[str, ...]:
    """`names` sorted, each checked; ValueError saying which one is wrong and why."""
    given = list(names)
    for name in given:
        if not DIMENSION_NAME_PATTERN.fullmatch(name) or name.startswith("__"):
            raise ValueError(f"dimension {name[:60]!r} must be {DIMENSION_NAME_RULE}")
        if name in RESERVED_DIMENSION_NAMES:
            raise ValueError(f"dimension {name!r} is reserved; it must be {DIMENSION_NAME_RULE}")
    repeated = sorted({name for name in given if given.count(name) > 1})
    if repeated:
        raise ValueError(f"dimension {repeated[0]!r} is named twice")
    if len(given) > MAX_DIMENSIONS:
        raise ValueError(f"at most {MAX_DIMENSIONS} dimensions, got {len(given)}")
    return tuple(sorted(given))


def _json_kind(data: object) -> str:
    if data is None:
        return "null"
    if isinstance(data, bool):
        return "a boolean"
    if isinstance(data, int | float | Decimal):
        return "a number"
    if isinstance(data, str):
        return "a string"
    if isinstance(data, dict):
        return "an object"
    return "an array"


def _require(data: dict[str, Any], field: str) -> Any:
    if field not in data or data[field] is None:
        raise InvalidEvent("missing_field", f"required field '{field}' is missing")
    return data[field]


def _check_type(data: dict[str, Any]) -> str:
    value = _require(data, "type")
    if not isinstance(value, str):
        raise InvalidEvent("bad_type", f"'type' must be a string, got {_json_kind(value)}")
    if not TYPE_PATTERN.fullmatch(value):
        raise InvalidEvent(
            "bad_type",
            f"'type' {value[:80]!r} must be {TYPE_RULE}",
        )
    return value


def _check_value(data: dict[str, Any]) -> int:
    value = _require(data, "value")
    if type(value) is float:  # only from the fast decoder
        return _float_micros(value)
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise InvalidEvent("bad_value", f"'value' must be a number, got {_json_kind(value)}")
    if isinstance(value, int):  # the common case, and exact without any rounding
        if abs(value) > MAX_ABS_VALUE:
            raise InvalidEvent("bad_value", "'value' must be within -1e12..1e12")
        return value * MICROS_PER_UNIT
    amount = value
    if not amount.is_finite():
        raise InvalidEvent("bad_value", f"'value' must be finite, got {amount}")
    if abs(amount) > MAX_ABS_VALUE:
        raise InvalidEvent("bad_value", "'value' must be within -1e12..1e12")
    try:
        return int(amount.quantize(_SIX_PLACES, rounding=ROUND_HALF_EVEN).scaleb(6))
    except InvalidOperation:  # pragma: no cover - bounded above, so quantize cannot overflow
        raise InvalidEvent("bad_value", "'value' cannot be represented") from None


def _float_micros(value: float) -> int:
    """The exact millionths of the JSON number `value` was read from; `_Inexact` if unprovable.

    The double d is the source number S correctly rounded, and repr(d) = R is the shortest decimal
    that reads back as d: each is within half an ulp of d, so |S - R| <= ulp(d) <= 1.2e-7 below
    1e9. When R has at most six decimals it is a whole number of millionths, 5e-7 from every
    halfway point, so S rounds half-even to six places to exactly R, however many digits S had.
    """
    if not -_FAST_FLOAT_LIMIT < value < _FAST_FLOAT_LIMIT:
        raise _Inexact
    whole, dot, frac = repr(value).partition(".")
    if not dot or len(frac) > 6 or "e" in frac:  # more than six decimals, or exponent form
        raise _Inexact
    return int(whole + frac.ljust(6, "0"))


# 'YYYY-MM-DD HH:MM:SS' and ISO 8601 with 'T', optional fraction and 'Z' or offset. The regex
# checks the shape, fromisoformat (in C, 40x faster than strptime) checks the calendar.
_ISO_SHAPE: Final = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(Z|[+-]\d{2}:\d{2})?"
)
_US_SHAPE: Final = re.compile(r"(\d{2})/(\d{2})/(\d{4}) (\d{2}):(\d{2})")


def parse_timestamp(text: str) -> datetime:
    """Read one of the accepted timestamp forms as an aware UTC datetime; ValueError otherwise."""
    iso = _ISO_SHAPE.fullmatch(text)
    if iso:
        if iso.group(1) is None:
            # Naive means UTC; saying so in the text is ten times cheaper than datetime.replace.
            return datetime.fromisoformat(text + "+00:00")
        return datetime.fromisoformat(text).astimezone(UTC)
    us = _US_SHAPE.fullmatch(text)
    if us:
        month, day, year, hour, minute = (int(part) for part in us.groups())
        return datetime(year, month, day, hour, minute, tzinfo=UTC)
    raise ValueError(text)


def _check_occurred_at(data: dict[str, Any]) -> datetime:
    value = _require(data, "occurred_at")
    if not isinstance(value, str):
        raise InvalidEvent(
            "bad_timestamp", f"'occurred_at' must be a string, got {_json_kind(value)}"
        )
    try:
        moment = parse_timestamp(value)
    except (ValueError, OverflowError):
        raise InvalidEvent(
            "bad_timestamp",
            f"'occurred_at' {value[:40]!r} is not 'YYYY-MM-DD HH:MM:SS', ISO 8601 "
            "or 'MM/DD/YYYY HH:MM'",
        ) from None
    if not MIN_YEAR <= moment.year <= MAX_YEAR:
        raise InvalidEvent(
            "bad_timestamp", f"'occurred_at' year {moment.year} is outside {MIN_YEAR}-{MAX_YEAR}"
        )
    return moment


def _check_id(data: dict[str, Any]) -> str | None:
    value = data.get("id")
    if value is None:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= MAX_ID_LENGTH:
        raise InvalidEvent("bad_id", f"'id' must be a string of 1-{MAX_ID_LENGTH} characters")
    # JSON may escape a lone surrogate ("\ud800"), which no store can hold as text; it would make
    # every batch it is in fail to apply, again and again, so it is refused here, once.
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidEvent("bad_id", "'id' must be valid Unicode text") from None
    return value


def is_valid_type(name: str) -> bool:
    """Whether `name` could ever be an event type (used to answer 400 rather than 404)."""
    return TYPE_PATTERN.fullmatch(name) is not None


__all__ = [
    "ABSENT",
    "DEFAULT_MAX_MESSAGE_BYTES",
    "DIMENSION_NAME_RULE",
    "DIMENSION_VALUE_RULE",
    "MAX_DIMENSIONS",
    "NO_DIMENSIONS",
    "OTHER",
    "REASONS",
    "TYPE_PATTERN",
    "TYPE_RULE",
    "ContractOptions",
    "Event",
    "InvalidEvent",
    "Reason",
    "checked_dimension_names",
    "dimension_value",
    "is_valid_type",
    "micros_to_decimal",
    "micros_to_text",
    "parse_event",
    "parse_event_text",
    "parse_timestamp",
    "validate_event",
]
