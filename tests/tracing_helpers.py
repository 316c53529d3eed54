"""One in-memory span exporter for the test process (a tracer provider is set once)."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from dawserver.tracing import configure_tracing

_EXPORTER = InMemorySpanExporter()


def span_exporter() -> InMemorySpanExporter:
    """The exporter every span of this process ends in (installed on first use), emptied."""
    provider = trace.get_tracer_provider()
    if not getattr(provider, "_test_exporter", False):
        if isinstance(provider, TracerProvider):  # someone set one: add ours to it
            provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        else:
            provider = configure_tracing(exporter=_EXPORTER, batch=False)
        provider._test_exporter = True  # type: ignore[union-attr]
    _EXPORTER.clear()
    return _EXPORTER


def children(spans: list[ReadableSpan], parent: ReadableSpan) -> list[ReadableSpan]:
    """The spans whose parent is ``parent``."""
    return [s for s in spans if s.parent is not None
            and s.parent.span_id == parent.context.span_id]


def one(spans: list[ReadableSpan], name: str) -> ReadableSpan:
    """The one span named ``name``."""
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, f"{len(found)} spans named {name!r} in {[s.name for s in spans]}"
    return found[0]
