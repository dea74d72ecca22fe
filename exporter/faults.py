"""The two kinds of failure every caller of a dependency tells apart (Redis and SQS alike).

`Transient`: the dependency may work again while this process runs (an outage, a refusal an
operator clears without restarting us, a failover that ends): the caller waits, pauses its work
and shows itself not ready. `Fatal`: it can never work with these settings (the data was
written with another shard count, a queue that does not exist): the caller stops, and the
command exits 2 naming what to change.

They are siblings, never one inside the other (house style, habit 15): each caller says by name
which it handles, so a fatal error cannot slip through the `except` written for a transient one.
Each carries `advice`, what an operator should change when that is known. Pure: imports nothing
of the project.
"""

from __future__ import annotations

from typing import Any


class _Failure(Exception):
    """What both kinds share: a message, `advice`, and copies that keep every field."""

    def __init__(self, message: str, *, advice: str | None = None) -> None:
        super().__init__(message)
        self.advice = advice

    def __reduce__(self) -> tuple[Any, ...]:
        # copy.copy and pickle rebuild an exception by calling its class with `args`: a subclass
        # whose constructor takes anything else (a keyword-only argument) would raise there, or
        # come back without its fields. Rebuilt from its fields instead, whatever its constructor.
        return (_rebuilt, (type(self), self.args, dict(self.__dict__)))


def _rebuilt(kind: type[_Failure], args: tuple[Any, ...], fields: dict[str, Any]) -> _Failure:
    error = kind.__new__(kind, *args)
    error.args = args
    error.__dict__.update(fields)
    return error


class Transient(_Failure):
    """The dependency may work again while the process runs: wait, pause, show not ready."""


class Fatal(_Failure):
    """The dependency can never work with these settings: stop, and say what to change."""


__all__ = ["Fatal", "Transient"]
