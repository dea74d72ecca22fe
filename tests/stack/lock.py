"""One compose stack test at a time on a machine: the stack publishes fixed host ports.

Two test runs on one machine (a developer's and CI's, or two CI jobs) would otherwise tear down
each other's stack: the second run's clean start removes the containers the first is testing. The
lock is an advisory `flock` on a file in the temporary directory, so a run that dies, however it
dies, releases it with its process.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.stack.engine import PROJECT, StackError

LOCK_PATH = Path(tempfile.gettempdir()) / f"{PROJECT}.lock"


@contextmanager
def one_stack_at_a_time(within: float, path: Path = LOCK_PATH) -> Iterator[None]:
    """Hold the machine's stack lock, waiting up to `within` seconds for another run to finish."""
    deadline = time.monotonic() + within
    with path.open("a+") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    handle.seek(0)
                    holder = handle.read().strip() or "unknown"
                    raise StackError(
                        f"another compose stack test (pid {holder}) held {path} for more than "
                        f"{within:.0f} s; its stack uses the same ports and names"
                    ) from None
                time.sleep(0.5)
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(str(os.getpid()))
            handle.flush()
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
