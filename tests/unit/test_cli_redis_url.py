"""REDIS_URL handling shared by the commands: a URL redis-py refuses is a configuration error."""

from __future__ import annotations

import pytest

from exporter.cli.redis_url import redis_url_checked
from exporter.settings import ConfigurationError
from exporter.store.redis import RedisStore


def test_a_url_redis_py_refuses_is_a_configuration_error_naming_redis_url() -> None:
    """redis-py's ValueError for a bad scheme becomes a ConfigurationError about REDIS_URL."""
    refused = pytest.raises(ConfigurationError, match=r"^REDIS_URL is not usable: .*scheme")
    with refused, redis_url_checked():
        RedisStore.from_url("http://localhost:6379/0")
