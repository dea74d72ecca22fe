"""The TLS files are checked before anything connects: each that cannot serve (missing, not a
file, not PEM, a key not of its certificate, an encrypted key) is named with what is wrong."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from exporter.store.tls import BadTlsFile, TlsFiles, check_files, url_files, verification_off
from tests.servers import require_binary
from tests.tls_certs import Certificates


def test_usable_files_pass_and_become_redis_py_options(certificates: Certificates) -> None:
    """A CA bundle, a client certificate and its key load; redis-py gets them by its own names."""
    files = TlsFiles(
        str(certificates.ca), str(certificates.client_cert), str(certificates.client_key)
    )
    check_files(files)
    assert files.client_options() == {
        "ssl_ca_certs": str(certificates.ca),
        "ssl_certfile": str(certificates.client_cert),
        "ssl_keyfile": str(certificates.client_key),
    }
    assert not TlsFiles()
    assert TlsFiles().client_options() == {}


def test_a_certificate_file_that_holds_its_key_needs_no_key_file(
    certificates: Certificates, tmp_path: Path
) -> None:
    """One PEM with the certificate and its key (as some secret stores hand it out) serves."""
    both = tmp_path / "client.pem"
    both.write_bytes(certificates.client_cert.read_bytes() + certificates.client_key.read_bytes())
    check_files(TlsFiles(cert_file=str(both)))


@pytest.mark.parametrize(
    ("case", "role", "problem"),
    [
        ("missing CA", "ca", "does not exist"),
        ("CA is a directory", "ca", "is a directory"),
        ("CA is a key", "ca", "holds no PEM certificate"),
        ("empty certificate", "cert", "holds no PEM certificate"),
        ("key of another certificate", "key", "is not the key of"),
        ("key is not PEM", "key", "holds no PEM private key"),
        ("key without certificate", "key", "without a client certificate"),
        ("certificate without key", "cert", "holds no PEM private key"),
    ],
)
def test_a_file_that_cannot_serve_is_named_with_what_is_wrong(
    certificates: Certificates, tmp_path: Path, case: str, role: str, problem: str
) -> None:
    """Each mistake is found here, with the file's role, instead of at the first handshake."""
    empty = tmp_path / "empty.pem"
    empty.write_text("")
    ca, cert, key = (
        str(certificates.ca),
        str(certificates.client_cert),
        str(certificates.client_key),
    )
    files = {
        "missing CA": TlsFiles(ca_file=str(tmp_path / "nope.pem")),
        "CA is a directory": TlsFiles(ca_file=str(tmp_path)),
        "CA is a key": TlsFiles(ca_file=key),
        "empty certificate": TlsFiles(ca, str(empty), key),
        "key of another certificate": TlsFiles(ca, cert, str(certificates.stranger_client_key)),
        "key is not PEM": TlsFiles(ca, cert, str(certificates.ca)),
        "key without certificate": TlsFiles(ca, None, key),
        "certificate without key": TlsFiles(ca, cert, None),
    }[case]
    with pytest.raises(BadTlsFile) as refused:
        check_files(files)
    assert refused.value.role == role
    assert problem in str(refused.value)


def test_an_encrypted_key_is_refused_without_asking_for_a_password(
    certificates: Certificates, tmp_path: Path
) -> None:
    """OpenSSL would prompt on the terminal (or hang a container) for the pass phrase; the check
    refuses the key instead."""
    openssl = require_binary("openssl")
    encrypted = tmp_path / "encrypted.key"
    subprocess.run(
        [
            openssl, "rsa", "-in", str(certificates.client_key), "-aes128",
            "-passout", "pass:secret", "-out", str(encrypted),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    files = TlsFiles(str(certificates.ca), str(certificates.client_cert), str(encrypted))
    with pytest.raises(BadTlsFile, match="is encrypted") as refused:
        check_files(files)
    assert refused.value.role == "key"


def test_redis_py_s_url_options_are_read_from_the_last_node() -> None:
    """`ssl_ca_certs` and friends in REDIS_URL, whose options (after the last node) apply to all;
    options that turn verification off are found as written."""
    url = "rediss://:pw@h1:7000,h2:7001/0?ssl_ca_certs=/ca.pem&ssl_certfile=/c.pem&ssl_keyfile=/k"
    assert url_files(url) == TlsFiles("/ca.pem", "/c.pem", "/k")
    assert url_files("rediss://h1:6379/0") == TlsFiles()
    assert verification_off("rediss://h:1/0?ssl_cert_reqs=none") == "ssl_cert_reqs=none"
    assert verification_off("rediss://h:1/0?ssl_check_hostname=False") == (
        "ssl_check_hostname=False"
    )
    assert verification_off("rediss://h:1/0?ssl_cert_reqs=required") is None
    assert verification_off("rediss://h:1/0") is None
