"""The Redis store merges concurrent applies into fewer script calls, changing no outcome."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis

from exporter.events import Event
from exporter.store import (
    ApplyResult,
    Outcome,
    ReplicasMissing,
    StoreMisconfigured,
    StoreRefused,
    StoreUnavailable,
)
from exporter.store.coalesce import ApplyCoalescer, Batch
from exporter.store.redis import RedisStore
from tests.polling import eventually
from tests.store_support import script_calls

WHEN = datetime(2026, 1, 1, tzinfo=UTC)
APPLIED: tuple[Outcome, ...] = ("applied",)


def _event(kind: str, units: int = 1) -> Event:
    return Event(kind, units * 1_000_000, WHEN)


async def _until(condition: Callable[[], bool]) -> None:
    """Yield to the loop until `condition` holds (a few turns at most in these tests)."""
    await eventually(condition, timeout=5, interval=0, message="the coalescer's task to run")


async def test_concurrent_batches_share_calls_and_keep_their_own_outcomes(
    redis_client: aioredis.Redis,
    open_store: Callable[..., RedisStore],
) -> None:
    """Twenty concurrent batches take fewer calls; each caller gets exactly its own outcomes."""
    store = open_store(prefix=f"co-{uuid.uuid4().hex[:8]}")
    # Loads the script, so that each call below is one EVALSHA in Redis's command counts.
    await store.apply([("msg:warm-up", _event("warm"))])
    await redis_client.config_resetstat()
    shared = "id:retried-by-the-producer"
    batches = [
        [(f"msg:{n}-{i}", _event("page")) for i in range(9)] + [(shared, _event("buy", 5))]
        for n in range(20)
    ]
    results = await asyncio.gather(*(store.apply(batch) for batch in batches))
    assert await script_calls(redis_client) < len(batches)
    outcomes = [result.outcomes for result in results]
    assert all(len(o) == 10 for o in outcomes)
    assert all(o[:9] == ("applied",) * 9 for o in outcomes)
    assert sorted(o[9] for o in outcomes) == ["applied"] + ["duplicate"] * 19
    totals = await store.snapshot()
    page, buy = totals.get("page"), totals.get("buy")
    assert page is not None
    assert (page.count, page.sum_micros) == (180, 180_000_000)
    assert buy is not None
    assert (buy.count, buy.sum_micros) == (1, 5_000_000)


async def test_a_lone_caller_is_not_delayed_or_merged(
    redis_client: aioredis.Redis, open_store: Callable[..., RedisStore]
) -> None:
    """Sequential applies each make their own call, as before coalescing."""
    store = open_store(prefix=f"co-{uuid.uuid4().hex[:8]}")
    # Loads the script, so that each call below is one EVALSHA in Redis's command counts.
    await store.apply([("msg:warm-up", _event("warm"))])
    await redis_client.config_resetstat()
    for n in range(3):
        result = await store.apply([(f"msg:lone-{n}", _event("page"))])
        assert result.outcomes == ("applied",)
    assert await script_calls(redis_client) == 3


async def test_a_failed_call_fails_every_caller_it_carried() -> None:
    """When the merged call fails, every waiting caller gets StoreUnavailable; none hangs."""
    calls: list[int] = []
    release = asyncio.Event()

    async def failing(batch: Batch) -> ApplyResult:
        calls.append(len(batch))
        await release.wait()
        raise StoreUnavailable("Redis went away")

    coalescer = ApplyCoalescer(failing, limit=1000)
    tasks = [asyncio.create_task(coalescer.apply([("msg:0", _event("page"))]))]
    await _until(lambda: calls == [1])  # the first call is in flight
    tasks += [
        asyncio.create_task(coalescer.apply([(f"msg:{n}", _event("page"))])) for n in range(1, 5)
    ]
    await asyncio.sleep(0)  # the four queue up behind it
    release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, StoreUnavailable) for r in results)
    assert calls == [1, 4]  # the first alone, the four that waited behind it together
    await coalescer.wait_idle()


async def test_a_cancelled_caller_that_never_ran_applies_nothing() -> None:
    """A caller cancelled while waiting its turn is dropped from the next merged call."""
    seen: list[str] = []
    release = asyncio.Event()

    async def recording(batch: Batch) -> ApplyResult:
        seen.extend(identity for identity, _ in batch)
        await release.wait()
        return ApplyResult(APPLIED * len(batch))

    coalescer = ApplyCoalescer(recording, limit=1000)
    first = asyncio.create_task(coalescer.apply([("msg:first", _event("page"))]))
    await _until(lambda: seen == ["msg:first"])
    waiting = asyncio.create_task(coalescer.apply([("msg:gone", _event("page"))]))
    kept = asyncio.create_task(coalescer.apply([("msg:kept", _event("page"))]))
    await asyncio.sleep(0)
    waiting.cancel()
    release.set()
    assert (await first).outcomes == ("applied",)
    assert (await kept).outcomes == ("applied",)
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert seen == ["msg:first", "msg:kept"]


async def test_merged_calls_respect_the_event_limit() -> None:
    """Waiting batches are merged only up to the limit; the rest go in the next call."""
    sizes: list[int] = []

    async def sizing(batch: Batch) -> ApplyResult:
        sizes.append(len(batch))
        await asyncio.sleep(0)
        return ApplyResult(APPLIED * len(batch))

    coalescer = ApplyCoalescer(sizing, limit=25)
    batches = [[(f"msg:{n}-{i}", _event("page")) for i in range(10)] for n in range(7)]
    results = await asyncio.gather(*(coalescer.apply(batch) for batch in batches))
    assert all(r.outcomes == ("applied",) * 10 for r in results)
    assert sum(sizes) == 70
    assert max(sizes) <= 25


class _Refusal(StoreRefused):
    """A refusal whose constructor takes what the base's does not (keyword-only, required)."""

    def __init__(self, message: str, *, node: str) -> None:
        super().__init__(message, advice=f"free memory on {node}")
        self.node = node


@pytest.mark.parametrize(
    "error",
    [
        _Refusal("OOM command not allowed", node="10.0.0.5:6379"),
        ReplicasMissing("0 of 1 replicas acknowledged", acknowledged=0, required=1),
        StoreMisconfigured("EXPORTER_REDIS_SHARDS is 1 but the data ... 3 shards"),
    ],
)
async def test_every_caller_gets_the_error_of_the_same_class_with_every_field(
    error: StoreRefused | StoreUnavailable | StoreMisconfigured,
) -> None:
    """Each caller a failed merged call carried gets an error of the call's class with every field
    (advice, replica counts, a subclass's own), its own object, whatever the constructor takes;
    the drain task raises nothing itself."""
    release = asyncio.Event()

    async def failing(_batch: Batch) -> ApplyResult:
        await release.wait()
        raise error

    coalescer = ApplyCoalescer(failing, limit=1000)
    tasks = [asyncio.create_task(coalescer.apply([(f"msg:{n}", _event("page"))])) for n in range(3)]
    await asyncio.sleep(0)
    release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert len({id(r) for r in results}) == 3
    for result in results:
        assert type(result) is type(error)
        assert str(result) == str(error)
        assert vars(result) == vars(error)
    await coalescer.wait_idle()
