"""Signature Version 4 for SQS requests, by AWS's Common Runtime signer (awscrt).

awscrt is the C signer AWS keeps for its SDKs (botocore's own CRT signer calls it); botocore's
pure-Python SigV4Auth costs four to five times as much per request (decision 0006). The caller
passes the time, so that a clock found to be skewed can be corrected and a test can check a
signature against AWS's published examples.

A signature is a function of the keys, the request and the second it is signed in, so a request
signed again within the same second gets the same headers: the pollers' long polls of one queue
are identical, and are signed once a second instead of once each.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

import awscrt.auth
import awscrt.http

from exporter.sqs.credentials import Credentials

Header = tuple[str, str]
# Requests remembered within a second: a few queues' receives among the deletes and visibility
# changes that come between them (those differ every time and just pass through).
RECENT_REQUESTS: Final = 8

_Request = tuple[str, str, tuple[Header, ...], bytes]


@dataclass(slots=True)
class RequestSigner:
    """Signs requests to one service in one region; the CRT's provider is kept per set of keys."""

    region: str
    service: str
    _keys: Credentials | None = field(default=None, init=False, repr=False)
    _provider: object = field(default=None, init=False, repr=False)
    _second: int = field(default=-1, init=False, repr=False)
    _recent: dict[_Request, tuple[Header, ...]] = field(
        default_factory=dict, init=False, repr=False
    )

    def _provider_for(self, credentials: Credentials) -> object:
        if credentials != self._keys:  # a refresh hands out new keys; equal ones reuse it
            self._provider = awscrt.auth.AwsCredentialsProvider.new_static(
                credentials.access_key, credentials.secret_key, credentials.token
            )
            self._keys = credentials
            self._recent.clear()
        return self._provider

    def sign(
        self,
        credentials: Credentials,
        *,
        method: str,
        path: str,
        headers: Sequence[Header],
        body: bytes,
        now: datetime,
        reuse: bool = True,
    ) -> tuple[Header, ...]:
        """`headers` with X-Amz-Date, the session token if any, and Authorization added.

        `headers` must hold every header to be signed, Host included, exactly as they will be
        sent; `path` is the URI-encoded path with its query, if any. `now` must be aware (UTC).
        `reuse=False` is for a request that will not come again within its second (a delete's
        receipt handles): it is signed without being looked up or remembered.
        """
        provider = self._provider_for(credentials)
        if not reuse:
            return self._sign(
                provider,
                method=method,
                path=path,
                headers=headers,
                body=body,
                now=now,
                token=bool(credentials.token),
            )
        second = int(now.timestamp())
        if second != self._second:
            self._second = second
            self._recent.clear()
        request = (method, path, tuple(headers), body)
        signed = self._recent.pop(request, None)
        if signed is None:
            signed = self._sign(
                provider,
                method=method,
                path=path,
                headers=headers,
                body=body,
                now=now,
                token=bool(credentials.token),
            )
            if len(self._recent) >= RECENT_REQUESTS:
                del self._recent[next(iter(self._recent))]  # the least recently signed
        self._recent[request] = signed
        return signed

    def _sign(
        self,
        provider: object,
        *,
        method: str,
        path: str,
        headers: Sequence[Header],
        body: bytes,
        now: datetime,
        token: bool,
    ) -> tuple[Header, ...]:
        config = awscrt.auth.AwsSigningConfig(
            algorithm=awscrt.auth.AwsSigningAlgorithm.V4,
            signature_type=awscrt.auth.AwsSignatureType.HTTP_REQUEST_HEADERS,
            credentials_provider=provider,
            region=self.region,
            service=self.service,
            date=now,
            # Hashed here rather than streamed to the CRT: hashlib is as fast, and a stream
            # object per request costs more than the hash.
            signed_body_value=hashlib.sha256(body).hexdigest(),
        )
        request = awscrt.http.HttpRequest(method, path, awscrt.http.HttpHeaders(headers))
        # With static keys the CRT signs before returning; result() raises what it refused.
        awscrt.auth.aws_sign_request(request, config).result()
        # Only what the signer adds is read back: iterating the CRT's headers costs as much as
        # signing.
        added = request.headers
        signed = [*headers, ("X-Amz-Date", added.get("X-Amz-Date"))]
        if token:
            signed.append(("X-Amz-Security-Token", added.get("X-Amz-Security-Token")))
        signed.append(("Authorization", added.get("Authorization")))
        return tuple(signed)


__all__ = ["RECENT_REQUESTS", "Header", "RequestSigner"]
