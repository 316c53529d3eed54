"""What the request middleware costs: metrics always, spans when tracing is configured.

One aiohttp request (resolved by a real router, no network) handled three ways in each
round: the bare handler (baseline), the middleware's path with tracing off (the default:
:func:`dawserver.request_telemetry.timed`, a histogram observation) and on
(:func:`~dawserver.request_telemetry.traced`, a span from an SDK tracer exporting to
memory as each span ends). The
figures are microseconds per request and same-run ratios to the bare handler.

Run by hand (``DAW_BENCH_SMOKE=1`` shortens it to a check that it runs)::

    python -m pytest benchmarks/bench_telemetry.py -s -p no:cacheprovider
"""

from __future__ import annotations

import asyncio
import statistics

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from benchmarks.conftest import SMOKE, median_ratio, record, rounds_of
from dawserver import request_telemetry as telemetry

REQUESTS = 200 if SMOKE else 5000


async def _handler(request: web.Request) -> web.Response:
    return web.Response(text="ok")


def test_request_telemetry_overhead(benchmark) -> None:
    app = web.Application()
    app.router.add_get("/projects/{project_id}", _handler)
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("bench")
    loop = asyncio.new_event_loop()

    async def request() -> web.Request:
        req = make_mocked_request("GET", "/projects/p1", app=app)
        req._match_info = await app.router.resolve(req)  # as the server's router does
        return req

    req = loop.run_until_complete(request())

    def run(tracing: bool | None) -> None:
        async def many() -> None:
            if tracing is None:
                for _ in range(REQUESTS):
                    await _handler(req)
                return
            telemetry._tracer = tracer
            path = telemetry.traced if tracing else telemetry.timed
            for _ in range(REQUESTS):
                await path(req, _handler)
            exporter.clear()

        loop.run_until_complete(many())

    saved = telemetry._tracer
    try:
        times = rounds_of({"bare": lambda: run(None), "off": lambda: run(False),
                           "on": lambda: run(True)})
    finally:
        telemetry._tracer = saved
        loop.close()
    per_us = {name: statistics.median(t) / REQUESTS * 1e6 for name, t in times.items()}
    figures = {"bare_us": per_us["bare"], "metrics_only_us": per_us["off"],
               "traced_us": per_us["on"],
               "added_metrics_only_us": per_us["off"] - per_us["bare"],
               "added_traced_us": per_us["on"] - per_us["bare"],
               "bare_over_metrics_only": median_ratio(times, "bare", "off"),
               "metrics_only_over_traced": median_ratio(times, "off", "on")}
    record(benchmark, **figures)
    assert all(v > 0 for k, v in figures.items() if not k.startswith("added"))
    if not SMOKE:
        print(figures)


pytestmark = pytest.mark.timeout(300)
