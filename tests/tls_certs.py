"""Certificates for TLS tests, made with `openssl`: a private CA, the server's certificate for
127.0.0.1 and localhost, and the wrong ones an operator meets (another CA, expired, self-signed,
for another host), plus client certificates for mutual TLS."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.servers import ServerTls, require_binary

# Names a test server's certificate is valid for: what its tests connect to.
SERVER_NAMES = "IP:127.0.0.1,DNS:localhost"
# `openssl ca` (the only 3.0 command that takes explicit dates) needs a configuration of its own.
_CA_CONFIG = """\
[ca]
default_ca = test
[test]
database = {directory}/index.txt
new_certs_dir = {directory}
serial = {directory}/serial
default_md = sha256
policy = anything
copy_extensions = copy
unique_subject = no
[anything]
commonName = supplied
"""


@dataclass(frozen=True, slots=True)
class Certificates:
    """PEM files in one directory; `*_key` files are unencrypted private keys."""

    ca: Path
    """The private CA that signs the server's and the client's certificates."""
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    wrong_ca: Path
    """A CA that signs nothing the server presents."""
    wrong_ca_server_cert: Path
    """The server's key, certified by `wrong_ca` (a certificate rotated to another CA)."""
    expired_server_cert: Path
    """The server's key, certified by `ca` for 2020 only."""
    self_signed_server_cert: Path
    """The server's key, certified by itself."""
    other_host_server_cert: Path
    """The server's key, certified by `ca` for other.example only."""
    stranger_client_cert: Path
    stranger_client_key: Path
    """A client certificate signed by `wrong_ca`, which the server does not trust."""

    def server(self, cert: Path | None = None, *, mutual: bool = False) -> ServerTls:
        """A test server's TLS: the server's key with `cert` (the good one by default), trusting
        the private CA; with `mutual`, requiring the client certificate."""
        return ServerTls(
            cert_file=cert or self.server_cert,
            key_file=self.server_key,
            ca_file=self.ca,
            client_cert=self.client_cert if mutual else None,
            client_key=self.client_key if mutual else None,
        )


def make_certificates(directory: Path) -> Certificates:
    """Every certificate of `Certificates` in `directory` (skips without openssl locally)."""
    openssl = require_binary("openssl")
    directory.mkdir(parents=True, exist_ok=True)

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], check=True, capture_output=True, timeout=60, cwd=directory)

    def ca(name: str) -> Path:
        run(
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
            "-keyout", f"{name}.key", "-out", f"{name}.crt", "-subj", f"/CN={name}",
        )  # fmt: skip
        return directory / f"{name}.crt"

    def request(name: str, subject: str, names: str | None, *, key: str | None = None) -> Path:
        extra = ["-addext", f"subjectAltName={names}"] if names else []
        # With `key`, a request for that existing key: only the certificate differs.
        keys = ["-key", key] if key else ["-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key"]
        run("req", "-new", *keys, "-out", f"{name}.csr", "-subj", f"/CN={subject}", *extra)
        return directory / f"{name}.csr"

    def sign(csr: Path, name: str, by: str) -> Path:
        run(
            "x509", "-req", "-in", csr.name, "-CA", f"{by}.crt", "-CAkey", f"{by}.key",
            "-CAcreateserial", "-days", "30", "-copy_extensions", "copy", "-out", f"{name}.crt",
        )  # fmt: skip
        return directory / f"{name}.crt"

    ca("private-ca")
    ca("wrong-ca")
    server = request("server", "localhost", SERVER_NAMES)
    client = request("client", "exporter", None)
    stranger = request("stranger", "exporter", None)
    other_host = request("other-host", "other.example", "DNS:other.example", key="server.key")
    # Explicit dates need `openssl ca` (OpenSSL 3.0's x509 has no -not_before), with its files.
    (directory / "index.txt").write_text("")
    (directory / "serial").write_text("1000\n")
    (directory / "ca.cnf").write_text(_CA_CONFIG.format(directory=directory))
    run(
        "ca", "-batch", "-config", "ca.cnf", "-cert", "private-ca.crt", "-keyfile",
        "private-ca.key", "-in", server.name, "-out", "expired.crt", "-notext",
        "-startdate", "20200101000000Z", "-enddate", "20200102000000Z",
    )  # fmt: skip
    run(
        "x509", "-req", "-in", server.name, "-key", "server.key", "-days", "30",
        "-copy_extensions", "copy", "-out", "self-signed.crt",
    )  # fmt: skip
    return Certificates(
        ca=directory / "private-ca.crt",
        server_cert=sign(server, "server", "private-ca"),
        server_key=directory / "server.key",
        client_cert=sign(client, "client", "private-ca"),
        client_key=directory / "client.key",
        wrong_ca=directory / "wrong-ca.crt",
        wrong_ca_server_cert=sign(server, "wrong-ca-server", "wrong-ca"),
        expired_server_cert=directory / "expired.crt",
        self_signed_server_cert=directory / "self-signed.crt",
        other_host_server_cert=sign(other_host, "other-host", "private-ca"),
        stranger_client_cert=sign(stranger, "stranger", "wrong-ca"),
        stranger_client_key=directory / "stranger.key",
    )


__all__ = ["SERVER_NAMES", "Certificates", "make_certificates"]
