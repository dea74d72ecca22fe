"""The AWS settings that can never work, found before any call: the endpoint, the region and the
keys, each named by its variable; and botocore's credential errors read as one line."""

from __future__ import annotations

from pathlib import Path

import pytest
from botocore.exceptions import PartialCredentialsError, ProfileNotFound

from exporter.sqs.aws_setup import (
    credentials_problem,
    endpoint_problem,
    known_regions,
    loading_problem,
    region_problem,
    unknown_region,
)


@pytest.mark.parametrize(
    "url",
    ["http://localhost:4566", "https://sqs.eu-west-1.amazonaws.com", "http://[::1]:5000/x"],
)
def test_an_http_url_with_a_host_is_an_endpoint(url: str) -> None:
    """What AWS and the emulators use passes."""
    assert endpoint_problem("AWS_ENDPOINT_URL", url) is None


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("localhost:4566", "did you mean 'http://localhost:4566'?"),
        ("ftp://host", "is not an http:// or https:// URL with a host"),
        ("http://", "is not an http:// or https:// URL with a host"),
        ("http://host:99999", "Port out of range"),
        ("", "is not an http:// or https:// URL"),
    ],
)
def test_anything_else_is_named_with_its_variable(url: str, said: str) -> None:
    """An endpoint without a scheme (a ValueError traceback before) is one line, with a guess."""
    problem = endpoint_problem("AWS_ENDPOINT_URL_SQS", url)
    assert problem is not None
    assert problem.startswith(f"AWS_ENDPOINT_URL_SQS {url!r} is not")
    assert said in problem


def test_a_password_in_an_endpoint_is_not_repeated() -> None:
    """An endpoint URL with credentials in it is named without them."""
    problem = endpoint_problem("AWS_ENDPOINT_URL", "ftp://me:s3cret@host")
    assert problem is not None
    assert "s3cret" not in problem


@pytest.mark.parametrize(
    ("region", "said"),
    [
        ("", "AWS_DEFAULT_REGION is empty"),
        ("  ", "AWS_DEFAULT_REGION is empty"),
        ("EU-WEST-1", "is not a region name"),
        ("eu west 1", "is not a region name"),
    ],
)
def test_a_region_no_signature_can_use_is_refused(region: str, said: str) -> None:
    """An empty region (an awscrt RuntimeError before) or one that is no region name."""
    problem = region_problem(region)
    assert problem is not None
    assert said in problem


@pytest.mark.parametrize("region", ["us-east-1", "eu-central-2", "cn-north-1", "elasticmq"])
def test_region_names_pass(region: str) -> None:
    """AWS's regions and an emulator's own name are region names."""
    assert region_problem(region) is None


def test_an_unknown_region_is_a_warning_with_the_closest_known_one() -> None:
    """A region botocore's data does not list gets a guess; a known one nothing."""
    assert "us-east-1" in known_regions()
    assert unknown_region("eu-west-1") is None
    warning = unknown_region("eu-wset-1")
    assert warning is not None
    assert warning.startswith("AWS_DEFAULT_REGION 'eu-wset-1' is not a region this botocore knows")
    assert "did you mean 'eu-west-1'?" in warning


@pytest.mark.parametrize(
    ("environ", "said"),
    [
        ({"AWS_ACCESS_KEY_ID": "k"}, "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not"),
        (
            {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "s"},
            "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not",
        ),
    ],
)
def test_half_a_key_pair_is_named(environ: dict[str, str], said: str) -> None:
    """One key without the other can never sign (botocore's PartialCredentialsError)."""
    assert (
        credentials_problem(environ) == f"{said}: set both, or neither to use a profile or a role"
    )


def test_a_profile_must_be_in_the_config_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AWS_PROFILE naming a profile of AWS_CONFIG_FILE passes; another is named with a guess,
    even when keys are set too (the keys would win in silence)."""
    config = tmp_path / "config"
    config.write_text("[profile analytics]\nregion = eu-west-1\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    assert credentials_problem({"AWS_PROFILE": "analytics"}) is None
    problem = credentials_problem(
        {"AWS_PROFILE": "analytcs", "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"}
    )
    assert problem is not None
    assert problem.startswith("AWS_PROFILE 'analytcs' is not a profile of the AWS config files")
    assert "did you mean 'analytics'?" in problem
    assert credentials_problem({}) is None


def test_botocores_loading_errors_are_one_line_naming_what_to_fix() -> None:
    """The errors botocore raises while loading credentials read as one line each."""
    partial = loading_problem(
        PartialCredentialsError(provider="env", cred_var="AWS_SECRET_ACCESS_KEY")
    )
    assert "AWS_SECRET_ACCESS_KEY" in partial
    assert "set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY" in partial
    assert loading_problem(ProfileNotFound(profile="x")).startswith("AWS_PROFILE: ")
    assert loading_problem(ValueError("odd")) == "AWS credentials could not be loaded: odd"
