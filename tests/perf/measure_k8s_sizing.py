"""What one processor and one API replica use: the figures behind deploy/kubernetes' sizing.

Run: `uv run python -m tests.perf.measure_k8s_sizing` (about a minute, prints one JSON object).

The real `exporter processor` (default settings: 4 pollers) consumes the SQS stand-in
(tests/perf/sqs_standin.py: an endless queue of valid events) into a private redis-server, once
with every SQS call answered 20 ms late (a round trip to SQS in the same region, as in decision
0002) and once answered at once (the CPU-bound ceiling of one process). Over a measured interval:
messages deleted per second, CPU cores the process used (utime + stime from /proc), and its
resident memory sampled every 50 ms. Then the real `exporter api` serves `/stats` (100 types) and
`/metrics` under load from a second process: requests per second, CPU per request, and resident
memory idle and at peak. Not a benchmark (there is no baseline to beat): the Kubernetes requests,
limits and the autoscaler's target are derived from these figures in docs/kubernetes.md.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
import threading
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from exporter.events import Event
from tests.perf.bench_memory import rss_mb
from tests.perf.bench_sqs_client import (
    StandInServer,
    bytecode_env,
    cpu_seconds,
    measure,
    processor_env,
    start_processor,
    stop_process,
)
from tests.polling import wait_until
from tests.servers import RedisServer, free_port
from tests.store_support import redis_store

WARMUP_SECONDS: Final = 3.0
MEASURE_SECONDS: Final = 10.0
SQS_ROUND_TRIP_MS: Final = 20.0
API_TYPES: Final = 100
API_CONNECTIONS: Final = 16


class PeakRss:
    """Samples a process's resident memory every 50 ms in a thread; keeps the peak."""

    def __init__(self, pid: int) -> None:
        self._pid = pid
        self._stop = threading.Event()
        self.first = rss_mb(pid)
        self.peak = self.first
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            try:
                self.peak = max(self.peak, rss_mb(self._pid))
            except (OSError, RuntimeError):
                return

    def stop(self) -> float:
        """Stop sampling; the peak in MiB."""
        self._stop.set()
        self._thread.join(timeout=5)
        return self.peak


def processor(redis_url: str, workdir: Path, latency_ms: float) -> dict[str, Any]:
    """Rate, CPU cores and memory of one default processor against a stand-in `latency_ms` late."""
    standin = StandInServer(latency_ms)
    standin.start()
    try:
        env = processor_env(
            workdir,
            redis_url,
            standin.url,
            prefix=f"sizing-{uuid.uuid4().hex[:8]}",
            pollers=4,
            port=free_port(),
        )
        with (workdir / f"processor-{latency_ms:g}ms.log").open("wb") as log:
            process, _ = start_processor(env, log)
            try:
                rss = PeakRss(process.pid)
                sample = measure(process.pid, standin, WARMUP_SECONDS, MEASURE_SECONDS)
                peak = rss.stop()
            finally:
                stop_process(process)
    finally:
        standin.stop()
    return {
        "sqs_latency_ms": latency_ms,
        "pollers": 4,
        "messages_per_s": round(sample.rate),
        "cpu_cores": round(sample.cpu_seconds / sample.seconds, 3),
        "cpu_us_per_message": round(sample.cpu_us_per_message, 1),
        "rss_mib_at_start": round(rss.first, 1),
        "rss_mib_peak": round(peak, 1),
    }


async def _seed(redis_url: str, prefix: str) -> None:
    store = redis_store(redis_url, prefix=prefix)
    when = datetime.now(UTC)
    await store.apply(
        [(f"msg:size-{n}", Event(f"type-{n:03d}", 1_250_000 * n, when)) for n in range(API_TYPES)]
    )
    await store.close()


def _load(url: str, seconds: float) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "tests.perf.http_load", url, str(seconds), str(API_CONNECTIONS)],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    ).stdout
    result: dict[str, Any] = json.loads(out)
    return result


def _answers(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=1) as reply:  # noqa: S310 - loopback
        return bool(reply.status == 200)


def api(redis_url: str, workdir: Path) -> dict[str, Any]:
    """Requests/s, CPU per request and memory of one `exporter api` under /stats, /metrics load."""
    prefix = f"sizing-api-{uuid.uuid4().hex[:8]}"
    asyncio.run(_seed(redis_url, prefix))
    port = free_port()
    env = {
        **bytecode_env(workdir),
        "REDIS_URL": redis_url,
        "EXPORTER_REDIS_PREFIX": prefix,
        "EXPORTER_API_HOST": "127.0.0.1",
        "EXPORTER_API_PORT": str(port),
        "EXPORTER_LOG_LEVEL": "WARNING",
    }
    base = f"http://127.0.0.1:{port}"
    with (workdir / "api.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "exporter", "api"], env=env, stdout=log, stderr=log
        )
        try:
            wait_until(lambda: _answers(f"{base}/health"), timeout=60, message="api healthy")
            idle = rss_mb(process.pid)
            results: dict[str, Any] = {"rss_mib_idle": round(idle, 1)}
            rss = PeakRss(process.pid)
            for path in ("/stats", "/metrics"):
                cpu = cpu_seconds(process.pid)
                load = _load(base + path, MEASURE_SECONDS)
                used = cpu_seconds(process.pid) - cpu
                if load["non_200"]:
                    raise RuntimeError(f"{path}: {load['non_200']} answers were not 200")
                results[path] = {
                    "requests_per_s": round(load["requests"] / load["seconds"]),
                    "cpu_us_per_request": round(1e6 * used / max(load["requests"], 1), 1),
                    "cpu_cores": round(used / load["seconds"], 3),
                }
            results["rss_mib_peak"] = round(rss.stop(), 1)
        finally:
            stop_process(process)
    return results


def main() -> int:
    """Measure and print one JSON object."""
    with tempfile.TemporaryDirectory(prefix="k8s-sizing-") as tmp:
        workdir = Path(tmp)
        redis = RedisServer(workdir / "redis")
        redis.start()
        try:
            figures = {
                "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "processor": [
                    processor(redis.url, workdir, SQS_ROUND_TRIP_MS),
                    processor(redis.url, workdir, 0.0),
                ],
                "api": api(redis.url, workdir),
                "load_average_1m": round(float(Path("/proc/loadavg").read_text().split()[0]), 2),
            }
        finally:
            redis.stop()
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
