"""Benchmark 6 on several versions of the exporter, alternated round by round in one session.

    uv run python -m tests.perf.compare_sqs --pollers 4 32 --rounds 3 /tmp/before /tmp/after

Each TREE is a directory holding an `exporter/` package (e.g. `git archive <commit> exporter`
unpacked); the processor of each is started with that tree first on its PYTHONPATH. Every round
measures the bare boto3 loop once, then each tree's processor, on one SQS stand-in and one Redis,
so that each ratio compares runs a few seconds apart (decision 0006). Run it from outside the
project directory, so that the interpreter's own directory does not shadow the trees.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from tests.perf.bench_sqs_client import Sample, StandInServer, run_bare, run_processor
from tests.servers import AWS_TEST_ENV, RedisServer


def _summary(tree: str, pollers: int, rows: list[dict[str, Any]]) -> dict[str, Any]:
    def spread(key: str) -> dict[str, float]:
        values = [row[key] for row in rows]
        return {"median": statistics.median(values), "min": min(values), "max": max(values)}

    return {
        "summary": tree,
        "pollers": pollers,
        "rounds": len(rows),
        "ours_cpu_us_per_message": spread("ours_cpu_us_per_message"),
        "ours_messages_per_s": spread("ours_messages_per_s"),
        "cpu_share": spread("cpu_share"),
        "rate_ratio": spread("rate_ratio"),
    }


def _row(tree: str, pollers: int, ours: Sample, bare: Sample) -> dict[str, Any]:
    return {
        "tree": tree,
        "pollers": pollers,
        "load_average_1m": round(os.getloadavg()[0], 2),
        "ours_messages_per_s": round(ours.rate),
        "ours_cpu_us_per_message": round(ours.cpu_us_per_message, 1),
        "baseline_messages_per_s": round(bare.rate),
        "baseline_cpu_us_per_message": round(bare.cpu_us_per_message, 1),
        "cpu_share": round(ours.cpu_us_per_message / max(bare.cpu_us_per_message, 1e-9), 3),
        "rate_ratio": round(ours.rate / max(bare.rate, 1e-9), 2),
    }


def compare(trees: list[str], pollers: list[int], rounds: int, timing: tuple[float, float]) -> None:
    """Print one JSON line per measurement, then one summary line per tree and concurrency."""
    inherited = os.environ.get("PYTHONPATH", "")
    project = str(Path(__file__).resolve().parents[2])
    rows: dict[tuple[str, int], list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="exporter-compare-") as workdir:
        redis = RedisServer(Path(workdir) / "redis")
        redis.start()
        standin = StandInServer()
        standin.start()
        try:
            for _ in range(rounds):
                for count in pollers:
                    bare = run_bare(standin, Path(workdir), count, timing)
                    for tree in trees:
                        # The tree's exporter first, the benchmark's own modules after it.
                        path = [str(Path(tree).resolve()), project, inherited]
                        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in path if p)
                        ours, _ready = run_processor(
                            redis.url, standin, Path(workdir), count, timing
                        )
                        row = _row(tree, count, ours, bare)
                        rows.setdefault((tree, count), []).append(row)
                        print(json.dumps(row), flush=True)
        finally:
            os.environ["PYTHONPATH"] = inherited
            standin.stop()
            redis.stop()
    for (tree, count), measured in rows.items():
        print(json.dumps(_summary(tree, count, measured)), flush=True)


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments and compare."""
    parser = argparse.ArgumentParser(prog="python -m tests.perf.compare_sqs", description=__doc__)
    parser.add_argument("trees", nargs="+", help="directories that each hold an exporter/")
    parser.add_argument("--pollers", nargs="+", type=int, default=[32])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before measuring")
    parser.add_argument("--seconds", type=float, default=8.0, help="seconds measured")
    args = parser.parse_args(argv)
    for tree in args.trees:
        if not (Path(tree) / "exporter" / "__init__.py").is_file():
            parser.error(f"{tree} holds no exporter/ package")
    os.environ.update(AWS_TEST_ENV)
    compare(args.trees, args.pollers, args.rounds, (args.warmup, args.seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
