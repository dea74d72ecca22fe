"""The store's Redis client, and the rebuilding of it that keeps a fleet from getting stuck.

redis-py heals most faults itself, but not all: a cluster pipeline can be left with a connection
that lost its writer after a node restart, and a topology held in memory can stop matching the
cluster after nodes are replaced. So when calls keep failing for a reason a new client could clear
(a lost connection, a cluster map gone stale, redis-py's own state broken) while some server
answers a fresh connection, the client is thrown away and built again from every node this process
has known, not only the ones REDIS_URL names. Calls still running on the old client finish on it;
it is closed once the last of them returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster

from exporter.retry import Backoff
from exporter.store import StoreRefused
from exporter.store.errors import REDIS_ERRORS, Fault, classify, is_redis_failure
from exporter.store.tls import TlsFiles
from exporter.store.urls import node_urls, redacted, with_address

Client = aioredis.Redis | RedisCluster

log = logging.getLogger(__name__)

# How often a failing call may look for servers that answer again, at most.
CHECK_INTERVAL_SECONDS: Final = 1.0
# A server that takes longer than this to answer PING or CLUSTER INFO is not back yet.
CHECK_TIMEOUT_SECONDS: Final = 2.0
# Rebuilds of one failure episode: the first at once, the next after 1, 2, 4, 5, 5... seconds.
REBUILD_BASE_SECONDS: Final = 1.0
REBUILD_CAP_SECONDS: Final = 5.0
# Nodes remembered beyond those REDIS_URL names; replaced nodes fall off the end.
MAX_KNOWN_NODES: Final = 32
CLOSE_TIMEOUT_SECONDS: Final = 2.0
SLOTS: Final = 16384


@dataclass(eq=False, slots=True)
class Generation:
    """One client, and how many calls are using it now."""

    client: Client
    number: int
    users: int = 0
    retired: bool = False


@dataclass(slots=True)
class _Episode:
    """A run of failures since the last call that succeeded."""

    backoff: Backoff = field(
        default_factory=lambda: Backoff(REBUILD_BASE_SECONDS, REBUILD_CAP_SECONDS)
    )
    next_check_at: float = 0.0
    next_rebuild_at: float = 0.0
    rebuilds: int = 0


class RedisConnection:
    """The client for the Redis that REDIS_URL names: one node, or a Redis Cluster found out on
    first use; rebuilt from scratch when it keeps failing while the servers answer."""

    def __init__(
        self,
        url: str,
        *,
        timeout_seconds: float = 5.0,
        tls: TlsFiles | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Raises BadRedisUrl for a REDIS_URL that cannot name a Redis; connects on first use.

        `timeout_seconds` bounds each socket operation (connecting, one reply). `tls` names the CA
        bundle and client certificate of a `rediss://` URL (checked by the caller); every client
        made here gets them: the first, a cluster's, each rebuilt one and each probe.
        """
        self.seeds: Final = node_urls(url)
        self.shown: Final = redacted(url)
        # Any: redis-py's from_url takes its TLS options through **kwargs.
        self._tls: Final[dict[str, Any]] = dict((tls or TlsFiles()).client_options())
        self.timeout_seconds: Final = timeout_seconds
        self._clock = clock
        self._cluster: bool | None = None
        self._current: Generation | None = None
        self._opening: asyncio.Lock | None = None
        self._healing: asyncio.Lock | None = None
        self._known: dict[tuple[str, int], None] = {}
        self._episode: _Episode | None = None
        self._closing: set[asyncio.Task[None]] = set()
        self._generations = 0
        self.rebuilds = 0

    # -- using the client ----------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def lease(self) -> AsyncIterator[Generation]:
        """The current client for one call; a client retired meanwhile is closed after it."""
        generation = await self._generation()
        generation.users += 1
        try:
            yield generation
        finally:
            generation.users -= 1
            if generation.retired and generation.users == 0:
                self._dispose(generation)

    def succeeded(self) -> None:
        """A call went through: the failure episode, if any, is over."""
        if self._episode is not None:
            self._episode = None

    async def failed(self, fault: Fault) -> None:
        """A call failed with `fault`: rebuild the client if a new one may clear it and a server
        answers a fresh connection (at most once a second, with backoff between rebuilds)."""
        if not fault.reconnect:
            return
        episode = self._episode = self._episode or _Episode()
        now = self._clock()
        if now < episode.next_check_at or now < episode.next_rebuild_at:
            return
        healing = self._healing = self._healing or asyncio.Lock()
        if healing.locked():
            return  # another call is already looking
        async with healing:
            episode.next_check_at = now + CHECK_INTERVAL_SECONDS
            witness = await self._answering()
            if witness is None:
                return  # an outage: nothing answers, and a new client would not either
            episode.rebuilds += 1
            episode.next_rebuild_at = self._clock() + episode.backoff.next_delay()
            self._rebuild(fault, witness, episode.rebuilds)

    # -- opening -------------------------------------------------------------------------------

    async def _generation(self) -> Generation:
        if self._current is not None:
            return self._current
        opening = self._opening = self._opening or asyncio.Lock()
        async with opening:
            if self._current is None:
                self._current = self._new_generation(await self._open())
        return self._current

    def _new_generation(self, client: Client) -> Generation:
        self._generations += 1
        return Generation(client, self._generations)

    async def _open(self) -> Client:
        """Find out, from the first node that answers, whether this is a cluster."""
        if self._cluster is not None:
            return self._build(self.seeds[0])
        first_error: BaseException | None = None
        for seed in self.seeds:
            probe = self._standalone(seed)
            try:
                info = await probe.info("cluster")
            except Exception as exc:
                await _close_quietly(probe)
                if not is_redis_failure(exc) or classify(exc).refused:
                    raise  # a refusal (password, database) is the same on every node
                first_error = first_error or exc
                continue
            self._cluster = info.get("cluster_enabled") in (1, "1")
            if not self._cluster:
                return probe
            await _close_quietly(probe)
            self._check_cluster_database(seed)
            return self._build(seed)
        if first_error is None:  # node_urls never returns an empty tuple
            raise RuntimeError("REDIS_URL names no node")
        raise first_error

    def _check_cluster_database(self, seed: str) -> None:
        database = urlsplit(seed).path.strip("/")
        if database and int(database) != 0:
            raise StoreRefused(
                f"REDIS_URL names database {database}, and a Redis Cluster has only database 0",
                advice="a Redis Cluster serves only database 0: end REDIS_URL with /0",
            )

    def _standalone(self, url: str) -> aioredis.Redis:
        return aioredis.Redis.from_url(
            url,
            socket_timeout=self.timeout_seconds,
            socket_connect_timeout=self.timeout_seconds,
            health_check_interval=30,
            **self._tls,
        )

    def _build(self, seed: str) -> Client:
        """A new client: for a cluster, starting from every node known, REDIS_URL's first."""
        if not self._cluster:
            return self._standalone(seed)
        others = [address for address in self._addresses() if address != _address_of(seed)]
        return RedisCluster.from_url(
            seed,
            startup_nodes=[ClusterNode(host, port) for host, port in others],
            socket_timeout=self.timeout_seconds,
            socket_connect_timeout=self.timeout_seconds,
            health_check_interval=30,
            **self._tls,
        )

    def _addresses(self) -> list[tuple[str, int]]:
        """Every node this process knows of: REDIS_URL's, then those the cluster showed."""
        named = [_address_of(seed) for seed in self.seeds]
        return list(dict.fromkeys([*named, *self._known]))

    def _remember(self, client: Client) -> None:
        if not isinstance(client, RedisCluster):
            return
        with contextlib.suppress(Exception):  # a client in a broken state may not list them
            seen = [(node.host, int(node.port)) for node in client.get_nodes()]
            self._known = dict.fromkeys([*seen, *self._known])
            while len(self._known) > MAX_KNOWN_NODES:
                self._known.pop(next(reversed(self._known)))

    # -- healing -------------------------------------------------------------------------------

    async def _answering(self) -> str | None:
        """Where a fresh client would find a working Redis now, or None (an outage).

        One node: it answers PING. A cluster: some node it knows tells the slots' map (CLUSTER
        SLOTS) and every master of that map answers PING. The cluster's own `cluster_state:ok` is
        not enough: it stays ok for the node timeout after a master died.
        """
        if not self._cluster:
            answers = await asyncio.gather(*(self._pings(url) for url in self.seeds))
            answering = [url for url, ok in zip(self.seeds, answers, strict=True) if ok]
            return redacted(answering[0]) if answering else None
        current = self._current
        if current is not None:
            self._remember(current.client)
        for host, port in self._addresses():
            masters = await self._slot_masters(host, port)
            if masters is None:
                continue
            urls = [with_address(self.seeds[0], *master) for master in masters]
            answers = await asyncio.gather(*(self._pings(url) for url in urls))
            if not all(answers):
                return None  # a master of the map does not answer: wait for the failover
            return f"{host}:{port} (slots on {len(masters)} masters, all answering)"
        return None

    async def _slot_masters(self, host: str, port: int) -> list[tuple[str, int]] | None:
        """The masters of every slot as the node at host:port sees them; None if it does not
        answer, or leaves a slot uncovered."""
        probe = self._probe(with_address(self.seeds[0], host, port))
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_SECONDS * 2):
                ranges = await probe.execute_command("CLUSTER SLOTS")  # type: ignore[no-untyped-call]
        except (*REDIS_ERRORS, OSError, TimeoutError):
            return None
        finally:
            await _close_quietly(probe)
        masters: dict[tuple[str, int], None] = {}
        covered = 0
        for first, last, master, *replicas in ranges:
            covered += int(last) - int(first) + 1
            for node in (master, *replicas):
                name = node[0].decode() if isinstance(node[0], bytes) else str(node[0])
                self._known[(name or host, int(node[1]))] = None
            name = master[0].decode() if isinstance(master[0], bytes) else str(master[0])
            masters[(name or host, int(master[1]))] = None
        return list(masters) if covered == SLOTS else None

    async def _pings(self, url: str) -> bool:
        probe = self._probe(url)
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_SECONDS * 2):
                return bool(await probe.ping())
        except (*REDIS_ERRORS, OSError, TimeoutError):
            return False
        finally:
            await _close_quietly(probe)

    def _probe(self, url: str) -> aioredis.Redis:
        """A client of one fresh connection, for looking only: short timeouts, no retries."""
        return aioredis.Redis.from_url(
            url,
            socket_timeout=CHECK_TIMEOUT_SECONDS,
            socket_connect_timeout=CHECK_TIMEOUT_SECONDS,
            retry=None,
            **self._tls,
        )

    def _rebuild(self, fault: Fault, witness: str, attempt: int) -> None:
        old = self._current
        if old is not None:
            self._remember(old.client)
        # Not known yet whether it is a cluster (the first contact failed): the next call finds
        # out again rather than guess a kind of client.
        fresh = None if self._cluster is None else self._build(self.seeds[0])
        self._current = None if fresh is None else self._new_generation(fresh)
        self.rebuilds += 1
        log.warning(
            "Redis answers again but the store's calls still fail; rebuilt the Redis client "
            "from scratch",
            extra={
                "cause": fault.words,
                "answering": witness,
                "known_nodes": len(self._addresses()),
                "attempt": attempt,
                "store": self.shown,
            },
        )
        if old is not None:
            old.retired = True
            if old.users == 0:
                self._dispose(old)

    # -- closing -------------------------------------------------------------------------------

    def _dispose(self, generation: Generation) -> None:
        task = asyncio.get_running_loop().create_task(_close_quietly(generation.client))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        """Close every client this connection made; never raises, never hangs."""
        current, self._current = self._current, None
        if current is not None:
            await _close_quietly(current.client)
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)


async def _close_quietly(client: Client) -> None:
    """Close `client`, whatever state it is in: closing must not fail a shutdown or a rebuild."""
    with contextlib.suppress(Exception):
        async with asyncio.timeout(CLOSE_TIMEOUT_SECONDS):
            await client.aclose()


def _address_of(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return (parts.hostname or "localhost", parts.port or 6379)


__all__ = ["Client", "Generation", "RedisConnection"]
