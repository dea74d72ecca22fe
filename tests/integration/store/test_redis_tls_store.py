"""The store over TLS, on a real Redis Cluster serving TLS only: every client the connection
builds (the first contact, the cluster client after discovery, each rebuilt one and each probe
that decides a rebuild) gets the CA bundle and the client certificate; without them the first
call is refused as untrusted, naming what to set, instead of failing as an outage."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from redis.asyncio.cluster import RedisCluster

from exporter.events import parse_event
from exporter.store import StoreUntrusted
from exporter.store.errors import Fault
from exporter.store.tls import TlsFiles
from tests.polling import eventually
from tests.redis_cluster import RedisClusterNodes
from tests.store_support import current_client, redis_store
from tests.tls_certs import Certificates

_EVENT = parse_event(b'{"type": "purchase", "value": 2.5, "occurred_at": "2026-12-01 10:00:00"}')


@pytest.fixture(name="tls_cluster", scope="module")
def fixture_tls_cluster(
    certificates: Certificates, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RedisClusterNodes]:
    """A 3-master cluster serving TLS only and requiring client certificates, for the module."""
    cluster = RedisClusterNodes(
        tmp_path_factory.mktemp("tls-cluster"), masters=3, tls=certificates.server(mutual=True)
    )
    cluster.start()
    yield cluster
    cluster.stop()


def _files(certificates: Certificates) -> TlsFiles:
    return TlsFiles(
        str(certificates.ca), str(certificates.client_cert), str(certificates.client_key)
    )


async def test_a_rebuilt_cluster_client_keeps_the_tls_files(
    tls_cluster: RedisClusterNodes, certificates: Certificates
) -> None:
    """Writes over 3 shards go through the cluster client found from a TLS node; a rebuild,
    decided by probes that reach the masters over TLS, makes a new cluster client that writes
    too (a client without the files could not even connect)."""
    store = redis_store(
        tls_cluster.url(), prefix=f"tls-{uuid.uuid4().hex[:8]}", shards=3, tls=_files(certificates)
    )
    try:
        await store.apply([(f"id:{n}", _EVENT) for n in range(30)])
        first = await current_client(store)
        assert isinstance(first, RedisCluster)
        stale = Fault(False, "a map gone stale (test)", reconnect=True)

        async def rebuilt_once() -> bool:
            # As a failing call reports it; a probe that times out on a loaded machine (a TLS
            # handshake per master) decides nothing, and the next report looks again.
            await store.connection.failed(stale)
            return store.connection.rebuilds == 1

        await eventually(rebuilt_once, timeout=60, message="the cluster client rebuilt")
        await store.apply([(f"id:{n}", _EVENT) for n in range(30, 60)])
        rebuilt = await current_client(store)
        assert isinstance(rebuilt, RedisCluster)
        assert rebuilt is not first
        (totals,) = (await store.snapshot()).types
        assert totals.count == 60
    finally:
        await store.close()


@pytest.mark.parametrize("given", ["no files", "wrong CA"])
async def test_a_cluster_whose_certificate_is_not_trusted_is_refused_at_the_first_call(
    tls_cluster: RedisClusterNodes, certificates: Certificates, given: str
) -> None:
    """Without the private CA (or with another), the first call is a refusal naming the node,
    OpenSSL's words and the setting, at once and on every try alike."""
    files = {
        "no files": TlsFiles(),
        "wrong CA": TlsFiles(
            str(certificates.wrong_ca),
            str(certificates.client_cert),
            str(certificates.client_key),
        ),
    }[given]
    store = redis_store(tls_cluster.url(), prefix="tls-refused", tls=files)
    try:
        for _ in range(2):
            with pytest.raises(StoreUntrusted) as refused:
                await store.probe_write()
            assert str(refused.value).startswith(f"TLS with 127.0.0.1:{tls_cluster.ports[0]}")
            assert "self-signed certificate in certificate chain" in str(refused.value)
            assert "EXPORTER_REDIS_TLS_CA_FILE" in str(refused.value)
        assert store.connection.rebuilds == 0
    finally:
        await store.close()
