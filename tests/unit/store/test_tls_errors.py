"""TLS failures a retry meets again (a certificate that does not verify, a handshake the server
refuses) are refusals that name what failed and the setting to fix; a TLS error of an established
connection stays an outage. The exceptions are built as redis-py raises them: the ssl module's
error as the cause of its ConnectionError (and of the cluster client's exception around that)."""

from __future__ import annotations

import ssl

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException

from exporter.store import StoreRefused, StoreUntrusted
from exporter.store.errors import classify

ADDRESS = "10.0.0.5:6380"


def _verification(code: int, message: str) -> ssl.SSLCertVerificationError:
    error = ssl.SSLCertVerificationError(1, f"certificate verify failed: {message}")
    error.verify_code = code
    error.verify_message = message
    error.reason = "CERTIFICATE_VERIFY_FAILED"
    return error


def _alert(reason: str) -> ssl.SSLError:
    error = ssl.SSLError(1, f"[SSL: {reason}] {reason.lower()}")
    error.reason = reason
    return error


def _as_redis_py_raises(error: ssl.SSLError, *, cluster: bool = False) -> Exception:
    """`error` wrapped as redis-py wraps it: implicitly chained, as `raise` inside `except`."""
    try:
        try:
            raise error
        except OSError:
            raise RedisConnectionError(f"Error 1 connecting to {ADDRESS}. {error}") from None
    except RedisConnectionError as wrapped:
        wrapped.__context__ = error
        if not cluster:
            return wrapped
        outer = RedisClusterException(f"Redis Cluster cannot be connected: {wrapped}")
        outer.__cause__ = wrapped
        return outer


@pytest.mark.parametrize("cluster", [False, True], ids=["one-node", "cluster"])
@pytest.mark.parametrize(
    ("error", "what", "setting"),
    [
        (
            _verification(19, "self-signed certificate in certificate chain"),
            "not signed by a CA this exporter trusts",
            "EXPORTER_REDIS_TLS_CA_FILE",
        ),
        (
            _verification(18, "self-signed certificate"),
            "not signed by a CA this exporter trusts",
            "EXPORTER_REDIS_TLS_CA_FILE",
        ),
        (
            _verification(10, "certificate has expired"),
            "outside its validity dates",
            "renew the certificate",
        ),
        (
            _verification(64, "IP address mismatch, certificate is not valid for '10.0.0.5'."),
            "not valid for the host name in REDIS_URL",
            "REDIS_URL",
        ),
        (
            _alert("TLSV13_ALERT_CERTIFICATE_REQUIRED"),
            "requires a client certificate",
            "EXPORTER_REDIS_TLS_CERT_FILE and EXPORTER_REDIS_TLS_KEY_FILE",
        ),
        (
            _alert("TLSV1_ALERT_UNKNOWN_CA"),
            "refused the client certificate",
            "EXPORTER_REDIS_TLS_CERT_FILE",
        ),
        (
            _alert("SSLV3_ALERT_HANDSHAKE_FAILURE"),
            "refused the TLS handshake",
            "EXPORTER_REDIS_TLS_CERT_FILE",
        ),
        (_alert("WRONG_VERSION_NUMBER"), "does not speak TLS", "redis://"),
    ],
    ids=[
        "unknown-ca",
        "self-signed",
        "expired",
        "host-name",
        "client-cert-missing",
        "client-cert-refused",
        "handshake",
        "not-tls",
    ],
)
def test_a_tls_failure_a_retry_meets_again_is_a_refusal_naming_what_to_set(
    error: ssl.SSLError, what: str, setting: str, cluster: bool
) -> None:
    """Each names the node, what failed, OpenSSL's words and what to change; it is refused (a
    start-up exits 2), yet worth a new client, which reads the files again."""
    fault = classify(_as_redis_py_raises(error, cluster=cluster))
    assert fault.refused
    assert fault.untrusted
    assert fault.reconnect
    assert fault.words.startswith(f"TLS with {ADDRESS} failed: ")
    assert what in fault.words
    assert setting in fault.words
    assert fault.advice is not None
    assert setting in fault.advice
    classified = classify(_as_redis_py_raises(error, cluster=cluster)).error("Redis apply failed")
    assert isinstance(classified, StoreUntrusted)
    assert isinstance(classified, StoreRefused)
    assert classified.configuration
    assert str(classified) == fault.words


@pytest.mark.parametrize(
    "reason", ["UNEXPECTED_EOF_WHILE_READING", "DECRYPTION_FAILED_OR_BAD_RECORD_MAC"]
)
def test_a_tls_error_of_an_established_connection_stays_an_outage(reason: str) -> None:
    """A connection cut mid-record is the network, not a certificate: it heals by waiting."""
    fault = classify(_as_redis_py_raises(_alert(reason)))
    assert not fault.refused
    assert not fault.untrusted
    assert fault.reconnect
