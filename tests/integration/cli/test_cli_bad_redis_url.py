"""A REDIS_URL that redis-py refuses ends every command that uses Redis with one clear line."""

from __future__ import annotations

import pytest

from tests.exporter_process import run_exporter


@pytest.mark.parametrize("command", ["processor", "api", "demo"])
@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://localhost:6379/0", "scheme"),
        ("redis://:s3cret-pw@localhost:99999/0", "port"),
        ("redis://:s3cret-pw@@localhost:6379/0", "%40"),
    ],
    ids=["scheme", "port", "stray-at"],
)
def test_an_unusable_redis_url_is_one_line_and_exit_2(command: str, url: str, problem: str) -> None:
    """Exit 2 and one stderr line naming REDIS_URL and what is wrong: no traceback, no password."""
    result = run_exporter(
        [command, "--metrics-port", "0"] if command != "api" else [command],
        {"REDIS_URL": url, "EXPORTER_API_PORT": "0"},
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("exporter ")]
    assert line.startswith(f"exporter {command}: REDIS_URL is not usable:")
    assert problem in line
    assert "s3cret-pw" not in result.stderr + result.stdout
