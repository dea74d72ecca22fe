"""Redis behind TLS, as a managed Redis with a private CA runs it: real processors and the API
count exactly over mutual TLS to one node and to a Redis Cluster; a server certificate rotated to
one the exporter does not trust is a refusal shown on /ready and /health (not a silent retry),
which clears without a restart once the CA bundle on disk trusts it."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections import defaultdict
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import redis

from tests.faults.harness import Stack, assert_exact, iter_lines, queue_urls, settle
from tests.faults.traffic import Traffic, make_traffic
from tests.integration.cli.test_cli_lifecycle import one_line, run_command
from tests.polling import wait_until
from tests.redis_cluster import RedisClusterNodes
from tests.servers import MotoServer, RedisServer, ServerTls
from tests.sqs_messages import send
from tests.sqs_messages import sqs_client as faults_sqs_client
from tests.tls_certs import Certificates

# The exporter connects as this ACL user, with a password, as on a managed Redis.
USER, PASSWORD = "exporter", "tls-user-pw"


def _tls_env(certificates: Certificates, ca_file: Path | None = None) -> dict[str, str]:
    """The exporter's TLS settings: the private CA and the client certificate."""
    return {
        "EXPORTER_REDIS_TLS_CA_FILE": str(ca_file or certificates.ca),
        "EXPORTER_REDIS_TLS_CERT_FILE": str(certificates.client_cert),
        "EXPORTER_REDIS_TLS_KEY_FILE": str(certificates.client_key),
    }


def _with_user(url: str) -> str:
    return url.replace("rediss://", f"rediss://{USER}:{PASSWORD}@", 1)


def _add_user(port: int, tls: ServerTls) -> None:
    with redis.Redis(port=port, **tls.client_options()) as client:
        client.acl_setuser(
            USER, enabled=True, passwords=[f"+{PASSWORD}"], keys=["*"], commands=["+@all"]
        )


def _merged(*parts: Traffic) -> Traffic:
    """One traffic of several sent one after the other: their bodies and their totals summed."""
    counts: dict[str, int] = defaultdict(int)
    sums: dict[str, Decimal] = defaultdict(Decimal)
    for part in parts:
        for kind, (count, total) in part.expected.items():
            counts[kind] += count
            sums[kind] += total
    return Traffic(
        bodies=[body for part in parts for body in part.bodies],
        expected={kind: (counts[kind], sums[kind]) for kind in counts},
        malformed=[bad for part in parts for bad in part.malformed],
    )


def _send(stack: Stack, traffic: Traffic) -> None:
    main, _ = queue_urls(stack)
    send(faults_sqs_client(stack.sqs_endpoint), main, traffic.bodies)


def _answer(port: int, path: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as reply:
            return int(reply.status), json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture(name="tls_stack")
def fixture_tls_stack(
    certificates: Certificates, moto_server: MotoServer, tmp_path: Path
) -> Iterator[tuple[Stack, RedisServer]]:
    """A TLS-only Redis requiring client certificates, with an ACL user; a stack on it whose
    processes are added by the test."""
    server = RedisServer(tmp_path / "redis", tls=certificates.server(mutual=True))
    server.start()
    try:
        assert server.tls is not None
        _add_user(server.port, server.tls)
        stack = Stack(
            redis_url=_with_user(server.url),
            sqs_endpoint=moto_server.url,
            workdir=tmp_path,
            queue=f"tls-{tmp_path.name[-12:]}".replace("_", "-"),
            extra_env=_tls_env(certificates),
        )
        try:
            yield stack, server
        finally:
            stack.stop_all()
    finally:
        server.stop()


def test_totals_are_exact_over_mutual_tls_with_a_private_ca(
    tls_stack: tuple[Stack, RedisServer],
) -> None:
    """Two processors and the API over rediss:// with an ACL user, the private CA and a client
    certificate given by the settings: the totals are exact to the last millionth."""
    stack, _ = tls_stack
    traffic = make_traffic(400, seed=31)
    stack.start_api()
    stack.add_processor()
    stack.add_processor()
    _send(stack, traffic)
    assert_exact(traffic, settle(stack, traffic))


def test_a_redis_cluster_over_tls_counts_exactly_and_refuses_a_wrong_ca_at_start(
    certificates: Certificates, moto_server: MotoServer, tmp_path: Path
) -> None:
    """A 3-master cluster serving TLS only (its bus too), REDIS_URL naming two of its nodes and
    the writes spread over 3 shards: exact totals through a processor and the API, the cluster
    client having the same CA and client certificate as the first contact; with a wrong CA the
    processor exits 2 at once with one line."""
    cluster = RedisClusterNodes(
        tmp_path / "cluster", masters=3, tls=certificates.server(mutual=True)
    )
    cluster.start()
    try:
        assert cluster.tls is not None
        for port in cluster.ports:
            _add_user(port, cluster.tls)
        nodes = f"127.0.0.1:{cluster.ports[0]},127.0.0.1:{cluster.ports[1]}"
        url = _with_user(f"rediss://{nodes}/0")
        refused = run_command(
            "processor",
            {"REDIS_URL": url, **_tls_env(certificates, certificates.wrong_ca)},
            moto_server,
        )
        assert refused.returncode == 2, refused.stderr
        line = one_line(refused, "processor")
        assert "not signed by a CA this exporter trusts" in line
        assert "EXPORTER_REDIS_TLS_CA_FILE" in line
        assert PASSWORD not in refused.stderr

        stack = Stack(
            redis_url=url,
            sqs_endpoint=moto_server.url,
            workdir=tmp_path,
            queue=f"tls-cluster-{tmp_path.name[-12:]}".replace("_", "-"),
            extra_env={**_tls_env(certificates), "EXPORTER_REDIS_SHARDS": "3"},
        )
        try:
            traffic = make_traffic(400, seed=32)
            stack.start_api()
            stack.add_processor()
            _send(stack, traffic)
            assert_exact(traffic, settle(stack, traffic))
        finally:
            stack.stop_all()
    finally:
        cluster.stop()


def test_a_rotated_certificate_not_trusted_is_a_refusal_until_the_ca_bundle_trusts_it(
    tls_stack: tuple[Stack, RedisServer], certificates: Certificates, tmp_path: Path
) -> None:
    """Redis's certificate replaced by one of another CA while the exporter runs: once its
    connections are renewed, /ready (processor) and /health (API) answer 503 naming the failed
    verification and the setting, the processor logs it as an error and receives nothing; when
    the CA bundle file is replaced to trust the new CA, both resume without a restart and the
    totals of before, during and after are exact."""
    stack, server = tls_stack
    bundle = tmp_path / "ca-bundle.pem"
    bundle.write_bytes(certificates.ca.read_bytes())
    stack.extra_env |= _tls_env(certificates, bundle)
    before, during = make_traffic(150, seed=33), make_traffic(150, seed=34)
    stack.start_api()
    processor = stack.add_processor()
    _send(stack, before)
    settle(stack, before)

    assert server.tls is not None
    with redis.Redis(
        port=server.port, single_connection_client=True, **server.tls.client_options()
    ) as admin:
        # New connections get the new certificate; the ones open keep theirs until cut.
        admin.config_set("tls-cert-file", str(certificates.wrong_ca_server_cert))
        admin.client_kill_filter(_type="normal", skipme=True)
    _send(stack, during)

    refusal = f"TLS with 127.0.0.1:{server.port} failed: Redis's certificate is not signed by a CA"
    assert stack.api is not None
    api_port = stack.api.port

    def refused_everywhere() -> bool:
        ready_status, ready_body = _answer(processor.port, "/ready")
        health_status, health_body = _answer(api_port, "/health")
        return (
            ready_status == 503
            and refusal in json.dumps(ready_body)
            and "EXPORTER_REDIS_TLS_CA_FILE" in json.dumps(ready_body)
            and health_status == 503
            and refusal in str(health_body.get("problem"))
        )

    wait_until(refused_everywhere, timeout=60, interval=0.2, message="/ready and /health: TLS")
    errors = [
        line["message"]
        for line in iter_lines(processor.log)
        if line.get("level") == "error" and refusal in line["message"]
    ]
    assert errors, processor.tail()
    assert PASSWORD not in processor.log.read_text()

    # As Kubernetes updates a mounted Secret: the new file is swapped in whole.
    staged = tmp_path / "ca-bundle.pem.new"
    staged.write_bytes(certificates.ca.read_bytes() + certificates.wrong_ca.read_bytes())
    os.replace(staged, bundle)
    assert_exact(_merged(before, during), settle(stack, _merged(before, during)))
    wait_until(lambda: _answer(api_port, "/health")[0] == 200, timeout=60, message="API healthy")
