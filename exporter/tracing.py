"""OpenTelemetry setup from the standard `OTEL_*` variables; a no-op when nothing is configured."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from opentelemetry import trace

from exporter import __version__

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Tracing:
    """The configured provider (None when tracing is off); `shutdown` flushes pending spans."""

    provider: TracerProvider | None

    @property
    def enabled(self) -> bool:
        """Whether spans are exported."""
        return self.provider is not None

    def tracer(self, name: str) -> trace.Tracer:
        """A tracer of this provider, or the global (no-op) one when tracing is off."""
        if self.provider is None:
            return trace.get_tracer(name)
        return self.provider.get_tracer(name, __version__)

    def shutdown(self) -> None:
        """Export what is buffered and stop the exporter."""
        if self.provider is not None:
            self.provider.force_flush()
            self.provider.shutdown()


def traces_endpoint(environ: Mapping[str, str]) -> str | None:
    """The OTLP/HTTP traces URL the standard variables name, or None when tracing is off."""
    explicit = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    if explicit:
        return explicit
    base = environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    if base:
        # The spec's rule: the signal path is appended to the generic endpoint.
        return base.rstrip("/") + "/v1/traces"
    return None


def configure_tracing(
    environ: Mapping[str, str], *, service_name: str, set_global: bool = True
) -> Tracing:
    """OTLP/HTTP export when an OTLP endpoint variable is set, else nothing at all.

    The exporter, sampler and resource read their own `OTEL_*` variables (the standard ones);
    `service_name` only applies when `OTEL_SERVICE_NAME` is unset.
    """
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return Tracing(None)
    # The standard switch for "no trace exporter", honoured even when an endpoint is set.
    if environ.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none":
        return Tracing(None)
    endpoint = traces_endpoint(environ)
    if endpoint is None:
        return Tracing(None)
    # Imported only now: the SDK and the OTLP exporter cost half a second, tracing or not.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
        OTLPSpanExporter,
    )
    from opentelemetry.sdk.resources import Resource  # noqa: PLC0415
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
    from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: PLC0415

    attributes = {"service.version": __version__}
    if not environ.get("OTEL_SERVICE_NAME"):
        attributes["service.name"] = service_name
    provider = TracerProvider(resource=Resource.create(attributes))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    if set_global:
        trace.set_tracer_provider(provider)
    log.info("tracing on: exporting spans over OTLP/HTTP")
    return Tracing(provider)


__all__ = ["Tracing", "configure_tracing", "traces_endpoint"]
