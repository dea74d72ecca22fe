"""The store's Lua scripts (exporter/store/lua/), registered with the client they run on."""

from __future__ import annotations

from importlib import resources

from redis.commands.core import AsyncScript

from exporter.store.connection import Client


def _lua(name: str) -> str:
    return resources.files("exporter.store").joinpath(f"lua/{name}.lua").read_text()


def _admitting(name: str) -> str:
    """A script that admits dimension values, after the admission rule both such scripts share
    (Redis runs each script alone: one text, no includes)."""
    return _lua("admission") + _lua(name)


class Scripts:
    """One registered script per file: redis-py sends EVALSHA, loading the script when needed."""

    def __init__(self, client: Client) -> None:
        self.apply: AsyncScript = client.register_script(_admitting("apply"))
        self.register: AsyncScript = client.register_script(_admitting("register"))
        self.reset: AsyncScript = client.register_script(_lua("reset"))
        self.clear: AsyncScript = client.register_script(_lua("clear"))
        self.layout: AsyncScript = client.register_script(_lua("layout"))
        self.probe: AsyncScript = client.register_script(_lua("probe"))
        self.read: AsyncScript = client.register_script(_lua("read"))


__all__ = ["Scripts"]
