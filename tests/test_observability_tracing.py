"""OpenTelemetry spans of a running server, JSON logs with trace ids, the OTLP exporter."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import numpy as np
import pytest
import soundfile as sf
from aiohttp import web
from click.testing import CliRunner
from loopback import free_port
from nodepeer import running_server
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind
from tracing_helpers import children, one, span_exporter

from collab.client import SyncClient
from dawclient.channel import connect
from dawserver.assets import ASSETS
from dawserver.cli import main
from dawserver.config import ServerConfig
from dawserver.keys import STORE, TOKENS
from dawserver.log_format import JsonFormatter
from dawserver.projects import import_session
from dawserver.tracing import TracingError, otlp_exporter, traces_url
from dsp_core.session import Clip, Session, Track

BOUNCES = "/projects/{project_id}/bounces"


async def _project(app: web.Application, tmp_path: Path) -> str:
    audio = tmp_path / "tone.flac"
    sf.write(audio, np.full(9600, 0.1, dtype=np.float32), 48000)
    session = Session(name="T", tracks=[Track("t1", clips=[Clip(str(audio), 0, 9600)])])
    return (await import_session(app[STORE], session, assets=app[ASSETS])).project_id


@pytest.mark.asyncio
async def test_a_request_that_enqueues_a_bounce_and_its_run_form_one_trace(
        tmp_path: Path) -> None:
    exporter = span_exporter()
    config = ServerConfig(port=free_port(), data_dir=tmp_path / "data")
    async with running_server(config) as app, aiohttp.ClientSession() as http:
        project_id = await _project(app, tmp_path)
        token = app[TOKENS].issue(project_id, "editor", "eddie")
        exporter.clear()
        async with http.post(f"{config.base_url}/projects/{project_id}/bounces", json={},
                             headers={"Authorization": f"Bearer {token}"}) as answer:
            assert answer.status in (201, 202), await answer.text()
        deadline = time.monotonic() + 30
        while not any(s.name == "jobs.run bounce" for s in exporter.get_finished_spans()):
            assert time.monotonic() < deadline, "the bounce never ran"
            await asyncio.sleep(0.05)
    spans = list(exporter.get_finished_spans())
    request = one(spans, f"POST {BOUNCES}")
    assert request.kind is SpanKind.SERVER and request.parent is None
    assert request.attributes["http.route"] == BOUNCES
    assert request.attributes["http.response.status_code"] in (201, 202)
    enqueue = one(children(spans, request), "jobs.enqueue bounce")
    assert enqueue.kind is SpanKind.PRODUCER
    # the INSERT of the job runs inside the enqueue span, on the database layer
    inserts = [s for s in children(spans, enqueue) if s.name == "db INSERT"]
    assert inserts and "INSERT INTO jobs" in inserts[0].attributes["db.query.text"]
    assert inserts[0].kind is SpanKind.CLIENT
    assert inserts[0].attributes["db.system.name"] == "sqlite"
    run = one(spans, "jobs.run bounce")
    assert run.kind is SpanKind.CONSUMER
    assert run.context.trace_id == request.context.trace_id
    assert run.parent.span_id == enqueue.context.span_id
    assert run.attributes["jobs.outcome"] == "done" and run.attributes["jobs.attempt"] == 1
    assert any(s.name.startswith("db ") for s in children(spans, run))  # it records its end
    # every span of the request's trace hangs from the request
    by_id = {s.context.span_id: s for s in spans}
    for span in spans:
        if span.context.trace_id == request.context.trace_id and span is not request:
            node = span
            while node.parent is not None:
                node = by_id[node.parent.span_id]
            assert node is request


@pytest.mark.asyncio
async def test_each_applied_batch_of_edits_is_a_span_with_the_project_id(
        tmp_path: Path) -> None:
    exporter = span_exporter()
    config = ServerConfig(port=free_port(), data_dir=tmp_path / "data")
    async with running_server(config) as app:
        project_id = await _project(app, tmp_path)
        token = app[TOKENS].issue(project_id, "editor", "eddie")
        async with connect(f"{config.collab_url}/{project_id}", token) as channel, \
                SyncClient(channel) as client:
            await client.wait_synced()
            exporter.clear()
            client.document.rename("traced")
            deadline = time.monotonic() + 10
            while not any(s.name == "collab.apply_batch"
                          for s in exporter.get_finished_spans()):
                assert time.monotonic() < deadline, "the edit was never applied"
                await asyncio.sleep(0.02)
    spans = list(exporter.get_finished_spans())
    batch = next(s for s in spans if s.name == "collab.apply_batch")
    assert batch.attributes["project.id"] == project_id
    assert batch.parent is None
    # the store's append is a database call of the batch
    assert any(s.name.startswith("db ") for s in children(spans, batch))


def test_json_logs_carry_the_active_spans_ids() -> None:
    span_exporter()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("tests.json_logs")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    try:
        with trace.get_tracer("tests").start_as_current_span("work") as span:
            logger.info("inside %s", "a span")
        logger.warning("outside")
    finally:
        logger.removeHandler(handler)
    inside, outside = (json.loads(line) for line in stream.getvalue().splitlines())
    context = span.get_span_context()
    assert inside["message"] == "inside a span" and inside["level"] == "INFO"
    assert inside["trace_id"] == format(context.trace_id, "032x")
    assert inside["span_id"] == format(context.span_id, "016x")
    assert outside["message"] == "outside" and "trace_id" not in outside


@pytest.mark.asyncio
async def test_the_otlp_exporter_posts_protobuf_spans_to_a_collector() -> None:
    received: list[ExportTraceServiceRequest] = []

    async def collect(request: web.Request) -> web.Response:
        assert request.content_type == "application/x-protobuf"
        message = ExportTraceServiceRequest()
        message.ParseFromString(await request.read())
        received.append(message)
        return web.Response(body=b"", content_type="application/x-protobuf")

    collector = web.Application()
    collector.router.add_post("/v1/traces", collect)
    runner = web.AppRunner(collector)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        provider = TracerProvider()  # its own provider: the process's one stays as it is
        provider.add_span_processor(SimpleSpanProcessor(otlp_exporter(
            f"http://127.0.0.1:{port}")))
        loop = asyncio.get_running_loop()
        # the exporter posts synchronously (requests): keep it off the collector's loop
        await loop.run_in_executor(None, _one_span, provider)
        provider.shutdown()
    finally:
        await runner.cleanup()
    names = [span.name for message in received for resource in message.resource_spans
             for scope in resource.scope_spans for span in scope.spans]
    assert names == ["exported"]


def _one_span(provider: TracerProvider) -> None:
    with provider.get_tracer("tests").start_as_current_span("exported"):
        pass


def test_an_otlp_endpoint_must_be_an_http_url() -> None:
    assert traces_url("http://c:4318") == "http://c:4318/v1/traces"
    assert traces_url("http://c:4318/v1/traces") == "http://c:4318/v1/traces"
    with pytest.raises(TracingError, match="http://127.0.0.1:4318"):
        traces_url("c:4318")


@pytest.mark.asyncio
async def test_serve_with_an_otlp_endpoint_exports_its_request_spans_and_logs_json(
        tmp_path: Path) -> None:
    received: list[ExportTraceServiceRequest] = []

    async def collect(request: web.Request) -> web.Response:
        message = ExportTraceServiceRequest()
        message.ParseFromString(await request.read())
        received.append(message)
        return web.Response(body=b"", content_type="application/x-protobuf")

    collector = web.Application()
    collector.router.add_post("/v1/traces", collect)
    runner = web.AppRunner(collector)
    await runner.setup()
    collector_port, port = free_port(), free_port()
    await web.TCPSite(runner, "127.0.0.1", collector_port).start()
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root), "DAW_LOG_FORMAT": "json",
           "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{collector_port}"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "dawserver", "-v", "serve", "--port", str(port), "--data",
         str(tmp_path / "data")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env=env, text=True)
    try:
        async with aiohttp.ClientSession() as http:
            deadline = time.monotonic() + 60
            while True:
                assert proc.poll() is None, proc.stdout.read()
                try:
                    async with http.get(f"http://127.0.0.1:{port}/healthz") as answer:
                        if answer.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                assert time.monotonic() < deadline, "the server did not start"
                await asyncio.sleep(0.1)
        proc.send_signal(signal.SIGINT)  # stopping flushes the batched spans
        loop = asyncio.get_running_loop()
        output, _ = await loop.run_in_executor(None, lambda: proc.communicate(timeout=30))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        await runner.cleanup()
    spans = [(span.name, {a.key: a.value for a in resource.resource.attributes})
             for message in received for resource in message.resource_spans
             for scope in resource.scope_spans for span in scope.spans]
    assert "GET /healthz" in {name for name, _ in spans}
    services = {attrs["service.name"].string_value for _, attrs in spans}
    assert services == {"maxbooster-dawserver"}
    logged = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert any(entry["logger"] == "dawserver.app" and "database ready" in entry["message"]
               for entry in logged), output


def test_serve_refuses_an_otlp_endpoint_that_is_not_a_url(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["serve", "--data", str(tmp_path),
                                       "--otlp-endpoint", "collector:4318"])
    assert result.exit_code == 1
    assert "http://127.0.0.1:4318" in result.output and "collector:4318" in result.output
