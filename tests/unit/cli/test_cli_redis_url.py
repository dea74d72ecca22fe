"""REDIS_URL as the commands read it: one node or several, refused before anything connects when
it cannot name a Redis, and never shown with its password."""

from __future__ import annotations

import pytest

from exporter.cli.parts import redis_url_checked
from exporter.settings import ConfigurationError
from exporter.store.urls import BadRedisUrl, node_urls, redacted, with_address
from tests.store_support import redis_store


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://localhost:6379/0", "redis://localhost:6379/0"),
        ("redis://:pw@redis:6379/0", "redis://:***@redis:6379/0"),
        ("rediss://app:p%40ss@cache.example/1?ssl_cert_reqs=none", "rediss://app:***@cache.example/1?ssl_cert_reqs=none"),
        ("redis://app:pw@[::1]:6379/0", "redis://app:***@[::1]:6379/0"),
        ("unix:///run/redis.sock?password=pw&db=1", "unix:///run/redis.sock?password=***&db=1"),
        ("redis://app@redis/0", "redis://app@redis/0"),
        ("redis://:bad@@host/0", "redis://:***@host/0"),
        ("redis://:pw@h1:7000,h2:7001/0", "redis://:***@h1:7000,h2:7001/0"),
        ("redis://:pw@h1:7000,redis://:pw@h2:7001", "redis://:***@h1:7000,redis://:***@h2:7001"),
    ],
)  # fmt: skip
def test_passwords_are_hidden_and_everything_else_kept(url: str, shown: str) -> None:
    """The password, in the user part or as an option, becomes ***; the rest reads as given."""
    assert redacted(url) == shown


@pytest.mark.parametrize(
    ("url", "nodes"),
    [
        ("redis://localhost:6379/0", ["redis://localhost:6379/0"]),
        ("unix:///run/redis.sock?db=1", ["unix:///run/redis.sock?db=1"]),
        (
            "redis://:pw@h1:7000,h2:7001,h3:7002/0?socket_keepalive=true",
            [
                "redis://:pw@h1:7000/0?socket_keepalive=true",
                "redis://:pw@h2:7001/0?socket_keepalive=true",
                "redis://:pw@h3:7002/0?socket_keepalive=true",
            ],
        ),
        ("redis://h1:7000, redis://h2:7001/0", ["redis://h1:7000", "redis://h2:7001/0"]),
        ("redis://[::1]:7000,[::1]:7001", ["redis://[::1]:7000", "redis://[::1]:7001"]),
        ("redis://h1:7000,h1:7000", ["redis://h1:7000"]),
    ],
)
def test_several_nodes_of_a_cluster_may_be_listed_with_commas(url: str, nodes: list[str]) -> None:
    """A list of host:port after one scheme and user part, or of full URLs, gives one URL per
    node, each with the shared credentials, database and options; duplicates once."""
    assert list(node_urls(url)) == nodes


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("garbage", "scheme must be redis://"),
        ("http://localhost:6379/0", "scheme must be redis://"),
        ("redis://:bad@@host", "'@' that is not percent-encoded"),
        ("redis://:6379/0", "no host is named"),
        ("redis://ho st:6379/0", "is not a host name"),
        ("redis://host:99999/0", "port must be a number from 1 to 65535"),
        ("redis://host:abc/0", "port must be a number"),
        ("redis://host/zero", "database number"),
        ("redis://[::1/0", "cannot be read"),
        ("redis://h1,,h2", "empty entry"),
        ("redis://h1/0,h2", "after the last one"),
        ("redis://h1,redis://h2,h3", "mixes full URLs"),
        ("unix:///a.sock,unix:///b.sock", "unix socket names one server"),
        ("redis://host/0?socket_timeout=soon", "socket_timeout"),
    ],
)
def test_a_url_that_cannot_name_a_redis_is_refused_saying_which_part(url: str, says: str) -> None:
    """Each mistake is refused with the part that is wrong, before anything connects."""
    with pytest.raises(BadRedisUrl, match=says):
        node_urls(url)


def test_an_address_is_swapped_keeping_credentials_and_options() -> None:
    """A node found in the cluster's map is reached with REDIS_URL's user, password and options."""
    assert with_address("rediss://u:p@h1:7000/0?x=1", "10.0.0.9", 7005) == (
        "rediss://u:p@10.0.0.9:7005/0?x=1"
    )
    assert with_address("redis://h1", "::1", 7001) == "redis://[::1]:7001"


def test_a_refused_url_is_a_configuration_error_naming_redis_url_redacted() -> None:
    """The store's refusal becomes a ConfigurationError about REDIS_URL, the value redacted."""
    url = "redis://:s3cret@@cache:6379/0"
    refused = pytest.raises(ConfigurationError, match=r"^REDIS_URL is not usable: .*'@'")
    with refused as caught, redis_url_checked(url):
        redis_store(url)
    assert "s3cret" not in str(caught.value)
    assert "redis://:***@cache:6379/0" in str(caught.value)
