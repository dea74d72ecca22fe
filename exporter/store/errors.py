"""The one place that tells what a Redis error means: an outage (it heals by waiting) or a refusal
(someone must act), whether a fresh client could clear it, and what an operator should change.

The processor, `/ready`, `/health` and `/stats` all see the store's errors through this module;
the API only adds its own wording. Classes first: redis-py's exception types say most of it, and
message text is read only where redis-py has no type (a database number out of range, NOAUTH
against WRONGPASS).
"""

from __future__ import annotations

import asyncio
import re
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import redis

# redis-py's ConnectionError and TimeoutError, not the builtins of the same names.
from redis.exceptions import (
    AskError,
    AuthenticationError,
    AuthorizationError,
    BusyLoadingError,
    ClusterDownError,
    ConnectionError,
    CrossSlotTransactionError,
    InvalidResponse,
    NoPermissionError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisClusterException,
    RedisError,
    ResponseError,
    TimeoutError,
    TryAgainError,
)

from exporter.store import StoreRefused, StoreUnavailable, StoreUntrusted

REDIS_ERRORS = (RedisError, RedisClusterException)
"""What redis-py raises: its cluster client's own errors do not derive from RedisError."""

_REDIS_PACKAGE: Final = str(Path(redis.__file__).parent)
# Replies redis-py turns into classes without keeping their code; an operator searches for it.
_CODES: Final = {
    ReadOnlyError: "READONLY",
    ClusterDownError: "CLUSTERDOWN",
    OutOfMemoryError: "OOM",
    NoPermissionError: "NOPERM",
}
# Redis's own words for a database that does not exist: no redis-py class carries them.
_NO_SUCH_DATABASE: Final = ("DB index is out of range", "invalid DB index")
# What an operator must change when Redis refuses the configuration itself.
_NO_SUCH_DATABASE_ADVICE: Final = "the database number in REDIS_URL does not exist on this Redis"
_MISSING_CREDENTIALS: Final = "Redis requires a password and REDIS_URL gives none"
_REFUSED_CREDENTIALS: Final = "Redis refused the user or password in REDIS_URL"
_NO_PERMISSION: Final = (
    "the Redis user in REDIS_URL lacks a permission the exporter needs (scripts, WAIT, INFO)"
)
# TLS that failed for a cause a retry meets again (decision 0018). OpenSSL's verification codes
# (X509_V_ERR_*): a name the certificate does not list, and a certificate out of its dates.
_NAME_MISMATCH: Final = frozenset({62, 64})  # HOSTNAME_MISMATCH, IP_ADDRESS_MISMATCH
_OUT_OF_DATE: Final = frozenset({9, 10})  # CERT_NOT_YET_VALID, CERT_HAS_EXPIRED
# OpenSSL's reasons for a handshake the server refused, by what the operator must change.
_CLIENT_CERTIFICATE_MISSING: Final = frozenset(
    {"TLSV13_ALERT_CERTIFICATE_REQUIRED", "PEER_DID_NOT_RETURN_A_CERTIFICATE"}
)
_CLIENT_CERTIFICATE_REFUSED: Final = frozenset(
    {
        "TLSV1_ALERT_UNKNOWN_CA",
        "TLSV1_ALERT_ACCESS_DENIED",
        "SSLV3_ALERT_BAD_CERTIFICATE",
        "SSLV3_ALERT_CERTIFICATE_EXPIRED",
        "SSLV3_ALERT_CERTIFICATE_REVOKED",
        "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
        "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE",
    }
)
# TLS 1.2 answers a missing client certificate with a bare handshake failure, as it answers no
# version or cipher in common: the advice names both.
_NOTHING_AGREED: Final = frozenset(
    {
        "SSLV3_ALERT_HANDSHAKE_FAILURE",
        "TLSV1_ALERT_PROTOCOL_VERSION",
        "TLSV1_ALERT_INSUFFICIENT_SECURITY",
        "UNSUPPORTED_PROTOCOL",
        "NO_PROTOCOLS_AVAILABLE",
        "NO_SHARED_CIPHER",
    }
)
_NOT_TLS: Final = frozenset({"WRONG_VERSION_NUMBER"})
_CA_ADVICE: Final = "set EXPORTER_REDIS_TLS_CA_FILE to the CA bundle that signed it"
_CLIENT_FILES: Final = "EXPORTER_REDIS_TLS_CERT_FILE and EXPORTER_REDIS_TLS_KEY_FILE"
# Where redis-py names the server in its messages ("Error 1 connecting to 10.0.0.5:6379.",
# "Error while reading from 10.0.0.5:6379 : ..."): the only place the node's address is, which
# matters in a cluster whose nodes have certificates of their own.
_ADDRESS: Final = re.compile(r"(?:connecting to|reading from|writing to) (\S+?)\.?(?:\s|$)")
# How far down an exception's causes the TLS error is looked for (redis-py wraps it once or twice).
_MAX_CAUSES: Final = 8


@dataclass(frozen=True, slots=True)
class Fault:
    """What one error means for the store and the people running it."""

    refused: bool
    """Waiting alone will not clear it: logged as an error, named on /ready and /health."""
    words: str
    """Redis's (or redis-py's) own words, with the Redis error code put back."""
    reconnect: bool = False
    """A client rebuilt from scratch may clear it: the connection, the topology or the client's
    own state is what failed, not what Redis answered about the data."""
    advice: str | None = None
    """For a refused configuration: what to change, in an operator's words."""
    untrusted: bool = False
    """TLS failed for a cause a retry meets again: the words say what failed and what to set."""
    out_of_memory: bool = False
    """Redis refused a write for lack of memory: writes wait for headroom (decision 0017)."""

    def error(self, doing: str) -> StoreUnavailable | StoreRefused:
        """The store's exception for this fault, met while `doing`."""
        if self.untrusted:
            # Not "Redis said": the exporter refused the server, or the server the handshake.
            return StoreUntrusted(self.words, advice=self.advice)
        message = f"{doing}: {self.words}"
        if self.refused:
            return StoreRefused(message, advice=self.advice)
        return StoreUnavailable(message)


def classify(exc: BaseException) -> Fault:
    """What `exc`, raised by a store call into redis-py, means."""
    text = str(exc) or type(exc).__name__
    tls = _tls_fault(exc)
    if tls is not None:
        return tls
    if isinstance(exc, AuthenticationError):
        if "required" in text.lower():
            return Fault(True, f"NOAUTH {text}", advice=_MISSING_CREDENTIALS)
        return Fault(True, f"WRONGPASS {text}", advice=_REFUSED_CREDENTIALS)
    if isinstance(exc, AuthorizationError | NoPermissionError):
        return Fault(True, _coded(exc, text), advice=_NO_PERMISSION)
    if isinstance(exc, BusyLoadingError | TryAgainError):
        return Fault(False, text)  # loading its data, or a slot being moved: it passes
    if isinstance(exc, ClusterDownError | AskError | RedisClusterException):
        # A failover under way, redirections that did not settle, a topology that could not be
        # read: the cluster heals, and a client holding an old map of it may not.
        return Fault(False, _coded(exc, text), reconnect=True)
    if isinstance(exc, ReadOnlyError):
        # A replica, or a primary demoted by a failover behind a DNS name that has since moved:
        # new connections find the new primary, so rebuilding is worth trying.
        return Fault(True, _coded(exc, text), reconnect=True)
    if isinstance(exc, ResponseError):
        if any(marker in text for marker in _NO_SUCH_DATABASE):
            return Fault(True, text, advice=_NO_SUCH_DATABASE_ADVICE)
        # OOM, WRONGTYPE, a script error, cross-slot keys: Redis answered about the data.
        return Fault(True, _coded(exc, text), out_of_memory=isinstance(exc, OutOfMemoryError))
    if isinstance(exc, CrossSlotTransactionError):
        return Fault(True, text)
    if isinstance(exc, asyncio.TimeoutError):  # the builtin: a deadline of ours ran out
        return Fault(False, "no answer within the store's deadline", reconnect=True)
    if isinstance(exc, ConnectionError | TimeoutError | InvalidResponse | OSError):
        return Fault(False, text, reconnect=True)
    if raised_inside_redis_py(exc):
        # redis-py's own state broke (seen: a cluster pipeline whose connection lost its writer
        # after a node restart); only a new client clears that.
        words = f"the Redis client failed inside redis-py ({type(exc).__name__}: {text})"
        return Fault(False, words, reconnect=True)
    return Fault(False, text, reconnect=isinstance(exc, RedisError))


def _tls_fault(exc: BaseException) -> Fault | None:
    """The fault of a TLS handshake that failed for a cause a retry meets again, else None.

    redis-py wraps the ssl module's error in its ConnectionError (and a cluster client in its own
    exception again), keeping it as the cause; the error's type, verification code and OpenSSL
    reason say what failed. A TLS error of an established connection (a reset mid-record) is
    none of these, and stays an outage.
    """
    seen = 0
    found: ssl.SSLError | None = None
    address: str | None = None
    current: BaseException | None = exc
    while current is not None and seen < _MAX_CAUSES:
        if address is None and (match := _ADDRESS.search(str(current))):
            address = match.group(1)
        if isinstance(current, ssl.SSLError):
            found = current
            break
        current = current.__cause__ or current.__context__
        seen += 1
    if found is None:
        return None
    judged = _tls_judgement(found)
    if judged is None:
        return None
    what, detail, advice = judged
    words = f"TLS with {address or 'Redis'} failed: {what} ({detail}); {advice}"
    # A client built anew loads the files again: a CA bundle or certificate replaced on disk (a
    # Secret updated) takes effect without a restart, as soon as a fresh handshake passes.
    return Fault(True, words, reconnect=True, advice=advice, untrusted=True)


def _tls_judgement(error: ssl.SSLError) -> tuple[str, str, str] | None:
    """What failed, OpenSSL's own words for it, and what to change; None for a TLS error that
    waiting may clear."""
    if isinstance(error, ssl.SSLCertVerificationError):
        detail = str(error.verify_message or error.reason)
        if error.verify_code in _NAME_MISMATCH:
            return (
                "Redis's certificate is not valid for the host name in REDIS_URL",
                detail,
                "connect by a name the certificate lists (REDIS_URL), or have it reissued "
                "for this one",
            )
        if error.verify_code in _OUT_OF_DATE:
            return (
                "Redis's certificate is outside its validity dates",
                detail,
                "renew the certificate on the Redis side (or correct this machine's clock)",
            )
        return (
            "Redis's certificate is not signed by a CA this exporter trusts",
            detail,
            _CA_ADVICE,
        )
    reason = str(error.reason)
    if reason in _CLIENT_CERTIFICATE_MISSING:
        return ("Redis requires a client certificate", reason, f"set {_CLIENT_FILES}")
    if reason in _CLIENT_CERTIFICATE_REFUSED:
        return (
            "Redis refused the client certificate",
            reason,
            "give in EXPORTER_REDIS_TLS_CERT_FILE a current certificate signed by a CA that "
            "Redis trusts (its tls-ca-cert-file)",
        )
    if reason in _NOTHING_AGREED:
        return (
            "Redis refused the TLS handshake",
            reason,
            f"if Redis requires client certificates set {_CLIENT_FILES}; else compare its "
            "tls-protocols and tls-ciphers with this client's",
        )
    if reason in _NOT_TLS:
        return (
            "the server does not speak TLS on this port",
            reason,
            "use redis:// in REDIS_URL, or the port Redis serves TLS on (tls-port)",
        )
    return None


def is_redis_failure(exc: BaseException) -> bool:
    """Whether `exc` is the store's I/O failing (redis-py, the network, a deadline), not a bug of
    ours: only those become the store's errors; anything else propagates as the bug it is."""
    return isinstance(exc, (*REDIS_ERRORS, OSError)) or raised_inside_redis_py(exc)


def raised_inside_redis_py(exc: BaseException) -> bool:
    """Whether the innermost frame of `exc`'s traceback is redis-py's code, not ours."""
    trace = exc.__traceback__
    if trace is None:
        return False
    while trace.tb_next is not None:
        trace = trace.tb_next
    return trace.tb_frame.f_code.co_filename.startswith(_REDIS_PACKAGE)


def _coded(exc: BaseException, text: str) -> str:
    for kind, code in _CODES.items():
        if isinstance(exc, kind):
            return text if text.startswith(code) else f"{code} {text}"
    return text


__all__ = [
    "REDIS_ERRORS",
    "Fault",
    "classify",
    "is_redis_failure",
    "raised_inside_redis_py",
]
