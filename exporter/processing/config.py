"""How the consume loop behaves: plain values, built by the CLI from the settings."""

from __future__ import annotations

from dataclasses import dataclass

from exporter.events import DEFAULT_MAX_MESSAGE_BYTES, NO_DIMENSIONS, ContractOptions


@dataclass(frozen=True, slots=True)
class ProcessorConfig:
    """How the loop behaves; built by the CLI from the settings."""

    pollers: int = 4
    visibility_timeout_seconds: int = 30
    shutdown_timeout_seconds: float = 20.0
    queue_depth_interval_seconds: float = 15.0
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    unwrap_envelopes: bool = True
    # The dimensions events are read with; the store must have been built with the same ones.
    contract: ContractOptions = NO_DIMENSIONS
    backoff_base_seconds: float = 0.2
    backoff_cap_seconds: float = 10.0
    # A paused processor probes the store at least this often: polling resumes within about
    # this long of Redis taking writes again (docs/reliability.md measures it).
    store_probe_cap_seconds: float = 1.0
    # How long each receive may wait for messages (SQS_WAIT_TIME_SECONDS): a stop abandons
    # receives that may wait longer than ABANDON_RECEIVES_LONGER_THAN_SECONDS.
    receive_wait_seconds: int = 20


__all__ = ["ProcessorConfig"]
