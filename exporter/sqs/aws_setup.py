"""AWS settings that can never work, named before any call: the endpoint, the region, the keys.

One place for every command that talks to SQS (processor, produce, dlq, the demo's region), so
that each refuses the same mistake with the same line. What is decided here needs no answer from
AWS; what does (refused keys, a queue that does not exist) is classified in `errors.py`.
A credential error botocore raises while it loads a profile or runs its chain is read by
`credentials_problem`, the one table of them.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Final
from urllib.parse import urlsplit

from exporter.sqs.names import shown_value

ENDPOINT_RULE: Final = "an http:// or https:// URL with a host (e.g. http://localhost:4566)"
# AWS's region names, and the emulators' own (`elasticmq`): lower-case words joined by hyphens.
_REGION: Final = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")
_KEYS: Final = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")


def endpoint_problem(variable: str, url: str) -> str | None:
    """Why the SQS endpoint `url` (from `variable`) cannot be used, or None."""
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError as exc:
        return f"{variable} {shown_value(url)} is not {ENDPOINT_RULE}: {exc}"
    if parts.scheme in ("http", "https") and parts.hostname:
        return None
    hint = f"; did you mean 'http://{url.strip()}'?" if "://" not in url and url.strip() else ""
    return f"{variable} {shown_value(url)} is not {ENDPOINT_RULE}{hint}"


def region_problem(region: str) -> str | None:
    """Why `region` (AWS_DEFAULT_REGION) can never be signed for or reached, or None."""
    if not region.strip():
        return (
            "AWS_DEFAULT_REGION is empty: set it to the queues' region (e.g. eu-west-1), or "
            "unset it for us-east-1"
        )
    if not _REGION.fullmatch(region):
        return (
            f"AWS_DEFAULT_REGION {shown_value(region)} is not a region name: lower-case letters, "
            "digits and hyphens (e.g. eu-west-1)"
        )
    return None


@cache
def known_regions() -> frozenset[str]:
    """The regions of botocore's own endpoint data (every partition), or none if it has none.

    Read straight from the file: botocore's loader takes a second to find it, the file a few
    milliseconds.
    """
    try:
        text = (resources.files("botocore") / "data" / "partitions.json").read_text("utf-8")
        partitions = json.loads(text)["partitions"]
        return frozenset(region for partition in partitions for region in partition["regions"])
    except (OSError, ValueError, KeyError, TypeError):
        return frozenset()


def unknown_region(region: str) -> str | None:
    """A warning when AWS's endpoint for `region` is used and botocore knows no such region.

    Not a refusal: a region AWS opened after this botocore was released is real and works, and
    a typo's endpoint (sqs.<typo>.amazonaws.com) never answers, so the start-up deadline ends it
    with the host it could not reach.
    """
    known = known_regions()
    if not known or region in known:
        return None
    close = difflib.get_close_matches(region, sorted(known), n=1)
    guess = f"; did you mean {close[0]!r}?" if close else ""
    return f"AWS_DEFAULT_REGION {region!r} is not a region this botocore knows{guess}"


def credentials_problem(environ: Mapping[str, str]) -> str | None:
    """Why the credentials the environment names can never be used, or None: one key without
    the other, or an AWS_PROFILE that no config file holds."""
    key, secret = (bool(environ.get(name, "").strip()) for name in _KEYS)
    if key != secret:
        given, missing = _KEYS if key else _KEYS[::-1]
        return (
            f"{given} is set but {missing} is not: set both, or neither to use a profile or a role"
        )
    profile = environ.get("AWS_PROFILE") or environ.get("AWS_DEFAULT_PROFILE")
    if profile:
        return _profile_problem(profile)
    return None


def _profile_problem(profile: str) -> str | None:
    import botocore.session  # noqa: PLC0415 - a second of imports, only when a profile is named
    from botocore.exceptions import BotoCoreError  # noqa: PLC0415 - likewise

    try:
        profiles = botocore.session.Session().available_profiles
    except BotoCoreError as exc:
        return loading_problem(exc)
    if profile in profiles:
        return None
    close = difflib.get_close_matches(profile, profiles, n=1)
    guess = f"; did you mean {close[0]!r}?" if close else ""
    return (
        f"AWS_PROFILE {profile!r} is not a profile of the AWS config files (AWS_CONFIG_FILE, "
        f"AWS_SHARED_CREDENTIALS_FILE){guess}"
    )


# What each of botocore's credential-loading errors means to the user: the variable to look at.
# By class name, so that this module imports no botocore until one is raised.
_LOADING_ERRORS: Final[Mapping[str, str]] = {
    "PartialCredentialsError": "AWS credentials are incomplete ({exc}): set both "
    "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither",
    "ProfileNotFound": "AWS_PROFILE: {exc}",
    "ConfigParseError": "an AWS config file cannot be read ({exc}): check AWS_CONFIG_FILE and "
    "AWS_SHARED_CREDENTIALS_FILE",
    "InvalidConfigError": "the AWS configuration is invalid: {exc}",
    "CredentialRetrievalError": "AWS credentials could not be obtained: {exc}",
    "SSOTokenLoadError": "the AWS SSO session is missing or expired ({exc}): run `aws sso login`",
    "TokenRetrievalError": "the AWS SSO session is missing or expired ({exc}): run `aws sso login`",
}


def loading_problem(exc: BaseException) -> str:
    """One line for a botocore error raised while loading credentials or a profile."""
    for cls in type(exc).__mro__:
        template = _LOADING_ERRORS.get(cls.__name__)
        if template is not None:
            return template.format(exc=exc)
    return f"AWS credentials could not be loaded: {exc}"


__all__ = [
    "ENDPOINT_RULE",
    "credentials_problem",
    "endpoint_problem",
    "known_regions",
    "loading_problem",
    "region_problem",
    "unknown_region",
]
