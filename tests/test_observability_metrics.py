"""The metrics of issue 19 on a running server: each one read from ``/metrics`` moves."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import numpy as np
import pytest
import pytest_asyncio
import soundfile as sf
from limits import parse as parse_limit
from loopback import free_port
from metrics_helpers import scrape, value
from nodepeer import running_server

from collab.client import SyncClient
from dawclient.channel import connect
from dawserver.config import ServerConfig
from dawserver.keys import BACKGROUND, RATE_LIMITER, STORE, TOKENS
from dawserver.projects import import_session
from dsp_core.session import Clip, Session, Track

pytestmark = pytest.mark.asyncio

PROJECT_ROUTE = "/projects/{project_id}"


class Server:
    def __init__(self, app, config: ServerConfig, http: aiohttp.ClientSession) -> None:
        self.app, self.config, self.http = app, config, http

    async def project(self, tmp_path: Path, name: str) -> str:
        audio = tmp_path / f"{name}.flac"
        sf.write(audio, np.full(4800, 0.1, dtype=np.float32), 48000)
        session = Session(name=name, tracks=[Track("t1", clips=[Clip(str(audio), 0, 4800)])])
        return (await import_session(self.app[STORE], session)).project_id

    def token(self, project_id: str, role: str = "owner") -> str:
        return self.app[TOKENS].issue(project_id, role, "olga")

    async def scrape(self):
        return await scrape(self.http, self.config.base_url)


@pytest_asyncio.fixture
async def server(tmp_path: Path):
    config = ServerConfig(port=free_port(), data_dir=tmp_path / "data",
                          idle_unload_seconds=0.2)
    async with running_server(config) as app, aiohttp.ClientSession() as http:
        yield Server(app, config, http)


async def test_request_latency_is_counted_by_route_template_method_and_status_class(
        server: Server, tmp_path: Path) -> None:
    project_id = await server.project(tmp_path, "latency")
    before = await server.scrape()
    headers = {"Authorization": f"Bearer {server.token(project_id)}"}
    for _ in range(3):
        async with server.http.get(f"{server.config.base_url}/projects/{project_id}",
                                   headers=headers) as answer:
            assert answer.status == 200
    async with server.http.get(f"{server.config.base_url}/projects/{project_id}") as answer:
        assert answer.status == 401
    async with server.http.get(f"{server.config.base_url}/no/such/{project_id}") as answer:
        assert answer.status == 404
    after = await server.scrape()

    def moved(route: str, status: str) -> float:
        name = "http_request_duration_seconds_count"
        labels = {"route": route, "method": "GET", "status": status}
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved(PROJECT_ROUTE, "2xx") == 3
    assert moved(PROJECT_ROUTE, "4xx") == 1
    assert moved("unmatched", "4xx") == 1
    # the raw path never becomes a label: the project's id appears in no sample
    assert not any(project_id in v for _, labels in after for _, v in labels)


async def test_render_counts_its_realtime_factor(server: Server, tmp_path: Path) -> None:
    project_id = await server.project(tmp_path, "render")
    before = await server.scrape()
    url = f"{server.config.base_url}/projects/{project_id}/render?frames=48000"
    async with server.http.get(url, headers={
            "Authorization": f"Bearer {server.token(project_id, 'viewer')}"}) as answer:
        assert answer.status == 200
    after = await server.scrape()
    count = "render_realtime_factor_count"
    assert value(after, count, kind="render") == value(before, count, kind="render") + 1
    rendered = (value(after, "render_realtime_factor_sum", kind="render")
                - value(before, "render_realtime_factor_sum", kind="render"))
    assert rendered > 1  # one second of a one-track project renders faster than real time


async def test_documents_loaded_and_edit_propagation_follow_a_session(
        server: Server, tmp_path: Path) -> None:
    project_id = await server.project(tmp_path, "edits")
    before = await server.scrape()
    url = f"{server.config.collab_url}/{project_id}"
    async with connect(url, server.token(project_id)) as channel, \
            SyncClient(channel) as client:
        await client.wait_synced()
        during = await server.scrape()
        assert value(during, "collab_documents_loaded") == \
            value(before, "collab_documents_loaded") + 1
        for n in range(3):
            client.document.rename(f"edit {n}")
            await asyncio.sleep(0.05)
        deadline = time.monotonic() + 10
        name = "collab_edit_propagation_seconds_count"
        while value(await server.scrape(), name) < value(before, name) + 3:
            assert time.monotonic() < deadline, "the edits were never relayed"
            await asyncio.sleep(0.05)
    deadline = time.monotonic() + 10  # idle_unload_seconds=0.2: the room goes
    while value(await server.scrape(), "collab_documents_loaded") != \
            value(before, "collab_documents_loaded"):
        assert time.monotonic() < deadline, "the document was never unloaded"
        await asyncio.sleep(0.05)


async def test_queue_depth_and_oldest_due_job_are_read_at_scrape_time(
        server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    import dawserver.api

    monkeypatch.setattr(dawserver.api, "METRICS_QUEUE_MAX_AGE_S", 0.0)  # each scrape reads
    queue = server.app[BACKGROUND].queue  # "obs-idle" has no worker: its jobs wait
    late = await queue.enqueue("obs-idle", {}, account_id="acct", delay_s=-30)
    await queue.enqueue("obs-idle", {}, account_id="acct", delay_s=3600)  # not due yet
    samples = await server.scrape()
    assert value(samples, "jobs_queue_depth", queue="obs-idle", state="queued") == 2
    assert value(samples, "jobs_oldest_due_age_seconds", queue="obs-idle") >= 30
    await queue.cancel("acct", late.id)
    samples = await server.scrape()
    assert value(samples, "jobs_queue_depth", queue="obs-idle", state="queued") == 1
    assert value(samples, "jobs_oldest_due_age_seconds", queue="obs-idle") == 0
    # the server's own queues are listed even while empty
    assert ("jobs_queue_depth", frozenset({("queue", "bounce"), ("state", "queued")})) \
        in samples


async def test_rate_limit_rejections_are_counted_by_plan(server: Server) -> None:
    limiter = server.app[RATE_LIMITER]
    limiter.plans = {**limiter.plans, "free": parse_limit("2/minute")}
    before = await server.scrape()
    decisions = [await limiter.hit("key-1", "free") for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, False, False]
    after = await server.scrape()
    name = "ratelimit_rejections_total"
    assert value(after, name, plan="free") == value(before, name, plan="free") + 2


async def test_each_live_mix_frame_is_timed_for_the_audio_slo(tmp_path: Path) -> None:
    from prometheus_client import REGISTRY
    from room_helpers import project_room

    from collab.store import open_store
    from dawserver.live_mix import LiveMix

    def sample(name: str) -> float:
        return REGISTRY.get_sample_value(name) or 0.0

    audio = tmp_path / "tone.flac"
    sf.write(audio, np.full(48000, 0.1, dtype=np.float32), 48000)
    async with open_store(None, tmp_path) as store:
        info = await import_session(store, Session(name="mix", tracks=[
            Track("t1", clips=[Clip(str(audio), 0, 48000)])]))
        async with project_room(info.project_id, store) as room:
            count = sample("audio_frame_processing_seconds_count")
            total = sample("audio_frame_processing_seconds_sum")
            async with LiveMix(room) as mix:
                deadline = time.monotonic() + 10
                while mix.frames_made < 10:
                    assert time.monotonic() < deadline, "the live mix made no frames"
                    await asyncio.sleep(0.02)
            made = mix.frames_made
            assert sample("audio_frame_processing_seconds_count") - count == made
            assert sample("audio_frame_processing_seconds_sum") - total == \
                pytest.approx(mix.render_seconds)


async def test_scrapes_close_together_share_one_read_of_the_queue(tmp_path: Path) -> None:
    from database import open_database
    from jobs import JobQueue
    from jobs.metrics import JobQueueCollector

    now = [1000.0]
    collector = JobQueueCollector(clock=lambda: now[0])
    async with open_database(f"sqlite:///{tmp_path / 'q.sqlite3'}") as db:
        queue = JobQueue(db)
        await queue.setup()
        await queue.enqueue("q", {}, account_id="a")

        def depth() -> float:
            family = next(f for f in collector.collect() if f.name == "jobs_queue_depth")
            return sum(s.value for s in family.samples if s.labels["state"] == "queued")

        await collector.refresh(db, ["q"], max_age_s=1.0)
        assert depth() == 1
        await queue.enqueue("q", {}, account_id="a")
        now[0] += 0.5
        await collector.refresh(db, ["q"], max_age_s=1.0)  # within the window: no read
        assert depth() == 1
        now[0] += 0.6
        await collector.refresh(db, ["q"], max_age_s=1.0)
        assert depth() == 2
