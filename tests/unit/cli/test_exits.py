"""One table from what stops a command to its exit status and its one line, for every command."""

from __future__ import annotations

import importlib

import pytest

from exporter.cli.exits import ENDINGS, UsageError, ended, ending_of
from exporter.cli.ports import PortUnavailable
from exporter.cli.startup import NeverReached
from exporter.settings import ConfigurationError
from exporter.sqs.messages import SourceMisconfigured, SourceUnavailable
from exporter.store import StoreMisconfigured, StoreRefused, StoreUnavailable
from exporter.tools.producer import QueueNotFound


def test_every_name_in_the_table_is_an_exception_class() -> None:
    """The table names classes by their full names (so that it imports none): each must exist,
    where it says, and be an exception."""
    for name in ENDINGS:
        module, _, qualname = name.rpartition(".")
        found = getattr(importlib.import_module(module), qualname)
        assert isinstance(found, type)
        assert issubclass(found, BaseException), name


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (ConfigurationError("REDIS_URL is not usable"), 2),
        (UsageError("--limit must be at least 1"), 2),
        (SourceMisconfigured("no such queue"), 2),
        (QueueNotFound("queue 'events' does not exist"), 2),
        (StoreMisconfigured("shards"), 2),
        (StoreRefused("NOAUTH"), 2),
        (NeverReached("Redis did not answer"), 1),
        (PortUnavailable("port 8000 is taken"), 1),
        (SourceUnavailable("SQS receive failed"), 1),
        (StoreUnavailable("connection refused"), 1),
        (KeyboardInterrupt(), 130),
    ],
)
def test_each_kind_of_stop_has_its_status(error: BaseException, status: int) -> None:
    """A refusal or a setting exits 2, an absence 1, Ctrl-C 130; the most specific class wins
    (StoreMisconfigured is a StoreUnavailable, and exits 2)."""
    ending = ending_of(error)
    assert ending is not None
    assert ending.status == status


def test_a_command_ends_with_one_line_and_its_status(capsys: pytest.CaptureFixture[str]) -> None:
    """`exporter <command>: <line>` on stderr, and the status; SQS unreachable says so."""

    def unreachable() -> int:
        raise SourceUnavailable("SQS GetQueueUrl failed: cannot connect")

    assert ended("produce", unreachable) == 1
    assert capsys.readouterr().err.splitlines() == [
        "exporter produce: cannot reach SQS: SQS GetQueueUrl failed: cannot connect"
    ]
    assert ended("produce", lambda: 0) == 0


def test_a_bug_keeps_its_traceback() -> None:
    """An error the table does not name is not swallowed into a line."""

    def bug() -> int:
        raise ZeroDivisionError

    assert ending_of(ZeroDivisionError()) is None
    with pytest.raises(ZeroDivisionError):
        ended("processor", bug)
