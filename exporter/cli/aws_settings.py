"""The AWS settings as every command that talks to SQS checks them, before anything connects.

An endpoint without a scheme, an empty region, one key without the other or a profile that does
not exist used to end each command its own way, most with a traceback; here they are one
ConfigurationError naming the variable (exit 2), the same in `processor`, `produce`, `dlq` and
the demo. Where SQS is, and what to check when it never answers, are said here too.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from exporter.settings import ConfigurationError, Settings
from exporter.sqs.aws_setup import (
    credentials_problem,
    endpoint_problem,
    region_problem,
    unknown_region,
)
from exporter.sqs.wire import endpoint_for

log = logging.getLogger("exporter.aws")


def _endpoint(settings: Settings, environ: Mapping[str, str]) -> tuple[str, str] | None:
    """The endpoint variable in force and its value (as the SQS clients pick it), or None."""
    if settings.aws_endpoint_url:
        return "AWS_ENDPOINT_URL", settings.aws_endpoint_url
    if environ.get("AWS_ENDPOINT_URL_SQS"):
        return "AWS_ENDPOINT_URL_SQS", environ["AWS_ENDPOINT_URL_SQS"]
    return None


def checked_region(region: str) -> None:
    """ConfigurationError unless `region` (AWS_DEFAULT_REGION) can be signed for."""
    problem = region_problem(region)
    if problem is not None:
        raise ConfigurationError(problem)


def checked_aws(settings: Settings, environ: Mapping[str, str]) -> None:
    """ConfigurationError naming the variable for an endpoint, region or credentials that can
    never work; a warning for a region botocore does not know when AWS's endpoint is used."""
    endpoint = _endpoint(settings, environ)
    if endpoint is not None:
        problem = endpoint_problem(*endpoint)
        if problem is not None:
            raise ConfigurationError(problem)
    checked_region(settings.aws_region)
    problem = credentials_problem(environ)
    if problem is not None:
        raise ConfigurationError(problem)
    if endpoint is None:
        warning = unknown_region(settings.aws_region)
        if warning is not None:
            # Not a refusal: a region newer than botocore works (decision 0015).
            log.warning(
                "%s; going on: a region newer than botocore works, a typo never answers and "
                "ends at the start-up deadline",
                warning,
            )


def sqs_shown(settings: Settings, environ: Mapping[str, str]) -> str:
    """The SQS endpoint the settings reach, for a message."""
    endpoint = _endpoint(settings, environ)
    return endpoint_for(settings.aws_region, endpoint[1] if endpoint else None)


def sqs_fix(settings: Settings, environ: Mapping[str, str]) -> str:
    """What to check when SQS never answers: the endpoint variable in force, else the region."""
    endpoint = _endpoint(settings, environ)
    if endpoint is not None:
        return f"check the scheme (http or https), host and port in {endpoint[0]}"
    fix = (
        f"check AWS_DEFAULT_REGION ({settings.aws_region!r}) and the way to AWS from here "
        "(HTTPS_PROXY)"
    )
    warning = unknown_region(settings.aws_region)
    return f"{fix}; {warning}" if warning else fix


__all__ = ["checked_aws", "checked_region", "sqs_fix", "sqs_shown"]
