"""HTTP probes of the running stack, and polling with deadlines (no fixed sleeps)."""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

import pytest

from tests.stack.engine import seconds

API = "http://127.0.0.1:8000"
PROMETHEUS = "http://127.0.0.1:9090"
POLL_SECONDS = 1.0

T = TypeVar("T")

# A snapshot of /stats: type -> (count, exact sum).
Totals = dict[str, tuple[int, Decimal]]


def wait_for(what: str, probe: Callable[[], tuple[bool, T]], base_seconds: float) -> T:
    """Poll `probe` until it says done, or fail naming `what` and the last thing it saw.

    `probe` returns (done, observation); errors of the probe count as "not yet" until the deadline.
    """
    deadline = time.monotonic() + seconds(base_seconds)
    last: object = "nothing (the probe never answered)"
    while True:
        try:
            done, observation = probe()
        except (OSError, ValueError, KeyError) as exc:
            last = f"{type(exc).__name__}: {exc}"
        else:
            if done:
                return observation
            last = observation
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {seconds(base_seconds):.0f} s; last seen: {last}")
        time.sleep(POLL_SECONDS)


def get_json(url: str, timeout: float = 5) -> Any:
    """GET a JSON document; HTTP errors raise."""
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback only
        return json.load(response)


def stats() -> Totals:
    """The API's /stats as exact totals per type."""
    return {
        row["type"]: (int(row["count"]), Decimal(row["sum_exact"]))
        for row in get_json(f"{API}/stats")
    }


def prometheus(path: str, **params: str) -> Any:
    """The `data` of a Prometheus HTTP API answer."""
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    answer = get_json(f"{PROMETHEUS}/api/v1/{path}{query}")
    if answer.get("status") != "success":
        raise ValueError(f"Prometheus answered {answer}")
    return answer["data"]


def instant(query: str) -> dict[str, float]:
    """An instant query, as {value of the `type` label (or ''): value}."""
    return {
        sample["metric"].get("type", ""): float(sample["value"][1])
        for sample in prometheus("query", query=query)["result"]
    }


def targets() -> list[dict[str, Any]]:
    """Prometheus's active scrape targets."""
    active: list[dict[str, Any]] = prometheus("targets", state="active")["activeTargets"]
    return active


def port_is_free(port: int) -> bool:
    """Whether nothing accepts connections on the loopback port."""
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) != 0
