"""Smoke test of the benchmarks: every one runs in its tiny `--quick` size, so none can rot.

No timing assertions: only the shape of the JSON, and that both sides of each comparison did real
work (events counted, messages deleted, requests answered).
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from tests.perf.__main__ import NAMES
from tests.servers import require_binary

Results = dict[str, dict[str, Any]]


@pytest.fixture(name="results", scope="module")
def fixture_results() -> Results:
    """One quick run of every benchmark, as the documented command runs them."""
    require_binary("redis-server")
    done = subprocess.run(
        [sys.executable, "-m", "tests.perf", "--quick"],
        capture_output=True,
        text=True,
        timeout=420,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    header, *benchmarks = lines
    assert header["quick"] is True
    assert header["benchmarks"] == list(NAMES)
    assert header["machine"]["cpus"] >= 1
    assert header["redis"]
    return {result["benchmark"]: result for result in benchmarks}


def _common(result: dict[str, Any]) -> None:
    assert isinstance(result["target"], str)
    assert isinstance(result["target_met"], bool)
    assert "ratio" in result
    assert "load_average_1m" in result


def test_every_benchmark_prints_one_object(results: Results) -> None:
    """Each benchmark prints exactly one JSON object with a ratio and its target."""
    assert sorted(results) == sorted(
        [
            "pipeline",
            "store_ceiling",
            "end_to_end",
            "http",
            "memory",
            "sqs_client",
            "startup",
            "cluster",
            "envelopes",
            "metrics_scrape",
        ]
    )
    for result in results.values():
        _common(result)


def test_pipeline_both_sides_counted_every_event(results: Results) -> None:
    """Ours applied and deleted every message; the baseline counted every one of its share."""
    result = results["pipeline"]
    total = result["events"] + result["batch_size"]  # the warm-up batch is not timed
    assert result["ours_events_applied"] == total
    assert result["ours_messages_deleted"] == total
    assert 0 < result["ours_store_calls"] <= total // result["batch_size"]
    assert result["baseline_events_counted"] == result["baseline_events"] > 0
    assert result["ours_events_per_s"] > 0
    assert result["baseline_events_per_s"] > 0
    assert result["ratio"] > 0


def test_store_ceiling_measured_script_calls(results: Results) -> None:
    """The store benchmark saw Redis run the script, per call size, and compared the pipeline."""
    result = results["store_ceiling"]
    for size in result["by_batch_size"]:
        assert size["script_calls"] == result["events_per_size"] // size["batch_size"]
        assert size["redis_usec_per_event"] > 0
    assert result["ceiling_events_per_s"] > 0
    assert result["pipeline_events_per_s"] == results["pipeline"]["ours_events_per_s"]
    assert result["ratio"] > 0


def test_store_and_pipeline_measured_buckets_on_and_off(results: Results) -> None:
    """Both benchmarks ran with event-time buckets and without, and compared Redis's time."""
    costs = results["store_ceiling"]["series_cost"]
    assert {cost["traffic"] for cost in costs} == {"live", "backlog over 3600 s"}
    assert all(cost["ratio"] > 0 for cost in costs)
    assert isinstance(results["store_ceiling"]["series_target_met"], bool)
    series = results["pipeline"]["series"]
    assert series["ours_events_per_s_without_series"] > 0
    assert series["redis_ratio"] > 0


def test_pipeline_measured_dimensions_and_buckets(results: Results) -> None:
    """The pipeline ran every dimension and bucket configuration and compared their CPU."""
    cost = results["pipeline"]["dimensions_and_buckets"]
    assert set(cost["cpu_us_per_event"]) == {"none", "two_dimensions", "buckets_off"}
    assert all(value > 0 for value in cost["cpu_us_per_event"].values())
    assert cost["two_dimensions_ratio"] > 0
    assert cost["buckets_on_ratio"] > 0


def test_metrics_scrape_saw_every_series_of_each_size(results: Results) -> None:
    """Each size's /metrics carried the series it was built with."""
    result = results["metrics_scrape"]
    for size, figures in result["sizes"].items():
        assert figures["series"] == int(size)
        assert figures["scrape_ms"] > 0
    assert result["ratio"] > 0


def test_end_to_end_both_loops_drained_their_queue(results: Results) -> None:
    """Through moto our processor counted every message exactly once; the bare loop ran too."""
    result = results["end_to_end"]
    # moto may hand one message to two concurrent receives: deleted twice, counted once.
    assert result["ours_messages_deleted"] >= result["messages_per_side"] > 0
    assert result["ours_events_counted"] == result["messages_per_side"]
    assert result["ours_messages_per_s"] > 0
    assert result["baseline_messages_per_s"] > 0


def test_http_every_endpoint_answered(results: Results) -> None:
    """/stats, /metrics and the static handler all answered requests, none with an error."""
    result = results["http"]
    assert set(result["requests"]) == {"/stats", "/metrics", "static"}
    assert all(count > 0 for count in result["requests"].values())
    assert result["non_200"] == 0
    assert set(result["ratio"]) == {"stats", "metrics"}


def test_memory_figures_come_from_real_work(results: Results) -> None:
    """The processor process counted every event and exited 0; Redis memory was sampled."""
    result = results["memory"]
    rss = result["processor_rss"]
    assert rss["exit_code"] == 0
    assert rss["events_counted"] > 0
    assert 0 < rss["idle_mb"] <= rss["peak_mb"]
    core = result["processor_rss_full_speed"]
    assert core["events"] >= 2_000
    assert 0 < core["idle_mb"] <= core["peak_mb"]
    assert result["redis_identity"]["bytes_per_identity"] > 0
    assert result["redis_identity"]["memory_usage_of_one_key"] > 0
    flat = result["redis_flat"]
    assert all(peak > 0 for peak in flat["peak_used_memory_per_window"])
    assert flat["events_sent"] > 0


def test_sqs_client_both_consumers_deleted_messages(results: Results) -> None:
    """On the stand-in, the processor and the bare boto3 loop both deleted messages and used CPU."""
    result = results["sqs_client"]
    assert [row["pollers"] for row in result["by_concurrency"]] == [4, 32]
    for row in result["by_concurrency"]:
        assert row["ours_messages"] > 0
        assert row["baseline_messages"] > 0
        assert row["ours_cpu_us_per_message"] >= 0
        assert row["baseline_cpu_us_per_message"] >= 0
    assert result["unsigned_requests"] == 0


def test_startup_measured_version_and_readiness(results: Results) -> None:
    """`exporter --version` ran and a processor became ready; both timed against the interpreter."""
    result = results["startup"]
    assert result["interpreter_s"] > 0
    assert result["version_s"] > 0
    assert result["processor_ready_s"] > 0


def test_cluster_measured_every_master(results: Results) -> None:
    """The cluster benchmark read script time from all three masters, for one and three shards,
    and timed a read for 1, 3 and 16 shards."""
    result = results["cluster"]
    for size in result["by_batch_size"]:
        one, three = size["one_shard"], size["three_shards"]
        assert len(one["redis_usec_per_event_by_node"]) == 3
        assert sum(v > 0 for v in one["redis_usec_per_event_by_node"].values()) == 1
        assert all(v > 0 for v in three["redis_usec_per_event_by_node"].values())
        assert size["busiest_share"] > 0
    assert sorted(result["snapshot_usec_100_types_by_shards"]) == ["1", "16", "3"]


def test_envelopes_measured_every_shape_and_counted_every_event(results: Results) -> None:
    """The envelope benchmark timed the parse step of bare, SNS and EventBridge bodies against
    the contract, and ran the core with unwrapping off and on without rejecting any body."""
    result = results["envelopes"]
    assert set(result["parse_us_per_body"]) == {"contract", "bare", "sns", "eventbridge"}
    assert all(value > 0 for value in result["parse_us_per_body"].values())
    assert set(result["core_events_per_s"]) == {"unwrap_off", "unwrap_on", "sns"}
    assert result["core_dead_lettered"] == 0
