"""The OpenAPI 3.1 description of the stats API, served at /openapi.json and checked by tests."""

from __future__ import annotations

from typing import Any

from exporter.events import TYPE_PATTERN, TYPE_RULE
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


def openapi_document(version: str) -> dict[str, Any]:
    """The document for this `version` of the API."""
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
                    "summary": "Totals of one event type.",
                    "parameters": [_TYPE_PARAMETER],
                    "responses": {
                        "200": _json(
                            "The type's totals.", {"$ref": "#/components/schemas/TypeStats"}
                        )
                        | {"headers": _SINCE_HEADER},
                        "400": _error("The name can never be an event type."),
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
