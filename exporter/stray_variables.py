"""Environment variables that look meant for the exporter but are no setting of it: pure.

A misspelt name (`REDIS_ULR`) is not read, so its setting keeps its default, which may be a
Redis or a queue the user never meant; each such variable is named once, at start, with the
setting it most resembles. Variables that merely share a prefix for a good reason are left
alone: Kubernetes' service links (a Service `redis` gives every pod `REDIS_PORT`,
`REDIS_SERVICE_HOST`, `REDIS_PORT_6379_TCP_ADDR` ...) and the test suite's own knobs.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Final

PREFIXES: Final = ("EXPORTER_", "SQS_", "REDIS_")
# Read by the test suite and the stack test (README, docs/stack.md), never by a command.
NOT_SETTINGS: Final = frozenset(
    {"EXPORTER_TEST_TIMEOUT_SCALE", "EXPORTER_STACK_ENGINE", "EXPORTER_PODMAN_COMPOSE"}
)
# Kubernetes' service links ("Discovering services: environment variables"): for a Service
# NAME, NAME_SERVICE_HOST, NAME_SERVICE_PORT[_<port name>], NAME_PORT=tcp://ip:port and
# NAME_PORT_<port>_<PROTOCOL>[_PROTO|_PORT|_ADDR].
_SERVICE_LINK: Final = re.compile(
    r"[A-Z0-9_]+_(SERVICE_HOST|SERVICE_PORT(_[A-Z0-9_]+)?|PORT_\d+_(TCP|UDP|SCTP)(_PROTO|_PORT|_ADDR)?)"
)
# A bare NAME_PORT is a service link only by its value, so that EXPORTER_METRIC_PORT=9108 (a
# typo of EXPORTER_METRICS_PORT) is still named.
_SERVICE_LINK_PORT: Final = re.compile(r"[A-Z0-9_]+_PORT")
_SERVICE_LINK_PORT_VALUE: Final = re.compile(r"(tcp|udp|sctp)://\S+:\d+")
# How alike a name and a setting must be to suggest the setting (difflib's ratio).
_CLOSE_ENOUGH: Final = 0.75


@dataclass(frozen=True, slots=True)
class Stray:
    """A variable no setting reads, and the documented one it most resembles, if any."""

    name: str
    suggestion: str | None

    @property
    def message(self) -> str:
        """The warning's text."""
        if self.suggestion is None:
            return f"{self.name} is not a setting (docs/configuration.md lists them)"
        return f"{self.name} is not a setting; did you mean {self.suggestion}?"


def is_service_link(name: str, value: str) -> bool:
    """Whether `name=value` is one of the variables Kubernetes gives a pod for a Service."""
    if _SERVICE_LINK.fullmatch(name):
        return True
    return bool(_SERVICE_LINK_PORT.fullmatch(name) and _SERVICE_LINK_PORT_VALUE.fullmatch(value))


def strays(
    environ: Mapping[str, str],
    documented: Collection[str],
    former: Mapping[str, str],
) -> list[Stray]:
    """The variables of `environ` that look meant for a setting but are none, in name order.

    `documented` are the settings' variables; `former` maps names an older version also read
    (a setting's field name, in any case) to the variable to use now. A former name is named
    unless its setting's variable is set to the same value (platforms set AWS_REGION and
    AWS_DEFAULT_REGION together).
    """
    found = []
    for name in sorted(environ):
        if name in documented or name in NOT_SETTINGS:
            continue
        upper = name.upper()
        if upper in documented:  # a setting's name in another case, read until decision 0016
            found.append(Stray(name, upper))
            continue
        replacement = former.get(upper)
        if replacement is not None:
            if environ.get(replacement) != environ[name]:
                found.append(Stray(name, replacement))
            continue
        if not upper.startswith(PREFIXES) or is_service_link(name, environ[name]):
            continue
        found.append(Stray(name, closest(upper, documented)))
    return found


def closest(name: str, documented: Collection[str]) -> str | None:
    """The documented name `name` most resembles: one it begins (SQS_DLQ: SQS_DLQ_NAME), else
    one alike enough by difflib's measure, else None."""
    longer = [known for known in documented if known.startswith(name + "_")]
    close = difflib.get_close_matches(
        name, longer or documented, n=1, cutoff=0.0 if longer else _CLOSE_ENOUGH
    )
    return close[0] if close else None


__all__ = ["NOT_SETTINGS", "PREFIXES", "Stray", "closest", "is_service_link", "strays"]
