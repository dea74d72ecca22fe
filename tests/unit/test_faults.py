"""The two kinds of failure: siblings a caller catches by name, copied with every field."""

from __future__ import annotations

import copy
import pickle

import pytest

from exporter.faults import Fatal, Transient
from exporter.sqs.messages import SourceMisconfigured, SourceUnavailable
from exporter.store import (
    ReplicasMissing,
    StoreMisconfigured,
    StoreRefused,
    StoreUnavailable,
    StoreUnfit,
    StoreUntrusted,
)


@pytest.mark.parametrize(
    "kind",
    [
        StoreUnavailable,
        StoreRefused,
        StoreUntrusted,
        StoreUnfit,
        ReplicasMissing,
        SourceUnavailable,
    ],
)
def test_what_may_clear_while_running_is_transient_and_never_fatal(kind: type[Exception]) -> None:
    """Outages and refusals that clear while the process runs are Transient, not Fatal."""
    assert issubclass(kind, Transient)
    assert not issubclass(kind, Fatal)


@pytest.mark.parametrize("kind", [StoreMisconfigured, SourceMisconfigured])
def test_what_never_clears_is_fatal_and_no_transient_except_catches_it(
    kind: type[Exception],
) -> None:
    """A fatal error is caught by no transient store or source `except` clause."""
    assert issubclass(kind, Fatal)
    assert not issubclass(kind, Transient | StoreUnavailable | StoreRefused | SourceUnavailable)


def test_outages_and_refusals_are_siblings() -> None:
    """The caller tells an outage from a refusal by the clause that catches it."""
    assert not issubclass(StoreRefused, StoreUnavailable)
    assert not issubclass(StoreUnavailable, StoreRefused)


class _WithKeywordOnly(Transient):
    def __init__(self, message: str, *, node: str) -> None:
        super().__init__(message, advice=f"look at {node}")
        self.node = node


def test_copies_and_pickles_keep_every_field_whatever_the_constructor_takes() -> None:
    """copy.copy and pickle give back the class, message, advice and a subclass's own fields,
    for a constructor with a required keyword-only argument too."""
    error = _WithKeywordOnly("OOM", node="10.0.0.5:6379")
    for twin in (copy.copy(error), pickle.loads(pickle.dumps(error))):  # noqa: S301 - our own bytes
        assert type(twin) is _WithKeywordOnly
        assert twin is not error
        assert str(twin) == "OOM"
        assert twin.advice == "look at 10.0.0.5:6379"
        assert twin.node == "10.0.0.5:6379"
    counted = copy.copy(ReplicasMissing("0 of 2", acknowledged=0, required=2))
    assert (counted.acknowledged, counted.required) == (0, 2)
