"""How a command ends when something stops it: one table from what stopped it to the exit
status and the one line on stderr (`exporter <command>: <line>`), the same for every command.

A setting, a flag or a refusal that no wait can cure exits 2; a dependency never reached, a port
that cannot be bound, or an outage that outlasts the command's own tries exits 1 (decision
0015). Anything else is a bug, and keeps its traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final


class UsageError(Exception):
    """A command-line flag that cannot work (`--limit 0`); the message names the flag."""


@dataclass(frozen=True, slots=True)
class Ending:
    """The exit status a kind of error ends a command with, and its line."""

    status: int
    line: Callable[[BaseException], str] = str


# By the classes' full names: a command imports only the parts it uses (`exporter produce` no
# Redis client), so this table cannot import every class it names. An error is looked up by its
# own class, then each base in turn: the most specific entry wins (StoreMisconfigured, a
# StoreUnavailable, exits 2). tests/unit/cli/test_exits.py checks that every name is a class.
ENDINGS: Final[Mapping[str, Ending]] = {
    "exporter.settings.ConfigurationError": Ending(2),
    "exporter.cli.exits.UsageError": Ending(2),
    "exporter.sqs.messages.SourceMisconfigured": Ending(2),
    "exporter.store.StoreMisconfigured": Ending(2),
    "exporter.store.StoreRefused": Ending(2),
    "exporter.tools.demo_parts.MotoMissing": Ending(2),
    "exporter.tools.producer.QueueNotFound": Ending(2),
    "exporter.cli.startup.NeverReached": Ending(1),
    "exporter.cli.ports.PortUnavailable": Ending(1),
    "exporter.sqs.messages.SourceUnavailable": Ending(1, lambda exc: f"cannot reach SQS: {exc}"),
    "exporter.store.StoreUnavailable": Ending(1),
    "builtins.KeyboardInterrupt": Ending(130, lambda _exc: "interrupted"),
}


def ending_of(exc: BaseException) -> Ending | None:
    """How `exc` ends a command, or None for an error that is a bug."""
    for kind in type(exc).__mro__:
        ending = ENDINGS.get(f"{kind.__module__}.{kind.__qualname__}")
        if ending is not None:
            return ending
    return None


def ended(command: str, run: Callable[[], int]) -> int:
    """`run()`'s exit status, or the table's for what stopped it, after its line on stderr."""
    try:
        return run()
    except BaseException as exc:
        ending = ending_of(exc)
        if ending is None:
            raise
        print(f"exporter {command}: {ending.line(exc)}", file=sys.stderr)
        return ending.status


__all__ = ["ENDINGS", "Ending", "UsageError", "ended", "ending_of"]
