"""Quick measurement: processor throughput against moto for several poller counts.

Run: `uv run python -m tests.perf.measure_processor_concurrency [messages]`. It starts its own
redis-server and moto server, pre-fills a queue per run (300 messages: moto's receive and send
cost grows with the backlog, so a large one would measure moto, not the processor) and times the
drain, directly and through a proxy adding 20 ms per response (a real SQS round trip).
Figures are for choosing the default of EXPORTER_CONCURRENCY, not a benchmark suite.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from prometheus_client import CollectorRegistry

from exporter.metrics import build_metrics
from exporter.processing.loop import Processor, ProcessorConfig
from exporter.sqs.config import SqsConfig
from exporter.sqs.source import SqsSource
from tests.integration.processing.processor_support import event_body, queue_depth
from tests.servers import AWS_TEST_ENV, MotoServer, RedisServer, free_port
from tests.sqs_messages import send, sqs_client
from tests.store_support import redis_store

POLLERS = (1, 2, 4, 8, 16)
LATENCIES_MS = (0, 20)  # 20 ms per response: roughly a real SQS round trip within a region


class LatencyProxy:
    """A TCP proxy in its own thread that delays every response chunk, like a network would."""

    def __init__(self, target_port: int, latency_seconds: float) -> None:
        self.target_port = target_port
        self.latency = latency_seconds
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()
        self._ready.wait(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", self.port))
        self._ready.set()
        self._loop.run_forever()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, delay: float) -> None:
            with contextlib.suppress(ConnectionError):
                while chunk := await src.read(65536):
                    if delay:
                        await asyncio.sleep(delay)
                    dst.write(chunk)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pump(reader, up_writer, 0), pump(up_reader, writer, self.latency))


def fill(endpoint: str, queue_url: str, count: int) -> None:
    bodies = [event_body("bench", "1.5", event_id=f"e{n}") for n in range(count)]
    chunks = [bodies[i : i + 100] for i in range(0, count, 100)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda chunk: send(sqs_client(endpoint), queue_url, chunk), chunks))


async def drain_rate(
    endpoint: str, redis_url: str, pollers: int, count: int, fill_endpoint: str
) -> float:
    name = f"bench-{pollers}-{time.monotonic_ns()}"
    source = await SqsSource.open(
        SqsConfig(
            queue_name=name,
            dlq_name=f"{name}-dlq",
            endpoint_url=endpoint,
            create_queues=True,
            wait_time_seconds=1,
            pollers=pollers,
        )
    )
    await asyncio.to_thread(fill, fill_endpoint, source.queues[0].url, count)
    store = redis_store(redis_url, prefix=name)
    registry = CollectorRegistry()
    processor = Processor(store, source, build_metrics(registry), ProcessorConfig(pollers=pollers))
    stop = asyncio.Event()
    started = time.perf_counter()
    task = asyncio.create_task(processor.run(stop))
    while (  # noqa: ASYNC110 - polling a counter; the processor offers no event for it
        registry.get_sample_value("exporter_events_processed_total", {"type": "bench"}) or 0
    ) < count:
        await asyncio.sleep(0.05)
    elapsed = time.perf_counter() - started
    stop.set()
    await task
    assert queue_depth(sqs_client(endpoint), source.queues[0].url) <= 10  # last deletes in flight
    await source.close()
    await store.close()
    return count / elapsed


async def main(count: int) -> None:
    with tempfile.TemporaryDirectory() as workdir:
        redis_server = RedisServer(Path(workdir))
        moto = MotoServer()
        redis_server.start()
        moto.start()
        try:
            for latency_ms in LATENCIES_MS:
                endpoint = (
                    LatencyProxy(moto.port, latency_ms / 1000).url if latency_ms else moto.url
                )
                for pollers in POLLERS:
                    rates = sorted(
                        [
                            await drain_rate(endpoint, redis_server.url, pollers, count, moto.url)
                            for _ in range(3)
                        ]
                    )
                    print(
                        f"latency={latency_ms:2d}ms pollers={pollers:2d}  "
                        f"median {rates[1]:6.0f} events/s  "
                        f"(runs: {', '.join(f'{r:.0f}' for r in rates)})",
                        flush=True,
                    )
        finally:
            moto.stop()
            redis_server.stop()


if __name__ == "__main__":
    import os

    os.environ.update(AWS_TEST_ENV)
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 300))
