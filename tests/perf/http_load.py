"""A small HTTP load generator, run as its own process: keep-alive GETs for a fixed time.

Run: `python -m tests.perf.http_load URL SECONDS CONNECTIONS`; prints one JSON object with the
requests completed, how many were not 200, and the seconds measured. Used when `wrk` is not
installed (the smoke test always uses it, so it cannot rot).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import aiohttp


async def load(url: str, seconds: float, connections: int) -> dict[str, float | int]:
    """GET `url` from `connections` keep-alive clients for `seconds`."""
    done = 0
    bad = 0
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:
        async with session.get(url) as warm:  # connect and warm up before the clock starts
            await warm.read()
        deadline = time.perf_counter() + seconds

        async def client() -> None:
            nonlocal done, bad
            while time.perf_counter() < deadline:
                async with session.get(url) as response:
                    await response.read()
                    done += 1
                    if response.status != 200:
                        bad += 1

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(connections)))
        elapsed = time.perf_counter() - started
    return {"requests": done, "non_200": bad, "seconds": round(elapsed, 3)}


def main() -> None:
    """Parse the arguments, load, print the JSON result."""
    url, seconds, connections = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
    print(json.dumps(asyncio.run(load(url, seconds, connections))))


if __name__ == "__main__":
    main()
