"""TLS to Redis as a user meets it at start-up, with the real commands and real TLS servers: a
certificate that does not verify, a host name it does not list, a client certificate Redis wants
or refuses, a file that cannot serve: each exits 2 at once with one line naming what failed and
the setting to fix, never the password, and never after retrying as if Redis were down."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.integration.cli.test_cli_lifecycle import one_line, run_command
from tests.servers import MotoServer, RedisServer
from tests.tls_certs import Certificates

PASSWORD = "tls-secret-pw"
# Logged once by a start-up that takes a failure for an outage and waits it out.
RETRYING = "Redis is not reachable yet; retrying"

# Each case: the server it meets, the exporter's TLS settings, and what its one line must say.
CASES = {
    "wrong CA": ("good", {"ca": "wrong_ca"}, ["not signed by a CA", "EXPORTER_REDIS_TLS_CA_FILE"]),
    "no CA given": ("good", {}, ["not signed by a CA", "EXPORTER_REDIS_TLS_CA_FILE"]),
    "self-signed": ("self-signed", {"ca": "ca"}, ["self-signed certificate", "TLS_CA_FILE"]),
    "expired": ("expired", {"ca": "ca"}, ["certificate has expired", "renew the certificate"]),
    "other host": ("other-host", {"ca": "ca"}, ["not valid for the host name", "REDIS_URL"]),
    "no client certificate": (
        "mutual",
        {"ca": "ca"},
        ["requires a client certificate", "EXPORTER_REDIS_TLS_CERT_FILE"],
    ),
    "client certificate refused": (
        "mutual",
        {"ca": "ca", "cert": "stranger_client_cert", "key": "stranger_client_key"},
        ["refused the client certificate", "EXPORTER_REDIS_TLS_CERT_FILE"],
    ),
}
_VARIABLES = {
    "ca": "EXPORTER_REDIS_TLS_CA_FILE",
    "cert": "EXPORTER_REDIS_TLS_CERT_FILE",
    "key": "EXPORTER_REDIS_TLS_KEY_FILE",
}


@pytest.fixture(name="tls_servers", scope="module")
def fixture_tls_servers(
    certificates: Certificates, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, RedisServer]]:
    """One TLS-only redis-server per certificate a user may meet, for the module."""
    presented = {
        "good": None,
        "self-signed": certificates.self_signed_server_cert,
        "expired": certificates.expired_server_cert,
        "other-host": certificates.other_host_server_cert,
        "mutual": None,
    }
    servers: dict[str, RedisServer] = {}
    try:
        for name, cert in presented.items():
            tls = certificates.server(mutual=name == "mutual")
            server = RedisServer(tmp_path_factory.mktemp(f"tls-{name}"), tls=tls)
            server.start()
            servers[name] = server
            if cert is not None:
                # Started with the good certificate (the helper's PING verifies it), then given
                # the one under test, as an operator rotating it would.
                with redis.Redis(port=server.port, **tls.client_options()) as client:
                    client.config_set("tls-cert-file", str(cert))
        yield servers
    finally:
        for server in servers.values():
            server.stop()


def _env(server: RedisServer, certificates: Certificates, files: dict[str, str]) -> dict[str, str]:
    env = {"REDIS_URL": server.url.replace("rediss://", f"rediss://:{PASSWORD}@")}
    for role, attribute in files.items():
        env[_VARIABLES[role]] = str(getattr(certificates, attribute))
    return env


# Every case on the processor; the API builds its store the same way, so three cases show it.
COMMAND_CASES = [("processor", case) for case in CASES] + [
    ("api", case) for case in ("wrong CA", "other host", "no client certificate")
]


@pytest.mark.parametrize(("command", "case"), COMMAND_CASES)
def test_a_tls_failure_at_start_exits_2_with_one_line(
    command: str,
    case: str,
    tls_servers: dict[str, RedisServer],
    certificates: Certificates,
    moto_server: MotoServer,
) -> None:
    """Exit 2 and one line naming what failed (OpenSSL's words too) and what to set; no
    password, no traceback, and no waiting for Redis as for an outage (exit 1 after 60 s)."""
    server_name, files, said = CASES[case]
    server = tls_servers[server_name]
    # The processor finds SQS before Redis: it needs a queue to get as far as Redis.
    result = run_command(command, _env(server, certificates, files), moto_server)
    assert result.returncode == 2, result.stderr
    line = one_line(result, command)
    assert line.startswith(f"exporter {command}: Redis at rediss://:***@127.0.0.1:{server.port}/0")
    assert f"TLS with 127.0.0.1:{server.port} failed" in line
    for words in said:
        assert words in line
    assert PASSWORD not in result.stderr + result.stdout
    if server_name != "mutual":
        # The exporter's own verification fails in the handshake, the same way every time. A
        # server refusing the client's certificate under TLS 1.3 alerts after the client's side
        # of the handshake is done, and the reset that follows may reach the client first: that
        # first try reads as a lost connection, and the refusal comes on a retry.
        assert RETRYING not in result.stderr


@pytest.mark.parametrize("case", ["wrong CA", "no client certificate"])
def test_the_demo_with_a_tls_redis_url_refuses_rather_than_falling_back(
    case: str, tls_servers: dict[str, RedisServer], certificates: Certificates
) -> None:
    """`exporter demo` with REDIS_URL set: a Redis whose TLS fails is the user's Redis refusing,
    not an absent one, so the demo says so and exits 2 instead of starting a private one."""
    server_name, files, said = CASES[case]
    result = run_command("demo", _env(tls_servers[server_name], certificates, files))
    assert result.returncode == 2, result.stderr
    line = one_line(result, "demo")
    for words in said:
        assert words in line
    assert "private redis-server" not in result.stdout + result.stderr
    assert PASSWORD not in result.stderr + result.stdout


_MISTAKES = {
    "missing": ("EXPORTER_REDIS_TLS_CA_FILE", "does not exist"),
    "directory": ("EXPORTER_REDIS_TLS_CA_FILE", "is a directory"),
    "not PEM": ("EXPORTER_REDIS_TLS_CA_FILE", "holds no PEM certificate"),
    "another key": ("EXPORTER_REDIS_TLS_KEY_FILE", "is not the key of"),
}


@pytest.mark.parametrize(
    ("command", "mistake"),
    [("processor", mistake) for mistake in _MISTAKES] + [("api", "missing"), ("demo", "missing")],
)
def test_a_tls_file_that_cannot_serve_exits_2_naming_the_setting(
    command: str,
    mistake: str,
    tls_servers: dict[str, RedisServer],
    certificates: Certificates,
    tmp_path: Path,
) -> None:
    """A file that does not exist, cannot be read or is not what the setting needs: exit 2 with
    one line naming the setting and the file, before anything connects."""
    setting, problem = _MISTAKES[mistake]
    files = {"ca": "ca", "cert": "client_cert", "key": "client_key"}
    env = _env(tls_servers["mutual"], certificates, files)
    env[setting] = {
        "missing": str(tmp_path / "nowhere.pem"),
        "directory": str(tmp_path),
        "not PEM": str(certificates.client_key),
        "another key": str(certificates.stranger_client_key),
    }[mistake]
    result = run_command(command, env)
    assert result.returncode == 2, result.stderr
    line = one_line(result, command)
    assert line.startswith(f"exporter {command}: invalid configuration: {setting}: ")
    assert problem in line
    assert PASSWORD not in result.stderr + result.stdout
