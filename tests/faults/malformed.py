"""A corpus of malformed bodies, each with the reason the exporter must give for it."""

from __future__ import annotations

import json

_GOOD = {"type": "purchase", "value": 12.5, "occurred_at": "2020-10-06 10:02:05"}


def _with(**changes: object) -> str:
    body = {**_GOOD, **changes}
    return json.dumps({k: v for k, v in body.items() if v is not ...})


MALFORMED: dict[str, tuple[str, str]] = {
    "not_json_text": ("hello there", "not_json"),
    "not_json_truncated": ('{"type": "purchase", "value": 1', "not_json"),
    "empty_body": (" ", "not_json"),
    "deep_nesting": ("[" * 5000 + "]" * 5000, "not_json"),
    "deep_nesting_object": ('{"a":' * 3000 + "1" + "}" * 3000, "not_json"),
    "json_array": ("[1, 2, 3]", "not_object"),
    "json_null": ("null", "not_object"),
    "json_number": ("42", "not_object"),
    "json_string": ('"purchase"', "not_object"),
    "json_true": ("true", "not_object"),
    "value_nan": (
        '{"type": "purchase", "value": NaN, "occurred_at": "2020-10-06 10:02:05"}',
        "bad_value",
    ),
    "value_infinity": (
        '{"type": "purchase", "value": Infinity, "occurred_at": "2020-10-06 10:02:05"}',
        "bad_value",
    ),
    "value_minus_infinity": (
        '{"type": "purchase", "value": -Infinity, "occurred_at": "2020-10-06 10:02:05"}',
        "bad_value",
    ),
    "value_true": (_with(value=True), "bad_value"),
    "value_string": (_with(value="12.5"), "bad_value"),
    "value_letters": (_with(value="abcde"), "bad_value"),
    "value_huge": (_with(value=1e15), "bad_value"),
    "value_object": (_with(value={"amount": 1}), "bad_value"),
    "missing_type": (_with(type=...), "missing_field"),
    "missing_value": (_with(value=...), "missing_field"),
    "missing_occurred_at": (_with(occurred_at=...), "missing_field"),
    "null_value": (_with(value=None), "missing_field"),
    "timestamp_letters": (_with(occurred_at="qwerty"), "bad_timestamp"),
    "timestamp_month_13": (_with(occurred_at="2020-13-06 10:02:05"), "bad_timestamp"),
    "timestamp_feb_30": (_with(occurred_at="2021-02-30 10:02:05"), "bad_timestamp"),
    "timestamp_year_1900": (_with(occurred_at="1900-01-01 00:00:00"), "bad_timestamp"),
    "timestamp_epoch_number": (_with(occurred_at=1601978525), "bad_timestamp"),
    "type_empty": (_with(type=""), "bad_type"),
    "type_too_long": (_with(type="t" * 65), "bad_type"),
    "type_space": (_with(type="added to basket"), "bad_type"),
    "type_unicode": (_with(type="köp"), "bad_type"),
    "type_emoji": (_with(type="\U0001f6d2"), "bad_type"),
    "type_control_char": (_with(type="pur\u0007chase"), "bad_type"),
    "type_newline": (_with(type="purchase\n"), "bad_type"),
    "type_number": (_with(type=5), "bad_type"),
    "id_too_long": (_with(id="i" * 129), "bad_id"),
    "id_lone_surrogate": (
        '{"type": "purchase", "value": 1, "occurred_at": "2020-10-06 10:02:05", "id": "\\ud800x"}',
        "bad_id",
    ),
    "oversize_body": (_with(padding="x" * 70_000), "too_large"),
}
"""name -> (body, reason); every reason of the event contract that a body alone can cause."""
