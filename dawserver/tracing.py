"""Where the process's OpenTelemetry spans go: OTLP over HTTP, the console, or nowhere.

The packages use only the OpenTelemetry API (``trace.get_tracer(__name__)``): HTTP
requests (:mod:`dawserver.request_telemetry`), applied collaboration batches
(:mod:`collab.room`), jobs enqueued and run (:mod:`jobs`) and database calls
(:mod:`database.tracing`). Until :func:`configure_tracing` installs a provider their
spans are no-ops (the request middleware skips its span), so tracing costs next to
nothing unless it is configured
(``dawserver serve --otlp-endpoint URL`` or ``OTEL_EXPORTER_OTLP_ENDPOINT``;
``--trace-console`` prints spans instead). Tests install an in-memory exporter.
"""

from __future__ import annotations

import logging

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)

log = logging.getLogger(__name__)

#: The ``service.name`` of this server's spans.
SERVICE_NAME = "maxbooster-dawserver"
#: The OTLP/HTTP path of traces, appended to a base endpoint URL.
TRACES_PATH = "/v1/traces"


class TracingError(ValueError):
    """Tracing cannot be configured as asked (the message says how to fix it)."""


def traces_url(endpoint: str) -> str:
    """The OTLP/HTTP traces URL of ``endpoint`` (a base URL such as ``http://host:4318``)."""
    if not endpoint.startswith(("http://", "https://")):
        raise TracingError(f"OTLP endpoint {endpoint!r} is not an http(s) URL; give the "
                           "collector's base URL, e.g. http://127.0.0.1:4318")
    base = endpoint.rstrip("/")
    return base if base.endswith(TRACES_PATH) else base + TRACES_PATH


def otlp_exporter(endpoint: str) -> SpanExporter:
    """An OTLP-over-HTTP (protobuf) exporter to ``endpoint``."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(endpoint=traces_url(endpoint), timeout=10)


def configure_tracing(otlp_endpoint: str | None = None, *, console: bool = False,
                      exporter: SpanExporter | None = None, batch: bool = True,
                      service_name: str = SERVICE_NAME) -> TracerProvider | None:
    """Install the process's tracer provider; None (nothing installed) when not asked for.

    Parameters
    ----------
    otlp_endpoint:
        Export to this OTLP/HTTP collector (base URL).
    console:
        Print each span as JSON on standard output.
    exporter:
        Any other exporter (tests: ``InMemorySpanExporter``).
    batch:
        Export in batches from a background thread (False: as each span ends).
    """
    exporters = [e for e in (otlp_exporter(otlp_endpoint) if otlp_endpoint else None,
                             ConsoleSpanExporter() if console else None, exporter) if e]
    if not exporters:
        return None
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    for each in exporters:
        provider.add_span_processor(BatchSpanProcessor(each) if batch
                                    else SimpleSpanProcessor(each))
    trace.set_tracer_provider(provider)
    log.info("tracing to %s", ", ".join(type(e).__name__ for e in exporters))
    return provider
