"""The OpenAPI 3.1 description of the stats API, served at /openapi.json and checked by tests."""

from __future__ import annotations

from typing import Any

from exporter.events import TYPE_PATTERN, TYPE_RULE
from exporter.web.breakdowns import MAX_LIMIT
from exporter.web.series import DEFAULT_STEP_SECONDS, MAX_STEP_SECONDS

# JSON Schema's `pattern` is a search, not a full match: anchor the event contract's own rule.
_TYPE_PATTERN = f"^{TYPE_PATTERN.pattern}$"


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_TYPE_PARAMETER: dict[str, Any] = {
    "name": "type",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": _TYPE_PATTERN},
    "example": "purchase",
    "description": f"An event type: {TYPE_RULE} (anything else is answered 400).",
}


def _moment(name: str, description: str, example: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": {"type": "string", "format": "date-time"},
        "example": example,
        "description": description + " RFC 3339 with an offset, e.g. " + example + ".",
    }


_STORE_DOWN = _error("The store is not reachable; retry later.")
_INTERNAL = _error("An unexpected failure; details are in the server log, never in the answer.")

_SUM_EXACT: dict[str, Any] = {
    "type": "string",
    "pattern": r"^-?[0-9]+(\.[0-9]{1,6})?$",
    "description": "Sum of values exactly, as a decimal string (six decimals at most).",
}

_BOUND: dict[str, Any] = {"type": ["number", "null"]}

_ESTIMATE: dict[str, Any] = {
    "type": ["object", "null"],
    "description": "Null while the type has no event.",
    "required": ["value", "lower", "upper"],
    "additionalProperties": False,
    "properties": {
        "value": {"type": "number", "description": "The estimate."},
        "lower": {
            **_BOUND,
            "description": "Lower bound of the bucket it lies in; null for the first bucket "
            "(0 is assumed there when its bound is positive, as Prometheus does).",
        },
        "upper": {
            **_BOUND,
            "description": "Upper bound of that bucket; null for +Inf (the estimate is then the "
            "highest finite bound).",
        },
    },
}

_COUNTING_SINCE = (
    "From when every counted event is in these totals: when they began (the first event, or "
    "a DELETE /stats), or when Redis was found to have lost what it held before; totals from "
    "a version before this one count from the first event after the upgrade at the latest."
)

_TYPE_STATS: dict[str, Any] = {
    "type": "object",
    "required": ["type", "count", "sum", "sum_exact", "mean", "last_applied", "counting_since"],
    "additionalProperties": False,
    "properties": {
        "buckets": {
            "type": "array",
            "description": "With EXPORTER_VALUE_BUCKETS set: events with a value at most each "
            "bound, cumulative, ending with +Inf (the count). While processors count with other "
            "bounds each count is a lower bound; +Inf is exact.",
            "items": {
                "type": "object",
                "required": ["le", "count"],
                "additionalProperties": False,
                "properties": {
                    "le": {"type": "string", "examples": ["10", "0.5", "+Inf"]},
                    "count": {"type": "integer", "minimum": 0},
                },
            },
        },
        "percentiles": {
            "type": "object",
            "description": "With buckets: p50, p90 and p99 estimated from them by linear "
            "interpolation within a bucket, as Prometheus's histogram_quantile.",
            "required": ["estimated_from_buckets", "p50", "p90", "p99"],
            "additionalProperties": False,
            "properties": {
                "estimated_from_buckets": {"const": True},
                "p50": _ESTIMATE,
                "p90": _ESTIMATE,
                "p99": _ESTIMATE,
            },
        },
        "folded": {
            "type": "object",
            "description": "With EXPORTER_DIMENSIONS set: events counted under __other__ per "
            "dimension (the value broke the rule or was past EXPORTER_MAX_DIMENSION_VALUES), "
            "and events past EXPORTER_MAX_DIMENSION_COMBINATIONS.",
            "required": ["dimensions", "combinations"],
            "additionalProperties": False,
            "properties": {
                "dimensions": {
                    "type": "object",
                    "additionalProperties": {"type": "integer", "minimum": 0},
                },
                "combinations": {"type": "integer", "minimum": 0},
            },
        },
        "type": {"type": "string", "pattern": _TYPE_PATTERN, "description": "The event type."},
        "count": {"type": "integer", "minimum": 0, "description": "Events counted."},
        "sum": {"type": "number", "description": "Sum of values, rounded once to a double."},
        "sum_exact": _SUM_EXACT,
        "mean": {
            "type": ["number", "null"],
            "description": "sum / count; null before the first event.",
        },
        "last_applied": {
            "type": ["string", "null"],
            "format": "date-time",
            "description": "When an event of this type was last counted (UTC).",
        },
        "counting_since": {
            "type": ["string", "null"],
            "format": "date-time",
            "description": _COUNTING_SINCE + " The same for every type (UTC).",
        },
    },
}

_TALLY: dict[str, Any] = {
    "type": "object",
    "required": ["count", "sum", "sum_exact"],
    "additionalProperties": False,
    "properties": {
        "count": {"type": "integer", "minimum": 0},
        "sum": {"type": "number"},
        "sum_exact": _SUM_EXACT,
    },
}

_BREAKDOWN: dict[str, Any] = {
    "type": "object",
    "required": ["type", "dimension", "since", "values", "cut", "unattributed"],
    "additionalProperties": False,
    "properties": {
        "type": {"type": "string", "pattern": _TYPE_PATTERN},
        "dimension": {"type": "string"},
        "since": {
            "type": ["string", "null"],
            "format": "date-time",
            "description": "When this type's first event with the dimension was counted.",
        },
        "values": {
            "type": "array",
            "description": "Every value, most events first, then by value; exact per admitted "
            "value. __absent__: the field was missing or null; __other__: the value broke the "
            "rule or came past EXPORTER_MAX_DIMENSION_VALUES.",
            "items": {
                "type": "object",
                "required": ["value", "count", "sum", "sum_exact", "mean"],
                "additionalProperties": False,
                "properties": {
                    "value": {"type": "string"},
                    "count": {"type": "integer", "minimum": 0},
                    "sum": {"type": "number"},
                    "sum_exact": _SUM_EXACT,
                    "mean": {"type": ["number", "null"]},
                },
            },
        },
        "cut": {
            "type": "integer",
            "minimum": 0,
            "description": "Values left out by `limit` (0 without it).",
        },
        "unattributed": {
            **_TALLY,
            "description": "The type's events not in any value: counted by processors that "
            "did not declare this dimension.",
        },
    },
}

_SINCE_HEADER: dict[str, Any] = {
    "Counting-Since": {
        "description": _COUNTING_SINCE + " Absent before the first event is counted.",
        "schema": {"type": "string", "format": "date-time"},
    }
}

_SERIES: dict[str, Any] = {
    "type": "object",
    "required": ["type", "from", "to", "step", "points"],
    "additionalProperties": False,
    "properties": {
        "type": {"type": "string", "pattern": _TYPE_PATTERN},
        "from": {
            "type": "string",
            "format": "date-time",
            "description": "Start of the first step: the asked `from` floored to its UTC minute.",
        },
        "to": {
            "type": "string",
            "format": "date-time",
            "description": "End of the last step (at or after the asked `to`).",
        },
        "step": {"type": "integer", "description": "Seconds per point."},
        "points": {
            "type": "array",
            "maxItems": 10_000,
            "description": "Every step of the range in order, empty ones as zeros.",
            "items": {
                "type": "object",
                "required": ["start", "count", "sum", "sum_exact"],
                "additionalProperties": False,
                "properties": {
                    "start": {"type": "string", "format": "date-time"},
                    "count": {
                        "type": "integer",
                        "minimum": 0,
                        "description": "Events that occurred in [start, start + step).",
                    },
                    "sum": {"type": "number", "description": "Their sum, rounded to a double."},
                    "sum_exact": _SUM_EXACT,
                },
            },
        },
    },
}

_REJECTED: dict[str, Any] = {
    "type": "object",
    "required": ["total", "reasons"],
    "additionalProperties": False,
    "properties": {
        "total": {"type": "integer", "minimum": 0},
        "reasons": {
            "type": "array",
            "description": "Most frequent first.",
            "items": {
                "type": "object",
                "required": ["reason", "count"],
                "additionalProperties": False,
                "properties": {
                    "reason": {"type": "string", "description": "As in the dead-letter queue."},
                    "count": {"type": "integer", "minimum": 0},
                },
            },
        },
    },
}

_ERROR: dict[str, Any] = {
    "type": "object",
    "description": "Every error of both HTTP servers, as application/json; charset=utf-8 (codes "
    "and statuses: docs/operations.md, 'HTTP errors and limits').",
    "required": ["error", "message"],
    "additionalProperties": False,
    "properties": {
        "error": {"type": "string", "description": "A stable snake_case code."},
        "message": {"type": "string", "description": "What went wrong, for a person."},
    },
}

_HEALTH: dict[str, Any] = {
    "type": "object",
    "required": ["status", "version", "checks"],
    "properties": {
        "status": {"enum": ["ok", "unavailable"]},
        "version": {"type": "string"},
        "checks": {
            "type": "object",
            "description": "Each dependency: ok; failing (down, retry); misconfigured (it "
            "refuses this server's configuration, such as a database number or password).",
            "additionalProperties": {"enum": ["ok", "failing", "misconfigured"]},
        },
        "problem": {
            "type": "string",
            "description": "With misconfigured: what to fix, never a secret.",
        },
        "detail": {
            "type": "string",
            "description": "With failing: what failed (no answer in time, not reachable).",
        },
    },
}


def _breakdown_parameters(dimensions: tuple[str, ...]) -> list[dict[str, Any]]:
    """`by` and `limit`, described only where dimensions are declared (elsewhere `by` is 400)."""
    if not dimensions:
        return []
    return [
        {
            "name": "by",
            "in": "query",
            "required": False,
            "schema": {"type": "string", "enum": list(dimensions)},
            "description": "A declared dimension: the type's totals per value of it instead.",
        },
        {
            "name": "limit",
            "in": "query",
            "required": False,
            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
            "description": "With `by`: only the most counted values (`cut` says how many more).",
        },
    ]


def openapi_document(version: str, dimensions: tuple[str, ...] = ()) -> dict[str, Any]:
    """The document for this `version` of the API, with the `dimensions` it declares."""
    type_answer: dict[str, Any] = {"$ref": "#/components/schemas/TypeStats"}
    if dimensions:
        type_answer = {
            "oneOf": [type_answer, {"$ref": "#/components/schemas/Breakdown"}],
        }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "sqs-metrics-exporter stats API",
            "version": version,
            "description": "Exact per-type totals of the events the processors counted, "
            "shared by every replica through the store.",
        },
        "paths": {
            "/stats": {
                "get": {
                    "operationId": "listStats",
                    "summary": "Totals of every event type, sorted by type.",
                    "responses": {
                        "200": _json(
                            "Every type's totals.",
                            {"type": "array", "items": {"$ref": "#/components/schemas/TypeStats"}},
                        )
                        | {"headers": _SINCE_HEADER},
                        "503": _STORE_DOWN,
                        "500": _INTERNAL,
                    },
                },
                "delete": {
                    "operationId": "resetStats",
                    "summary": "Forget all totals at once (atomic with respect to processors).",
                    "security": [{"adminToken": []}],
                    "responses": {
                        "204": {"description": "All totals were reset."},
                        "401": _error("The bearer token is missing or wrong."),
                        "403": _error("Reset is disabled: the server has no admin token."),
                        "503": _STORE_DOWN,
                        "500": _INTERNAL,
                    },
                },
            },
            "/stats/{type}": {
                "get": {
                    "operationId": "getStats",
                    "summary": "Totals of one event type, or with `by` per value of a dimension.",
                    "parameters": [_TYPE_PARAMETER, *_breakdown_parameters(dimensions)],
                    "responses": {
                        "200": _json("The type's totals, or its breakdown.", type_answer)
                        | {"headers": _SINCE_HEADER},
                        "400": _error(
                            "The name can never be an event type, or `by` names no declared "
                            "dimension (the message lists them), or a bad `limit`."
                        ),
                        "404": _error("No event of this type was counted (since the last reset)."),
                        "503": _STORE_DOWN,
                        "500": _INTERNAL,
                    },
                },
            },
            "/stats/{type}/series": {
                "get": {
                    "operationId": "getSeries",
                    "summary": "One type's count and sum per step, by when the events occurred.",
                    "description": "Events are bucketed by the UTC minute of `occurred_at`, "
                    "exactly once, and kept for EXPORTER_SERIES_RETENTION. `from` is floored to "
                    "its minute; the steps cover [from, to) and at most 10,000 are answered "
                    "(a longer range is a 400). Every parameter is optional: without any, the "
                    "last hour per minute, ending with the current minute (the live page's "
                    "chart). Each may be given once; this route takes no other parameter.",
                    "parameters": [
                        _TYPE_PARAMETER,
                        _moment(
                            "from",
                            "Start of the range (default: one hour before `to`).",
                            "2026-01-31T10:00:00Z",
                        ),
                        _moment(
                            "to",
                            "End of the range, exclusive (default: the end of the current "
                            "UTC minute).",
                            "2026-01-31T11:00:00Z",
                        ),
                        {
                            "name": "step",
                            "in": "query",
                            "required": False,
                            "schema": {
                                "type": "integer",
                                "minimum": 60,
                                "maximum": MAX_STEP_SECONDS,
                                "multipleOf": 60,
                                "default": DEFAULT_STEP_SECONDS,
                            },
                            "example": 60,
                            "description": "Seconds per point, a whole number of minutes.",
                        },
                    ],
                    "responses": {
                        "200": _json("The steps.", {"$ref": "#/components/schemas/Series"}),
                        "400": _error(
                            "A bad type name; or, all named in one message, a bad, repeated or "
                            "unknown parameter, `to` not after `from`, or more than 10,000 steps."
                        ),
                        "404": _error("No event of this type was counted (since the last reset)."),
                        "503": _STORE_DOWN,
                        "500": _INTERNAL,
                    },
                },
            },
            "/rejected": {
                "get": {
                    "operationId": "getRejected",
                    "summary": "Events dead-lettered since the last reset, by reason.",
                    "description": "Counted at least once: a reject whose deletion failed and "
                    "came back is counted again.",
                    "responses": {
                        "200": _json(
                            "Counts by reason.", {"$ref": "#/components/schemas/Rejected"}
                        ),
                        "503": _STORE_DOWN,
                        "500": _INTERNAL,
                    },
                },
            },
            "/health": {
                "get": {
                    "operationId": "health",
                    "summary": "Whether the API can reach the store.",
                    "responses": {
                        "200": _json("Healthy.", {"$ref": "#/components/schemas/Health"}),
                        "503": _json(
                            "A dependency is failing; `checks` names it.",
                            {"$ref": "#/components/schemas/Health"},
                        ),
                    },
                },
            },
            "/metrics": {
                "get": {
                    "operationId": "metrics",
                    "summary": "Prometheus metrics: requests, and global totals read per scrape.",
                    "responses": {
                        "200": {
                            "description": "Prometheus text exposition format.",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        },
                        "500": _INTERNAL,
                    },
                },
            },
            "/": {
                "get": {
                    "operationId": "page",
                    "summary": "The live page: totals, events per minute, rejects; refreshed every "
                    "few seconds.",
                    "responses": {
                        "200": {
                            "description": "A self-contained HTML page.",
                            "content": {"text/html": {"schema": {"type": "string"}}},
                        },
                    },
                },
            },
            "/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document.",
                    "responses": {"200": _json("OpenAPI 3.1.", {"type": "object"})},
                },
            },
        },
        "components": {
            "schemas": {
                "TypeStats": _TYPE_STATS,
                "Breakdown": _BREAKDOWN,
                "Series": _SERIES,
                "Rejected": _REJECTED,
                "Error": _ERROR,
                "Health": _HEALTH,
            },
            "securitySchemes": {
                "adminToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The value of EXPORTER_ADMIN_TOKEN.",
                }
            },
        },
    }
