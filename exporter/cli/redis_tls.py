"""TLS to Redis as the commands set it up: the CA bundle and client certificate settings, or
redis-py's own options in REDIS_URL, checked once before anything connects (decision 0018)."""

from __future__ import annotations

import logging
from typing import Final

from exporter.cli.redis_url import redis_url_checked
from exporter.settings import ConfigurationError, Settings, env_name
from exporter.store.tls import (
    URL_OPTIONS,
    BadTlsFile,
    Role,
    TlsFiles,
    check_files,
    url_files,
    verification_off,
)
from exporter.store.urls import node_urls

SETTINGS: Final = ("redis_tls_ca_file", "redis_tls_cert_file", "redis_tls_key_file")
"""The settings of every command that talks to Redis (processor, api, demo)."""

_FIELDS: Final[dict[Role, str]] = dict(zip(URL_OPTIONS, SETTINGS, strict=True))

log = logging.getLogger(__name__)


def redis_tls(settings: Settings) -> TlsFiles:
    """The TLS files the store's clients get; a file that cannot serve is a ConfigurationError
    naming the setting (or REDIS_URL's option) that gave it.

    A file may come from a setting or from redis-py's option in REDIS_URL (`ssl_ca_certs`,
    `ssl_certfile`, `ssl_keyfile`), not both: redis-py would let the URL win in silence. Files
    given to a URL that is not `rediss://` are refused too: the connection would not use TLS.
    """
    url = settings.redis_url
    with redis_url_checked(url):
        seeds = node_urls(url)  # a URL that cannot name a Redis is said first, as such
    given = TlsFiles(
        settings.redis_tls_ca_file, settings.redis_tls_cert_file, settings.redis_tls_key_file
    )
    in_url = url_files(url)
    for role, field in _FIELDS.items():
        if given.path(role) and in_url.path(role):
            raise ConfigurationError(
                f"invalid configuration: {env_name(field)} and REDIS_URL's "
                f"{URL_OPTIONS[role]} option both name a file; keep one (the setting)"
            )

    def named_by(role: Role) -> str:
        field = _FIELDS[role]
        return env_name(field) if given.path(role) else f"REDIS_URL's {URL_OPTIONS[role]} option"

    effective = TlsFiles(*(given.path(role) or in_url.path(role) for role in URL_OPTIONS))
    if effective and any(not seed.lower().startswith("rediss://") for seed in seeds):
        role = next(role for role in URL_OPTIONS if effective.path(role))
        raise ConfigurationError(
            f"invalid configuration: {named_by(role)} is set but REDIS_URL does not use TLS; "
            "begin it with rediss://"
        )
    try:
        check_files(effective)
    except BadTlsFile as exc:
        raise ConfigurationError(f"invalid configuration: {named_by(exc.role)}: {exc}") from None
    off = verification_off(url)
    if off is not None:
        log.warning(
            "Redis's certificate is not fully verified (%s in REDIS_URL): whoever can reach the "
            "network path can pose as Redis; prefer EXPORTER_REDIS_TLS_CA_FILE",
            off,
        )
    return given


__all__ = ["SETTINGS", "redis_tls"]
