"""Waiting for replicas (EXPORTER_REDIS_MIN_REPLICAS): WAIT after a shard's writes, and its answer
checked."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio.cluster import RedisCluster

from exporter.store import ReplicasMissing
from exporter.store.connection import Client
from exporter.store.keys import ShardKeys


@dataclass(frozen=True, slots=True)
class Replicas:
    """How many replicas must hold a write, and for how long a WAIT may ask them."""

    required: int
    timeout_ms: int

    @property
    def command(self) -> tuple[str, int, int]:
        """WAIT as one command, for a pipeline of the writes it must cover."""
        return ("WAIT", self.required, self.timeout_ms)

    async def wait(self, client: Client, shard: ShardKeys) -> None:
        """WAIT until the replicas of the shard's master hold every write made so far.

        WAIT counts the writes made on its own connection, so it goes in one pipeline with a small
        write of the same slot, on the connection to the master of that slot; replication is one
        ordered stream per master, so that write acknowledged means every earlier one is too. The
        write is a key set and deleted at once: nothing is left behind.
        """
        if not self.required:
            return
        ack = f"{shard.tag}:ack"
        if isinstance(client, RedisCluster):
            node = client.get_node_from_key(shard.tag)
            async with client.pipeline() as cluster_pipe:
                cluster_pipe.execute_command("SET", ack, "1", "PX", 60000)
                cluster_pipe.execute_command("DEL", ack)
                cluster_pipe.execute_command(*self.command, target_nodes=node)
                replies = await cluster_pipe.execute()
        else:
            async with client.pipeline(transaction=False) as pipe:
                pipe.execute_command("SET", ack, "1", "PX", 60000)
                pipe.execute_command("DEL", ack)
                pipe.execute_command(*self.command)
                replies = await pipe.execute()
        self.check(int(replies[-1]))

    def check(self, acknowledged: int) -> None:
        """Raise ReplicasMissing unless WAIT's answer counts enough replicas."""
        if acknowledged < self.required:
            raise ReplicasMissing(
                f"{acknowledged} of {self.required} replicas acknowledged the write within "
                f"{self.timeout_ms} ms; lower EXPORTER_REDIS_MIN_REPLICAS or add a replica",
                acknowledged=acknowledged,
                required=self.required,
            )


__all__ = ["Replicas"]
