"""/openapi.json describes every route, real responses match it, and fuzzing finds no 5xx."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]  # no stubs in use
from openapi_spec_validator import validate as validate_openapi
from prometheus_client import CollectorRegistry

from exporter.events import ABSENT, OTHER, Event
from exporter.store.detail import CountingConfig
from exporter.store.memory import MemoryStore
from exporter.store.redis import RedisStore
from exporter.web import make_app
from tests.integration.web.api_support import TOKEN, add, api_client, event, redis_store
from tests.servers import free_port

Client = TestClient[web.Request, web.Application]
SERIES = "/stats/{type}/series"
RANGE = "from=2026-01-01T10:00:00Z&to=2026-01-01T11:00:00Z&step=60"
# `from`, `to` and `step` are each valid alone, but together may span more than 10,000 steps or
# end before they start: a 400 that no schema can foresee. For this operation only, schemathesis
# may count a 400 to well-formed parameters as acceptance. Schemathesis's warning about many
# such answers is project-wide only; every other operation takes no query parameter at all.
SCHEMATHESIS_CONFIG = """
warnings.display = ["missing_auth", "missing_test_data", "base_url_mismatch",
                    "missing_deserializer", "unsupported_regex", "unresolvable_reference"]

[[operations]]
include-operation-id = "getSeries"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "404", "5xx"]
"""


@pytest.fixture(name="store")
async def fixture_store(store: RedisStore) -> RedisStore:
    """A Redis store of the test's own, holding two types."""
    await add(store, [event("purchase", "42.42"), event("pageview", 1)])
    return store


async def fetch_document(client: Client) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status == 200
    document: dict[str, Any] = await response.json()
    return document


async def check_against_document(
    client: Client, document: dict[str, Any], method: str, path: str, template: str, **kw: Any
) -> int:
    """Call the API and check status, media type and JSON body against the served document."""
    response = await client.request(method, path, **kw)
    operation = document["paths"][template][method.lower()]
    assert str(response.status) in operation["responses"], (method, path, response.status)
    documented = operation["responses"][str(response.status)]
    content = documented.get("content")
    if content is None:
        assert await response.read() == b""
        return response.status
    assert response.content_type in content, (path, response.content_type)
    if response.content_type == "application/json":
        schema = {"components": document["components"], **content["application/json"]["schema"]}
        validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
        errors = [e.message for e in validator.iter_errors(await response.json())]
        assert not errors, (method, path, errors)
    return response.status


async def test_the_document_is_valid_openapi_3_1(store: RedisStore) -> None:
    """The served document passes the OpenAPI 3.1 specification validator."""
    async with api_client(store) as client:
        document = await fetch_document(client)
    assert document["openapi"].startswith("3.1")
    validate_openapi(document)


async def test_every_route_is_documented_and_nothing_else(store: RedisStore) -> None:
    """The app's routes (minus HEAD, which aiohttp adds for each GET) equal the document's."""
    app = make_app(store, CollectorRegistry(), admin_token=None)
    served = {
        (route.method.lower(), route.resource.canonical)
        for route in app.router.routes()
        if route.method != "HEAD" and route.resource is not None
    }
    async with api_client(store) as client:
        document = await fetch_document(client)
    described = {(method, path) for path, item in document["paths"].items() for method in item}
    assert served == described


async def test_real_responses_match_the_document(store: RedisStore) -> None:
    """Every status each route really answers has a documented schema that its body satisfies."""
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with api_client(store) as client:
        document = await fetch_document(client)
        calls = [
            ("GET", "/stats", "/stats", {}, 200),
            ("GET", "/stats/purchase", "/stats/{type}", {}, 200),
            ("GET", "/stats/refund", "/stats/{type}", {}, 404),
            ("GET", "/stats/-nope", "/stats/{type}", {}, 400),
            ("GET", f"/stats/purchase/series?{RANGE}", SERIES, {}, 200),
            ("GET", f"/stats/refund/series?{RANGE}", SERIES, {}, 404),
            ("GET", "/stats/purchase/series?step=61", SERIES, {}, 400),
            ("GET", "/stats/purchase/series", SERIES, {}, 200),
            ("GET", f"/stats/purchase/series?{RANGE}&from=2026-01-01T10:30:00Z", SERIES, {}, 400),
            ("GET", "/rejected", "/rejected", {}, 200),
            ("GET", "/health", "/health", {}, 200),
            ("GET", "/metrics", "/metrics", {}, 200),
            ("GET", "/", "/", {}, 200),
            ("GET", "/openapi.json", "/openapi.json", {}, 200),
            ("DELETE", "/stats", "/stats", {}, 401),
            ("DELETE", "/stats", "/stats", {"headers": auth}, 204),
            ("GET", "/stats", "/stats", {}, 200),
        ]
        for method, path, template, kw, expected in calls:
            status = await check_against_document(client, document, method, path, template, **kw)
            assert status == expected, (method, path)
    async with api_client(store, admin_token=None) as client:
        status = await check_against_document(client, document, "DELETE", "/stats", "/stats")
        assert status == 403


async def test_outage_responses_match_the_document() -> None:
    """503 answers while the store is down are documented and match their schemas."""
    dead = redis_store(f"redis://127.0.0.1:{free_port()}/0")
    try:
        async with api_client(dead) as client:
            document = await fetch_document(client)
            for path, template in [
                ("/stats", "/stats"),
                ("/stats/x", "/stats/{type}"),
                (f"/stats/x/series?{RANGE}", SERIES),
                ("/rejected", "/rejected"),
            ]:
                assert await check_against_document(client, document, "GET", path, template) == 503
            assert (
                await check_against_document(client, document, "GET", "/health", "/health") == 503
            )
    finally:
        await dead.close()


async def test_schemathesis_finds_no_server_error_or_schema_violation(
    store: RedisStore, tmp_path: Path
) -> None:
    """Schemathesis fuzzes every operation of the live app (bounded); every check passes."""
    await fuzz(make_app(store, CollectorRegistry(), admin_token=TOKEN), tmp_path)


async def test_schemathesis_with_dimensions_declared(tmp_path: Path) -> None:
    """The same fuzzing with dimensions declared: `by` and `limit` documented and answered."""
    store = MemoryStore(counting=CountingConfig(("channel", "country")))
    await store.apply(
        [
            ("msg:1", Event("purchase", 42_420_000, datetime.now(UTC), None, ("web", "NL"))),
            ("msg:2", Event("pageview", 1_000_000, datetime.now(UTC), None, (ABSENT, OTHER))),
        ]
    )
    await fuzz(make_app(store, CollectorRegistry(), admin_token=TOKEN), tmp_path)


async def test_breakdowns_match_the_document() -> None:
    """?by= answers (200, 400, 404) and the new keys of /stats match the served document."""
    store = MemoryStore(counting=CountingConfig(("country",)))
    await store.apply([("msg:1", Event("purchase", 1_000_000, datetime.now(UTC), None, ("NL",)))])
    async with api_client(store) as client:
        document = await fetch_document(client)
        for path, template, expected in [
            ("/stats/purchase?by=country", "/stats/{type}", 200),
            ("/stats/purchase?by=country&limit=1", "/stats/{type}", 200),
            ("/stats/purchase?by=city", "/stats/{type}", 400),
            ("/stats/refund?by=country", "/stats/{type}", 404),
            ("/stats/purchase", "/stats/{type}", 200),
            ("/stats", "/stats", 200),
        ]:
            status = await check_against_document(client, document, "GET", path, template)
            assert status == expected, path
    by = [p["name"] for p in document["paths"]["/stats/{type}"]["get"]["parameters"]]
    assert by == ["type", "by", "limit"]


async def fuzz(app: web.Application, tmp_path: Path) -> None:
    """Run schemathesis against `app` served on a free port; every check must pass."""
    server = TestServer(app, host="127.0.0.1", port=free_port())
    await server.start_server()
    config = tmp_path / "schemathesis.toml"
    config.write_text(SCHEMATHESIS_CONFIG)
    try:
        process = await asyncio.create_subprocess_exec(
            str(Path(sys.executable).parent / "schemathesis"),
            "--config-file", str(config),
            "run",
            str(server.make_url("/openapi.json")),
            "--checks", "all",
            "--max-examples", "40",
            "--seed", "20261126",
            "--workers", "1",
            "--suppress-health-check", "all",
            "--generation-database", "none",
            "--header", f"Authorization: Bearer {TOKEN}",
            cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        output, _ = await asyncio.wait_for(process.communicate(), timeout=120)
    finally:
        await server.close()
    text = output.decode(errors="replace")
    assert process.returncode == 0, text
    assert "No issues found" in text, text
