"""AWS Signature Version 4, as AWS documents it: the headers that sign one HTTP request.

Pure (no I/O, no clock): the caller passes the time and the credentials, so that a test can check a
signature against AWS's published examples and against botocore's own signer.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

ALGORITHM: Final = "AWS4-HMAC-SHA256"


@dataclass(frozen=True, slots=True)
class Credentials:
    """One consistent set of keys (never mixed across a refresh); `token` for temporary ones."""

    access_key: str
    secret_key: str = field(repr=False)
    token: str | None = field(default=None, repr=False)


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


@dataclass(slots=True)
class Signer:
    """Signs requests to one service in one region, reusing the day's signing key."""

    region: str
    service: str
    _key_for: tuple[str, str] | None = field(default=None, init=False, repr=False)
    _key: bytes = field(default=b"", init=False, repr=False)

    def signing_key(self, secret_key: str, day: str) -> bytes:
        """The key for `day` (YYYYMMDD): four HMACs, so computed once a day per secret."""
        if self._key_for != (secret_key, day):
            key = _hmac(f"AWS4{secret_key}".encode(), day)
            for part in (self.region, self.service, "aws4_request"):
                key = _hmac(key, part)
            self._key_for, self._key = (secret_key, day), key
        return self._key

    def sign(
        self,
        credentials: Credentials,
        *,
        method: str,
        path: str,
        query: str,
        headers: Mapping[str, str],
        body: bytes,
        now: datetime,
    ) -> dict[str, str]:
        """The headers to add to the request: X-Amz-Date, the token if any, Authorization.

        `headers` must hold every header to be signed, Host included, exactly as they will be
        sent; `path` and `query` are already URI-encoded and `query`'s parameters sorted.
        """
        stamp = now.strftime("%Y%m%dT%H%M%SZ")
        day = stamp[:8]
        added = {"X-Amz-Date": stamp}
        if credentials.token:
            added["X-Amz-Security-Token"] = credentials.token
        signed = {name.lower(): " ".join(value.split()) for name, value in headers.items()}
        signed.update((name.lower(), value) for name, value in added.items())
        names = sorted(signed)
        signed_headers = ";".join(names)
        canonical = "\n".join(
            (
                method,
                path,
                query,
                "".join(f"{name}:{signed[name]}\n" for name in names),
                signed_headers,
                hashlib.sha256(body).hexdigest(),
            )
        )
        scope = f"{day}/{self.region}/{self.service}/aws4_request"
        to_sign = "\n".join(
            (ALGORITHM, stamp, scope, hashlib.sha256(canonical.encode()).hexdigest())
        )
        key = self.signing_key(credentials.secret_key, day)
        signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        added["Authorization"] = (
            f"{ALGORITHM} Credential={credentials.access_key}/{scope}, "
            f"SignedHeaders={signed_headers}, Signature={signature}"
        )
        return added


__all__ = ["ALGORITHM", "Credentials", "Signer"]
