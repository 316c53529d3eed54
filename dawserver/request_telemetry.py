"""One aiohttp middleware that times every HTTP request and traces it.

Each request is observed in :data:`dawserver.metrics.HTTP_LATENCY` by its route's
template, method and status class, and runs inside an OpenTelemetry server span
(``GET /projects/{project_id}``) that continues a caller's ``traceparent`` header.
Without a configured tracer provider (:mod:`dawserver.tracing`) no span is made at all
(``benchmarks/bench_telemetry.py`` measures both paths).
WebSocket upgrades are left out: they last as long as the connection, and the
collaboration protocol traces each batch it applies instead (:mod:`collab.room`).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from opentelemetry import propagate, trace
from opentelemetry.trace import (
    NoOpTracerProvider,
    ProxyTracerProvider,
    Span,
    SpanKind,
    StatusCode,
)

from .metrics import HTTP_LATENCY

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: Methods labelled as themselves; any other is ``OTHER`` (labels stay bounded).
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: The route label of a request that matched no route (a 404 or 405 from the router).
UNMATCHED = "unmatched"

_tracer = trace.get_tracer(__name__)


def route_template(request: web.Request) -> str:
    """The template of the route ``request`` matched (``/projects/{project_id}``)."""
    route = request.match_info.route
    resource = route.resource if route is not None else None
    if resource is None or request.match_info.http_exception is not None:
        return UNMATCHED
    return resource.canonical


def status_class(status: int) -> str:
    """``2xx`` for 204 and so on."""
    return f"{status // 100}xx"


def tracing_enabled() -> bool:
    """Whether a tracer provider is installed (:func:`dawserver.tracing.configure_tracing`)."""
    return not isinstance(trace.get_tracer_provider(), ProxyTracerProvider | NoOpTracerProvider)


def _labels(request: web.Request) -> tuple[str, str]:
    return route_template(request), request.method if request.method in METHODS else "OTHER"


@web.middleware
async def request_telemetry(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Time ``request`` and, when tracing is configured, trace it (not WebSocket upgrades)."""
    if request.headers.get("Upgrade", "").lower() == "websocket":
        return await handler(request)
    if tracing_enabled():
        return await traced(request, handler)
    return await timed(request, handler)


async def timed(request: web.Request, handler: Handler, span: Span | None = None
                ) -> web.StreamResponse:
    """Run ``handler`` and observe its latency (and its status on ``span``)."""
    route, method = _labels(request)
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        HTTP_LATENCY.labels(route=route, method=method, status=status_class(status)).observe(
            time.perf_counter() - started)
        if span is not None:
            span.set_attribute("http.response.status_code", status)
            if status >= 500:
                span.set_status(StatusCode.ERROR)


async def traced(request: web.Request, handler: Handler) -> web.StreamResponse:
    """:func:`timed` inside a server span that continues a caller's ``traceparent``."""
    route, method = _labels(request)
    with _tracer.start_as_current_span(
            f"{method} {route}", kind=SpanKind.SERVER,
            context=propagate.extract(request.headers),
            attributes={"http.request.method": method, "http.route": route,
                        "url.path": request.path}) as span:
        return await timed(request, handler, span)
