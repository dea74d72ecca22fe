"""`GET /stats/{type}/series` from a real `exporter api` process, as a user's first call would."""

from __future__ import annotations

import json
import signal

from tests.integration.cli.test_cli_api import api_over
from tests.integration.web.api_support import event
from tests.servers import RedisServer


async def test_the_series_answers_without_parameters_and_names_every_problem(
    redis_server: RedisServer,
) -> None:
    """`/stats/purchase/series` alone answers the last hour per minute, holding the purchases just
    counted; a query with a repeated `from` and a bad `step` is one 400 naming both."""
    api = await api_over(redis_server.url, [event("purchase", "2.5")] * 3)
    try:
        status, body = api.get("/stats/purchase/series")
        bad_status, bad_body = api.get(
            "/stats/purchase/series?from=2026-01-31T10:00:00Z&from=2026-01-31T11:00:00Z&step=90"
        )
    finally:
        code, stderr = api.finish(signal.SIGTERM)
    assert code == 0, stderr
    assert status == 200, body
    series = json.loads(body)
    assert (series["step"], len(series["points"])) == (60, 60)
    assert sum(point["count"] for point in series["points"]) == 3
    assert sum(float(point["sum_exact"]) for point in series["points"]) == 7.5
    assert bad_status == 400
    error = json.loads(bad_body)
    assert error["error"] == "invalid_query"
    assert "'from' is given 2 times; give it once." in error["message"]
    assert "'step' must be a multiple of 60" in error["message"]
