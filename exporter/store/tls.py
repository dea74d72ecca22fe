"""The files of TLS to Redis: which CA to trust and, for mutual TLS, the client's certificate and
key; each checked before anything connects, so that a wrong path is one line at start-up rather
than a connection failing for ever (decision 0018)."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Final, Literal
from urllib.parse import parse_qs, urlsplit

Role = Literal["ca", "cert", "key"]

# redis-py's own URL options for the same files (`rediss://host?ssl_ca_certs=/ca.pem`).
URL_OPTIONS: Final[dict[Role, str]] = {
    "ca": "ssl_ca_certs",
    "cert": "ssl_certfile",
    "key": "ssl_keyfile",
}
# redis-py's URL options that turn a part of the server's verification off.
_VERIFICATION_OFF: Final = {
    "ssl_cert_reqs": ("none", "optional"),
    "ssl_check_hostname": ("false", "no", "0", "n", "f"),
}


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """Paths of PEM files for TLS to Redis; None where the default holds (the system's CAs, no
    client certificate)."""

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None

    def path(self, role: Role) -> str | None:
        """The file of `role`, or None."""
        return {"ca": self.ca_file, "cert": self.cert_file, "key": self.key_file}[role]

    def client_options(self) -> dict[str, str]:
        """The keyword arguments redis-py's clients take for these files (the same for one node,
        a cluster and every probe)."""
        return {URL_OPTIONS[role]: path for role in URL_OPTIONS if (path := self.path(role))}

    def __bool__(self) -> bool:
        return any(self.path(role) for role in URL_OPTIONS)


class BadTlsFile(ValueError):
    """A TLS file that cannot be used; `role` says which, the message what is wrong with it."""

    def __init__(self, role: Role, message: str) -> None:
        super().__init__(message)
        self.role: Role = role


class _EncryptedKey(Exception):
    """The private key asks for a password (raised from the password callback)."""


def url_files(url: str) -> TlsFiles:
    """The TLS files REDIS_URL names with redis-py's own options (of its last node, whose options
    apply to all)."""
    query = parse_qs(urlsplit(url.rsplit(",", maxsplit=1)[-1]).query)

    def option(role: Role) -> str | None:
        values = query.get(URL_OPTIONS[role])
        return values[-1] if values else None

    return TlsFiles(option("ca"), option("cert"), option("key"))


def verification_off(url: str) -> str | None:
    """The redis-py option in REDIS_URL that turns a part of certificate verification off, as
    written (`ssl_cert_reqs=none`); None when the server is fully verified."""
    query = parse_qs(urlsplit(url.rsplit(",", maxsplit=1)[-1]).query)
    for name, off in _VERIFICATION_OFF.items():
        values = query.get(name)
        if values and values[-1].strip().lower() in off:
            return f"{name}={values[-1]}"
    return None


def check_files(files: TlsFiles) -> None:
    """Raise BadTlsFile unless every file given can be read and loaded as TLS would load it.

    A file that is missing, unreadable, not PEM, a key that does not match its certificate or that
    is encrypted: each is found here, as the same OpenSSL calls redis-py makes would find it at
    the first connection, where it would look like Redis being down.
    """
    context = ssl.create_default_context()
    for role in URL_OPTIONS:
        path = files.path(role)
        if path is not None:
            _readable(role, path)
    if files.ca_file is not None:
        try:
            context.load_verify_locations(cafile=files.ca_file)
        except ssl.SSLError:
            raise BadTlsFile(
                "ca", f"{files.ca_file!r} holds no PEM certificate (a CA bundle is one or more)"
            ) from None
    if files.key_file is not None and files.cert_file is None:
        raise BadTlsFile("key", "a private key without a client certificate; give both")
    if files.cert_file is not None:
        _check_pair(files.cert_file, files.key_file)


def _readable(role: Role, path: str) -> None:
    try:
        with open(path, "rb") as handle:
            handle.read(1)
    except FileNotFoundError:
        raise BadTlsFile(role, f"{path!r} does not exist") from None
    except IsADirectoryError:
        raise BadTlsFile(role, f"{path!r} is a directory, not a file") from None
    except PermissionError:
        raise BadTlsFile(
            role, f"{path!r} cannot be read by this user (permission denied)"
        ) from None
    except OSError as exc:
        raise BadTlsFile(role, f"{path!r} cannot be read: {exc.strerror or exc}") from None


def _check_pair(cert_file: str, key_file: str | None) -> None:
    # Loaded as a CA first only to tell a certificate file that holds no certificate from a key
    # that cannot be read: OpenSSL says "PEM lib" for both.
    try:
        ssl.create_default_context().load_verify_locations(cafile=cert_file)
    except ssl.SSLError:
        raise BadTlsFile("cert", f"{cert_file!r} holds no PEM certificate") from None

    def no_password() -> bytes:
        raise _EncryptedKey

    key_role: Role = "cert" if key_file is None else "key"
    key_shown = repr(key_file if key_file is not None else cert_file)
    try:
        ssl.create_default_context().load_cert_chain(cert_file, key_file, password=no_password)
    except _EncryptedKey:
        raise BadTlsFile(
            key_role, f"the private key in {key_shown} is encrypted; give it unencrypted"
        ) from None
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            raise BadTlsFile(
                key_role, f"the private key in {key_shown} is not the key of {cert_file!r}"
            ) from None
        raise BadTlsFile(key_role, f"{key_shown} holds no PEM private key") from None


__all__ = [
    "URL_OPTIONS",
    "BadTlsFile",
    "Role",
    "TlsFiles",
    "check_files",
    "url_files",
    "verification_off",
]
