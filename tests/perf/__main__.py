"""Run the benchmarks: `uv run python -m tests.perf [--quick] [names...]`.

Starts its own redis-server (and moto server when a benchmark needs SQS) on free ports, never
the machine's 6379, runs each named benchmark (all by default) and prints one JSON object per
benchmark on its own line: the figures, the baseline measured in the same run, and their ratio.
`--quick` runs tiny sizes, for the smoke test; its figures mean nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from tests.perf.bench_cluster import cluster_shards
from tests.perf.bench_e2e import end_to_end
from tests.perf.bench_envelopes import envelopes
from tests.perf.bench_http import http
from tests.perf.bench_memory import memory
from tests.perf.bench_metrics import metrics_scrape
from tests.perf.bench_pipeline import pipeline
from tests.perf.bench_sqs_client import sqs_client_cost, startup
from tests.perf.bench_store import store_ceiling
from tests.perf.bodies import make_bodies
from tests.servers import AWS_TEST_ENV, MotoServer, RedisServer

NAMES = (
    "pipeline",
    "store",
    "e2e",
    "http",
    "memory",
    "sqs_client",
    "startup",
    "cluster",
    "envelopes",
    "metrics",
)


@dataclass(frozen=True, slots=True)
class Sizes:
    """How much work each benchmark does."""

    pipeline_events: int
    store_events: int
    e2e_wave: int
    e2e_waves: int
    http_seconds: float
    http_loader: str
    rss_wave: int
    rss_waves: int
    identities: int
    flat_window_seconds: int
    flat_windows: int
    flat_rate: int
    core_events: int
    sqs_concurrencies: tuple[int, ...]
    sqs_warmup_seconds: float
    sqs_seconds: float
    sqs_rounds: int
    startup_repeats: int
    cluster_events: int
    series_rounds: int
    envelope_events: int
    envelope_rounds: int
    dimension_events: int
    dimension_rounds: int
    metrics_series: tuple[int, ...]
    metrics_scrapes: int


FULL = Sizes(
    pipeline_events=100_000,
    store_events=50_000,
    e2e_wave=200,
    e2e_waves=6,
    http_seconds=5,
    http_loader="auto",
    rss_wave=500,
    rss_waves=4,
    identities=100_000,
    flat_window_seconds=3,
    flat_windows=5,
    flat_rate=10_000,
    core_events=200_000,
    sqs_concurrencies=(4, 32),
    sqs_warmup_seconds=2,
    sqs_seconds=8,
    sqs_rounds=3,
    startup_repeats=3,
    cluster_events=30_000,
    series_rounds=3,
    envelope_events=20_000,
    envelope_rounds=5,
    dimension_events=20_000,
    dimension_rounds=5,
    metrics_series=(100, 10_000),
    metrics_scrapes=5,
)
QUICK = Sizes(
    pipeline_events=2_000,
    store_events=1_000,
    e2e_wave=30,
    e2e_waves=1,
    http_seconds=0.5,
    http_loader="python",
    rss_wave=30,
    rss_waves=1,
    identities=2_000,
    flat_window_seconds=1,
    flat_windows=3,
    flat_rate=2_000,
    core_events=2_000,
    sqs_concurrencies=(4, 32),
    sqs_warmup_seconds=0.3,
    sqs_seconds=0.7,
    sqs_rounds=1,
    startup_repeats=1,
    cluster_events=400,
    series_rounds=1,
    envelope_events=200,
    envelope_rounds=1,
    dimension_events=200,
    dimension_rounds=1,
    metrics_series=(100, 1000),
    metrics_scrapes=1,
)


@dataclass
class Run:
    """Servers and sizes shared by the benchmarks of one run, and results so far."""

    redis_url: str
    moto: MotoServer | None
    workdir: Path
    sizes: Sizes
    results: dict[str, dict[str, Any]]

    @property
    def sqs_endpoint(self) -> str:
        """The moto server's URL (started only when a benchmark needs it)."""
        if self.moto is None:
            raise RuntimeError("this benchmark needs the moto server")
        return self.moto.url


async def _pipeline(run: Run) -> dict[str, Any]:
    sizes = run.sizes
    return await pipeline(
        run.redis_url,
        make_bodies(sizes.pipeline_events),
        dimension_bodies=make_bodies(sizes.dimension_events, dimensions=True),
        dimension_rounds=sizes.dimension_rounds,
    )


async def _store(run: Run) -> dict[str, Any]:
    if "pipeline" not in run.results:  # the ceiling is compared with this run's pipeline
        run.results["pipeline"] = await _pipeline(run)
    return await store_ceiling(
        run.redis_url,
        events=run.sizes.store_events,
        pipeline_events_per_s=run.results["pipeline"]["ours_events_per_s"],
        series_rounds=run.sizes.series_rounds,
    )


async def _e2e(run: Run) -> dict[str, Any]:
    bodies = make_bodies(run.sizes.e2e_wave)
    return await end_to_end(run.redis_url, run.sqs_endpoint, bodies, waves=run.sizes.e2e_waves)


async def _http(run: Run) -> dict[str, Any]:
    return await http(run.redis_url, seconds=run.sizes.http_seconds, loader=run.sizes.http_loader)


async def _memory(run: Run) -> dict[str, Any]:
    sizes = run.sizes
    return await memory(
        run.redis_url,
        run.sqs_endpoint,
        run.workdir,
        make_bodies(sizes.rss_wave),
        waves=sizes.rss_waves,
        identities=sizes.identities,
        window_seconds=sizes.flat_window_seconds,
        windows=sizes.flat_windows,
        rate=sizes.flat_rate,
        core_events=sizes.core_events,
    )


async def _sqs_client(run: Run) -> dict[str, Any]:
    sizes = run.sizes
    return await asyncio.to_thread(
        sqs_client_cost,
        run.redis_url,
        run.workdir,
        concurrencies=sizes.sqs_concurrencies,
        warmup=sizes.sqs_warmup_seconds,
        seconds=sizes.sqs_seconds,
        rounds=sizes.sqs_rounds,
    )


async def _startup(run: Run) -> dict[str, Any]:
    return await asyncio.to_thread(
        startup, run.redis_url, run.workdir, repeats=run.sizes.startup_repeats
    )


async def _cluster(run: Run) -> dict[str, Any]:
    full = run.sizes is FULL
    return await cluster_shards(
        run.workdir,
        events=run.sizes.cluster_events,
        batch_sizes=(10, 100, 1000) if full else (10, 100),
        reads=300 if full else 5,
        rounds_per_size=3 if full else 1,
    )


async def _envelopes(run: Run) -> dict[str, Any]:
    bodies = make_bodies(run.sizes.envelope_events)
    return await envelopes(run.redis_url, bodies, rounds=run.sizes.envelope_rounds)


async def _metrics(run: Run) -> dict[str, Any]:
    return await metrics_scrape(
        run.redis_url, series=run.sizes.metrics_series, scrapes=run.sizes.metrics_scrapes
    )


BENCHMARKS: dict[str, Callable[[Run], Awaitable[dict[str, Any]]]] = {
    "pipeline": _pipeline,
    "store": _store,
    "e2e": _e2e,
    "http": _http,
    "memory": _memory,
    "sqs_client": _sqs_client,
    "startup": _startup,
    "cluster": _cluster,
    "envelopes": _envelopes,
    "metrics": _metrics,
}
NEEDS_MOTO = {"e2e", "memory"}


def machine() -> dict[str, Any]:
    """What the figures were measured on; load average because the machine may be shared."""
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {"cpus": os.cpu_count(), "cpu": model, "python": platform.python_version()}


def _redis_version(url: str) -> str:
    client = redis.Redis.from_url(url)
    try:
        return str(client.info("server")["redis_version"])
    finally:
        client.close()


async def run_all(names: list[str], sizes: Sizes, workdir: Path) -> None:
    """Start the servers, run `names` in order, print one JSON line per benchmark."""
    redis_server = RedisServer(workdir / "redis")
    redis_server.start()
    moto = MotoServer() if NEEDS_MOTO & set(names) else None
    if moto is not None:
        moto.start()
    try:
        header = {"machine": machine(), "redis": _redis_version(redis_server.url)}
        print(json.dumps({**header, "quick": sizes is QUICK, "benchmarks": names}), flush=True)
        run = Run(redis_server.url, moto, workdir, sizes, {})
        for name in names:
            result = await BENCHMARKS[name](run)
            run.results[name] = result
            result["load_average_1m"] = round(os.getloadavg()[0], 2)
            print(json.dumps(result), flush=True)
    finally:
        if moto is not None:
            moto.stop()
        redis_server.stop()


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments and run."""
    parser = argparse.ArgumentParser(prog="python -m tests.perf", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test only)")
    parser.add_argument("names", nargs="*", help=f"benchmarks to run: {', '.join(NAMES)}")
    args = parser.parse_args(argv)
    unknown = set(args.names) - set(NAMES)
    if unknown:
        parser.error(f"unknown benchmark {', '.join(sorted(unknown))}; choose from {NAMES}")
    names = [name for name in NAMES if name in (args.names or NAMES)]
    os.environ.update(AWS_TEST_ENV)
    with tempfile.TemporaryDirectory(prefix="exporter-perf-") as workdir:
        asyncio.run(run_all(names, QUICK if args.quick else FULL, Path(workdir)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
