"""Where the SQS client's credentials come from: botocore's own provider chain, read per request.

The chain is botocore's (environment, profile, SSO, web identity, container and instance roles),
so every way a user gives boto3 credentials still works. Refreshable credentials are asked for a
frozen copy before each request, so a refresh happens when botocore says it is due; when one is due,
the refresh (a network call) runs in a thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from exporter.sqs.aws_setup import loading_problem
from exporter.sqs.errors import CredentialsMissing, CredentialsUnusable

if TYPE_CHECKING:
    from botocore.credentials import Credentials as BotocoreCredentials


@dataclass(frozen=True, slots=True)
class Credentials:
    """One consistent set of keys (never mixed across a refresh); `token` for temporary ones."""

    access_key: str
    secret_key: str = field(repr=False)
    token: str | None = field(default=None, repr=False)


class CredentialSource(Protocol):
    """Gives the credentials to sign the next request with."""

    async def current(self) -> Credentials:
        """One consistent set of keys, refreshed first when due."""
        ...


@dataclass(frozen=True, slots=True)
class StaticCredentials:
    """Keys that never change (access key and secret in the environment, or a test's)."""

    credentials: Credentials

    async def current(self) -> Credentials:
        """The keys."""
        return self.credentials


@dataclass(frozen=True, slots=True)
class ChainCredentials:
    """Credentials botocore's provider chain found, refreshable or not."""

    found: BotocoreCredentials

    async def current(self) -> Credentials:
        """A frozen copy; a refresh that is due runs in a thread."""
        refresh_needed = getattr(self.found, "refresh_needed", None)
        if refresh_needed is not None and refresh_needed():
            frozen = await asyncio.to_thread(self.found.get_frozen_credentials)
        else:
            frozen = self.found.get_frozen_credentials()
        return Credentials(frozen.access_key or "", frozen.secret_key or "", frozen.token or None)


def _from_environment(environ: Mapping[str, str]) -> Credentials | None:
    """Static keys from the environment, when botocore's chain would take exactly these.

    The environment is the chain's first provider; with an expiry time set it re-reads the
    variables, so that case (and every other) is left to botocore.
    """
    access_key = environ.get("AWS_ACCESS_KEY_ID", "")
    secret_key = environ.get("AWS_SECRET_ACCESS_KEY", "")
    if not access_key or not secret_key or environ.get("AWS_CREDENTIAL_EXPIRATION"):
        return None
    token = environ.get("AWS_SESSION_TOKEN") or environ.get("AWS_SECURITY_TOKEN") or None
    return Credentials(access_key, secret_key, token)


def load_chain() -> CredentialSource:
    """Run botocore's provider chain (blocking: it may ask the instance metadata service);
    CredentialsMissing when it finds none, CredentialsUnusable when it fails on a setting."""
    import botocore.session  # noqa: PLC0415 - a second of imports, only when the chain is needed
    from botocore.exceptions import BotoCoreError  # noqa: PLC0415 - likewise

    try:
        found = botocore.session.get_session().get_credentials()
    except BotoCoreError as exc:  # a profile that does not exist, half a key pair, a bad file
        raise CredentialsUnusable(loading_problem(exc)) from exc
    if found is None:
        raise CredentialsMissing("no AWS credentials found")
    return ChainCredentials(found)


async def find_credentials(environ: Mapping[str, str]) -> CredentialSource:
    """Static keys from the environment at once, else botocore's chain (in a thread)."""
    static = _from_environment(environ)
    if static is not None:
        return StaticCredentials(static)
    return await asyncio.to_thread(load_chain)


__all__ = [
    "ChainCredentials",
    "CredentialSource",
    "Credentials",
    "StaticCredentials",
    "find_credentials",
    "load_chain",
]
