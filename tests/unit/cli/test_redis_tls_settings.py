"""The TLS settings as the commands read them: a file from a setting or from redis-py's option in
REDIS_URL, never both; files only with rediss://; each refusal one line naming its source; and a
warning when REDIS_URL turns verification off."""

from __future__ import annotations

import pytest

from exporter.cli.parts import redis_tls
from exporter.settings import ConfigurationError, load_settings
from exporter.store.tls import TlsFiles
from tests.tls_certs import Certificates


def test_the_settings_become_the_store_s_tls_files(certificates: Certificates) -> None:
    """The three settings, checked, are the files every client of the store gets."""
    settings = load_settings(
        redis_url="rediss://:pw@cache.example:6380/0",
        redis_tls_ca_file=str(certificates.ca),
        redis_tls_cert_file=str(certificates.client_cert),
        redis_tls_key_file=str(certificates.client_key),
    )
    assert redis_tls(settings) == TlsFiles(
        str(certificates.ca), str(certificates.client_cert), str(certificates.client_key)
    )


def test_an_empty_setting_is_unset(certificates: Certificates) -> None:
    """`EXPORTER_REDIS_TLS_CA_FILE=` (compose's `${VAR:-}`) means the system's CAs."""
    settings = load_settings(redis_url="rediss://cache.example/0", redis_tls_ca_file="")
    assert settings.redis_tls_ca_file is None
    assert redis_tls(settings) == TlsFiles()


def test_redis_py_s_own_url_options_are_accepted_and_checked(certificates: Certificates) -> None:
    """`?ssl_ca_certs=` works as redis-py documents it (redis-py applies it); a bad file there is
    refused naming the option."""
    good = f"rediss://cache.example:6380/0?ssl_ca_certs={certificates.ca}"
    assert redis_tls(load_settings(redis_url=good)) == TlsFiles()
    bad = "rediss://:pw@cache.example:6380/0?ssl_ca_certs=/nowhere/ca.pem"
    with pytest.raises(ConfigurationError) as refused:
        redis_tls(load_settings(redis_url=bad))
    assert str(refused.value) == (
        "invalid configuration: REDIS_URL's ssl_ca_certs option: '/nowhere/ca.pem' does not exist"
    )


def test_a_file_named_twice_is_refused(certificates: Certificates) -> None:
    """A setting and REDIS_URL's option for the same file: redis-py would let the URL win in
    silence, so neither is guessed."""
    settings = load_settings(
        redis_url=f"rediss://cache.example/0?ssl_ca_certs={certificates.ca}",
        redis_tls_ca_file=str(certificates.ca),
    )
    with pytest.raises(ConfigurationError, match="EXPORTER_REDIS_TLS_CA_FILE and REDIS_URL's"):
        redis_tls(settings)


@pytest.mark.parametrize(
    "url",
    ["redis://:pw@cache.example:6379/0", "rediss://h1:7000,redis://h2:7001/0", "unix:///r.sock"],
)
def test_tls_files_without_rediss_are_refused(certificates: Certificates, url: str) -> None:
    """A CA bundle given for a connection that would not use TLS is a mistake, not a no-op."""
    settings = load_settings(redis_url=url, redis_tls_ca_file=str(certificates.ca))
    with pytest.raises(ConfigurationError) as refused:
        redis_tls(settings)
    assert str(refused.value) == (
        "invalid configuration: EXPORTER_REDIS_TLS_CA_FILE is set but REDIS_URL does not use "
        "TLS; begin it with rediss://"
    )
    assert "pw" not in str(refused.value)


def test_a_url_that_cannot_name_a_redis_is_said_first() -> None:
    """REDIS_URL's own mistake comes before anything about its TLS."""
    settings = load_settings(redis_url="http://cache.example/0", redis_tls_ca_file="/nowhere")
    with pytest.raises(ConfigurationError, match="REDIS_URL is not usable: the scheme"):
        redis_tls(settings)


def test_verification_turned_off_in_the_url_is_warned_about(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """redis-py's `ssl_cert_reqs=none` still works, with a warning at start-up; a verified URL
    logs nothing."""
    redis_tls(load_settings(redis_url="rediss://cache.example/0"))
    assert not caplog.records
    redis_tls(load_settings(redis_url="rediss://:pw@cache.example/0?ssl_cert_reqs=none"))
    (record,) = caplog.records
    assert record.levelname == "WARNING"
    assert "ssl_cert_reqs=none" in record.getMessage()
    assert "pw" not in record.getMessage()
