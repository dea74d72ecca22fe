"""REDIS_URL handling shared by the commands: redaction for display, errors as configuration."""

from __future__ import annotations

import pytest

from exporter.cli.redis_url import redis_url_checked
from exporter.settings import ConfigurationError
from exporter.store.redis import RedisStore
from exporter.store.urls import redacted


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://localhost:6379/0", "redis://localhost:6379/0"),
        ("redis://:pw@redis:6379/0", "redis://:***@redis:6379/0"),
        ("rediss://app:p%40ss@cache.example/1?ssl_cert_reqs=none", "rediss://app:***@cache.example/1?ssl_cert_reqs=none"),
        ("redis://app:pw@[::1]:6379/0", "redis://app:***@[::1]:6379/0"),
        ("unix:///run/redis.sock?password=pw&db=1", "unix:///run/redis.sock?password=***&db=1"),
        ("redis://app@redis/0", "redis://app@redis/0"),
    ],
)  # fmt: skip
def test_passwords_are_hidden_and_everything_else_kept(url: str, shown: str) -> None:
    """The password, in the user part or as an option, becomes ***; the rest reads as given."""
    assert redacted(url) == shown


def test_a_url_redis_py_refuses_is_a_configuration_error_naming_redis_url() -> None:
    """redis-py's ValueError for a bad scheme becomes a ConfigurationError about REDIS_URL."""
    refused = pytest.raises(ConfigurationError, match=r"^REDIS_URL is not usable: .*scheme")
    with refused, redis_url_checked():
        RedisStore.from_url("http://localhost:6379/0")
