"""Live: a real Prometheus scrapes real processors and the API fed through SQS and Redis.

The repository's Prometheus config is adapted to local ports (static targets instead of DNS, a 1 s
scrape interval) and keeps its rule files. Then every PromQL expression of the dashboard and of the
alert rules runs through Prometheus' HTTP API: each must parse, and each panel query must return
data. Redis is killed and restarted once on purpose, so that the dependency-error views have data.
"""

from __future__ import annotations

import http.server
import json
import math
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.polling import wait_until
from tests.servers import (
    AWS_TEST_ENV,
    STARTUP_TIMEOUT_SECONDS,
    MotoServer,
    RedisServer,
    free_port,
    require_binary,
    start_process,
)
from tests.stack.files import ALERTS, PROMETHEUS_CONFIG, alert_rules, dashboard, dashboard_targets

RATE_INTERVAL = "15s"  # what Grafana's $__rate_interval becomes for a 1 s scrape, with margin
PANEL_TYPE = "purchase"  # one of the producer's default types
DIMENSIONS = ("channel", "country")  # declared by the processors and the API of the stack
PANEL_DIMENSION = "country"


@dataclass
class LiveStack:
    """The running stack: where Prometheus answers and which targets it scrapes."""

    prometheus_url: str
    processor_instances: list[str]
    api_instance: str
    spans_received: list[bytes] = field(default_factory=list)

    def query(self, promql: str) -> dict[str, Any]:
        """Run an instant query; the parsed JSON answer (status "error" for a bad expression)."""
        data = urllib.parse.urlencode({"query": promql}).encode()
        request = urllib.request.Request(f"{self.prometheus_url}/api/v1/query", data=data)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                answer: dict[str, Any] = json.load(response)
        except urllib.error.HTTPError as exc:  # 400 for a parse error, with a JSON body
            answer = json.load(exc)
        return answer

    def get(self, path: str) -> dict[str, Any]:
        """GET a Prometheus API path; the parsed JSON answer."""
        with urllib.request.urlopen(f"{self.prometheus_url}{path}", timeout=10) as response:  # noqa: S310
            answer: dict[str, Any] = json.load(response)
        return answer


class _Processes:
    """Subprocesses of the test, stopped in reverse order, with their output kept for failures."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.running: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = (self.logs / f"{name}.log").open("wb")
        process = start_process(args, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.running.append((name, process))
        return process

    def check_alive(self) -> None:
        for name, process in self.running:
            if process.poll() is not None:
                output = (self.logs / f"{name}.log").read_text(errors="replace")[-3000:]
                pytest.fail(f"{name} exited with {process.returncode}:\n{output}")

    def stop_all(self) -> None:
        for _name, process in reversed(self.running):
            if process.poll() is None:
                process.terminate()
        for _name, process in reversed(self.running):
            try:
                process.wait(timeout=25)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def _fetch(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:  # noqa: S310
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _start_otlp_sink(received: list[bytes]) -> tuple[http.server.ThreadingHTTPServer, int]:
    """A minimal OTLP/HTTP receiver: accepts span exports so processors record exemplars."""

    class Sink(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            """Quiet."""

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


def _prometheus_config(processors: list[str], api: str, prometheus: str) -> dict[str, Any]:
    """The repository's config with static local targets and a fast scrape, rules unchanged."""
    config: dict[str, Any] = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    config["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
    targets = {"processor": processors, "api": [api], "prometheus": [prometheus]}
    for job in config["scrape_configs"]:
        job.pop("dns_sd_configs", None)
        job["static_configs"] = [{"targets": targets.pop(job["job_name"])}]
    assert not targets, f"the repository config lost jobs {sorted(targets)}"
    return config


@pytest.fixture(name="live_stack", scope="module")
def fixture_live_stack(
    tmp_path_factory: pytest.TempPathFactory, moto_server: MotoServer
) -> Iterator[LiveStack]:
    """Two processors, the API, a producer and Prometheus, with one Redis outage behind them."""
    prometheus_binary = require_binary("prometheus")
    workdir = tmp_path_factory.mktemp("live-stack")
    redis = RedisServer(workdir / "redis", appendonly=True)
    redis.start()
    spans: list[bytes] = []
    sink, sink_port = _start_otlp_sink(spans)
    processes = _Processes(workdir)

    metrics_ports = [free_port(), free_port()]
    api_port, prometheus_port = free_port(), free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "EXPORTER_"))},
        **AWS_TEST_ENV,
        "AWS_ENDPOINT_URL": moto_server.url,
        "SQS_QUEUE_NAME": f"live-{uuid.uuid4().hex[:10]}",
        "EXPORTER_CREATE_QUEUES": "true",  # the test's queue is new: the processors create it
        "REDIS_URL": redis.url,
        "EXPORTER_REDIS_PREFIX": f"live{uuid.uuid4().hex[:8]}",
        "EXPORTER_LOG_FORMAT": "json",
        "EXPORTER_DIMENSIONS": ",".join(DIMENSIONS),
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink_port}",
        "OTEL_BSP_SCHEDULE_DELAY": "200",
    }
    exporter = [sys.executable, "-m", "exporter"]
    try:
        for index, port in enumerate(metrics_ports):
            processes.start(
                f"processor-{index}",
                [*exporter, "processor", "--metrics-host", "127.0.0.1", "--metrics-port", str(port),
                 "--sqs-wait-time-seconds", "1", "--queue-depth-interval-seconds", "0.5",
                 "--concurrency", "2", "--shutdown-timeout-seconds", "5"],
                env,
            )  # fmt: skip
        processes.start(
            "api",
            [*exporter, "api", "--api-host", "127.0.0.1", "--api-port", str(api_port)],
            {k: v for k, v in env.items() if not k.startswith("OTEL_")},
        )
        processes.start(
            "producer",
            [*exporter, "produce", "--count", "0", "--rate", "60", "--malformed-ratio", "0.2",
             "--with-ids", "--seed", "7", "--wait-for-queue", "30"],
            {k: v for k, v in env.items() if not k.startswith("OTEL_")},
        )  # fmt: skip

        config_dir = workdir / "prometheus"
        config_dir.mkdir()
        shutil.copy(ALERTS, config_dir / ALERTS.name)
        instances = [f"127.0.0.1:{port}" for port in metrics_ports]
        config = _prometheus_config(
            instances, f"127.0.0.1:{api_port}", f"127.0.0.1:{prometheus_port}"
        )
        (config_dir / "prometheus.yml").write_text(yaml.safe_dump(config))
        processes.start(
            "prometheus",
            [prometheus_binary, f"--config.file={config_dir / 'prometheus.yml'}",
             f"--storage.tsdb.path={workdir / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{prometheus_port}",
             "--enable-feature=exemplar-storage", "--log.level=warn"],
            env,
        )  # fmt: skip
        stack = LiveStack(
            f"http://127.0.0.1:{prometheus_port}", instances, f"127.0.0.1:{api_port}", spans
        )

        def metrics_of(port: int) -> str:
            processes.check_alive()
            return _fetch(f"http://127.0.0.1:{port}/metrics")[1]

        def processed(port: int) -> bool:
            return "exporter_events_processed_total{" in metrics_of(port)

        for port in metrics_ports:
            wait_until(
                partial(processed, port),
                timeout=STARTUP_TIMEOUT_SECONDS,
                message=f"events on :{port}",
            )
        wait_until(
            lambda: _fetch(f"{stack.prometheus_url}/-/ready")[0] == 200,
            timeout=STARTUP_TIMEOUT_SECONDS,
        )

        # A Redis outage while events keep coming: processors count it and recover by themselves.
        redis.kill()
        wait_until(
            lambda: (
                'exporter_dependency_errors_total{dependency="redis"'
                in metrics_of(metrics_ports[0])
            ),
            timeout=30,
            message="a counted Redis error",
        )
        redis.start()

        def ready(port: int) -> bool:
            return _fetch(f"http://127.0.0.1:{port}/ready")[0] == 200

        for port in metrics_ports:
            wait_until(
                partial(ready, port),
                timeout=30,
                message=f"processor :{port} ready again",
            )
        yield stack
    finally:
        processes.stop_all()
        sink.shutdown()
        redis.stop()


def _concrete(expr: str, stack: LiveStack) -> str:
    """The query as Grafana sends it with the type, every processor and a 15 s rate interval."""
    concrete = (
        expr.replace("$__rate_interval", RATE_INTERVAL)
        .replace("$type", PANEL_TYPE)
        .replace("$instance", "|".join(stack.processor_instances))
        .replace("$dimension", PANEL_DIMENSION)
        .replace("$value", ".*")
    )
    assert "$" not in concrete, f"unreplaced variable in {expr}"
    return concrete


def _has_data(answer: dict[str, Any]) -> bool:
    if answer.get("status") != "success":
        return False
    return any(not math.isnan(float(sample["value"][1])) for sample in answer["data"]["result"])


def test_every_dashboard_query_returns_data(live_stack: LiveStack) -> None:
    """Each panel query, variables filled in, parses and returns at least one number."""
    queries = {
        f"{title} [{target['refId']}]": _concrete(target["expr"], live_stack)
        for title, target in dashboard_targets()
    }
    assert len(queries) >= 20
    empty: dict[str, str] = {}

    def all_have_data() -> bool:
        # Reading the API as a user would keeps its request metrics moving.
        _fetch(f"http://{live_stack.api_instance}/stats")
        empty.clear()
        empty.update({name: q for name, q in queries.items() if not _has_data(live_stack.query(q))})
        return not empty

    try:
        wait_until(all_have_data, timeout=40, interval=1.0, message="data in every panel")
    except TimeoutError:
        details = {name: live_stack.query(q) for name, q in empty.items()}
        pytest.fail(f"panels without data: {json.dumps(details, indent=1)[:4000]}")


def test_template_variables_list_the_live_values(live_stack: LiveStack) -> None:
    """The $type and $instance variable queries find the producer's types and both processors."""
    variables = {v["name"]: v["query"]["query"] for v in dashboard()["templating"]["list"]}
    names = re.fullmatch(r"label_names\((.+)\)", variables["dimension"])
    assert names, variables["dimension"]
    path = "/api/v1/labels?" + urllib.parse.urlencode({"match[]": names.group(1)})
    regex = next(v["regex"] for v in dashboard()["templating"]["list"] if v["name"] == "dimension")
    offered = {n for n in live_stack.get(path)["data"] if re.fullmatch(regex.strip("/"), n)}
    assert offered == {"type", *DIMENSIONS}
    for name, expected in (
        ("type", {PANEL_TYPE}),
        ("instance", set(live_stack.processor_instances)),
        ("value", {"__unattributed__"}),
    ):
        query = _concrete(variables[name], live_stack)
        match = re.fullmatch(r"label_values\((.+), (\w+)\)", query)
        assert match, variables[name]
        selector, label = match.groups()
        path = f"/api/v1/label/{label}/values?" + urllib.parse.urlencode({"match[]": selector})
        values = set(live_stack.get(path)["data"])
        assert expected <= values, (name, values)


def test_every_alert_expression_parses_and_evaluates_cleanly(live_stack: LiveStack) -> None:
    """Each alert expression is accepted by the query API, and Prometheus evaluates every rule."""
    for rule in alert_rules():
        answer = live_stack.query(rule["expr"])
        assert answer["status"] == "success", (rule["alert"], answer.get("error"))

    def evaluated() -> list[dict[str, Any]]:
        groups = live_stack.get("/api/v1/rules")["data"]["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        assert all(rule["lastEvaluation"] > "2000" for rule in rules)
        return rules

    wait_until(evaluated, timeout=10, message="every rule evaluated once")
    rules = evaluated()
    assert {rule["name"] for rule in rules} == {rule["alert"] for rule in alert_rules()}
    for rule in rules:
        assert rule["health"] == "ok", (rule["name"], rule.get("lastError"))


def test_every_metric_the_rules_and_panels_use_is_scraped(live_stack: LiveStack) -> None:
    """Each metric name in the alert rules and the dashboard has series in Prometheus."""
    names: set[str] = set()
    for text in [rule["expr"] for rule in alert_rules()] + [
        t["expr"] for _, t in dashboard_targets()
    ]:
        names.update(re.findall(r"\b(exporter_[a-z_]+|up)\b", text))
    scraped = set(live_stack.get("/api/v1/label/__name__/values")["data"])
    # The producer's `??` country breaks the value rule: the fold counter has series too.
    assert names - scraped == set()


def test_exemplars_reach_prometheus_for_exemplar_panels(live_stack: LiveStack) -> None:
    """Panels with exemplars on get trace ids from the processors' spans (OpenMetrics scrape)."""
    assert live_stack.spans_received, "processors exported no spans to the OTLP receiver"
    lag = next(
        target["expr"]
        for title, target in dashboard_targets()
        if title == "Event lag percentiles" and target.get("exemplar")
    )
    now = time.time()
    query = urllib.parse.urlencode(
        {"query": _concrete(lag, live_stack), "start": now - 300, "end": now + 5}
    )
    found: list[dict[str, Any]] = []

    def exemplars() -> bool:
        found[:] = [
            exemplar
            for series in live_stack.get(f"/api/v1/query_exemplars?{query}")["data"]
            for exemplar in series["exemplars"]
        ]
        return bool(found)

    wait_until(exemplars, timeout=15, interval=0.5, message="exemplars of event lag")
    assert all(re.fullmatch(r"[0-9a-f]{32}", e["labels"]["trace_id"]) for e in found)


def test_targets_are_up_under_the_repository_job_names(live_stack: LiveStack) -> None:
    """Prometheus scrapes both processors as job processor and the API as job api, all up."""
    answer = live_stack.query('up{job=~"processor|api"}')
    up = {
        (s["metric"]["job"], s["metric"]["instance"]): s["value"][1]
        for s in answer["data"]["result"]
    }
    expected = {("processor", i) for i in live_stack.processor_instances} | {
        ("api", live_stack.api_instance)
    }
    assert set(up) == expected
    assert set(up.values()) == {"1"}


def test_container_health_probe_passes_against_the_real_roles(live_stack: LiveStack) -> None:
    """The image's HEALTHCHECK script finds /health on a real processor and on the real API."""
    script = Path(__file__).resolve().parents[2] / "docker" / "healthcheck.py"
    processor_port = live_stack.processor_instances[0].rpartition(":")[2]
    api_port = live_stack.api_instance.rpartition(":")[2]
    for role, environ in (
        ("processor", {"EXPORTER_METRICS_PORT": processor_port, "EXPORTER_API_PORT": "1"}),
        ("api", {"EXPORTER_METRICS_PORT": "1", "EXPORTER_API_PORT": api_port}),
    ):
        result = subprocess.run(
            [sys.executable, str(script)],
            env=environ,
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
        assert result.returncode == 0, (role, result.stdout)
        assert "/health answered 200" in result.stdout, role
