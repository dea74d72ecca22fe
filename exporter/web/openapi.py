"""The OpenAPI 3.1 description of the stats API, served at /openapi.json and checked by tests."""

from __future__ import annotations

from typing import Any

from exporter.events import TYPE_PATTERN, TYPE_RULE

# JSON Schema's `pattern` is a search, not a full match: anchor the event contract's own rule.
_TYPE_PATTERN = f"^{TYPE_PATTERN.pattern}$"


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_STORE_DOWN = _error("The store is not reachable; retry later.")
_INTERNAL = _error("An unexpected failure; details are in the server log, never in the answer.")

_TYPE_STATS: dict[str, Any] = {
    "type": "object",
    "required": ["type", "count", "sum", "sum_exact", "mean", "last_applied"],
    "additionalProperties": False,
    "properties": {
        "type": {"type": "string", "pattern": _TYPE_PATTERN, "description": "The event type."},
        "count": {"type": "integer", "minimum": 0, "description": "Events counted."},
        "sum": {"type": "number", "description": "Sum of values, rounded once to a double."},
        "sum_exact": {
            "type": "string",
            "pattern": r"^-?[0-9]+(\.[0-9]{1,6})?$",
            "description": "Sum of values exactly, as a decimal string (six decimals at most).",
        },
        "mean": {
            "type": ["number", "null"],
            "description": "sum / count; null before the first event.",
        },
        "last_applied": {
            "type": ["string", "null"],
            "format": "date-time",
            "description": "When an event of this type was last counted (UTC).",
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
                        ),
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
                    "parameters": [
                        {
                            "name": "type",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string", "pattern": _TYPE_PATTERN},
                            "example": "purchase",
                            "description": f"An event type: {TYPE_RULE} "
                            "(anything else is answered 400).",
                        }
                    ],
                    "responses": {
                        "200": _json(
                            "The type's totals.", {"$ref": "#/components/schemas/TypeStats"}
                        ),
                        "400": _error("The name can never be an event type."),
                        "404": _error("No event of this type was counted (since the last reset)."),
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
                    "summary": "The live page: totals and rates, refreshed every two seconds.",
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
            "schemas": {"TypeStats": _TYPE_STATS, "Error": _ERROR, "Health": _HEALTH},
            "securitySchemes": {
                "adminToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The value of EXPORTER_ADMIN_TOKEN.",
                }
            },
        },
    }
