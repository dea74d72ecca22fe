"""Fixtures of the fault suite: a stack of real processes on a real Redis and SQS server."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.harness import Stack
from tests.servers import MotoServer, RedisServer

_queues = itertools.count()


@pytest.fixture(name="stack")
def fixture_stack(
    fresh_redis_server: RedisServer, moto_server: MotoServer, tmp_path: Path
) -> Iterator[Stack]:
    """An append-only Redis of the test's own, a queue of its own; processes added by the test."""
    stack = Stack(
        redis_url=fresh_redis_server.url,
        sqs_endpoint=moto_server.url,
        workdir=tmp_path,
        queue=f"faults-{next(_queues)}-{tmp_path.name[-12:]}".replace("_", "-"),
    )
    yield stack
    stack.stop_all()
