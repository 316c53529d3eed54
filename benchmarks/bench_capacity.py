"""Per-core and per-GB figures for the capacity plan (docs/capacity.md).

Each test measures one figure that ``scripts/capacity.py`` turns into nodes and cost,
with a baseline measured in the same run:

- **sessions per GB of Redis**: :class:`accounts.sessions.Sessions` started on
  :class:`~accounts.sessions.RedisSessions`, ``INFO memory`` ``used_memory`` before and
  after; baseline: the same count of bare ``SET key value`` of the session's JSON.
- **documents per GB** of a typical project: :class:`collab.schema.ProjectDocument` built
  from a 16-track demo session, N kept alive, resident set before and after; baseline:
  the encoded Yjs update of one document (what the store keeps).
- **API requests/s per core**: ``GET /api/v1/projects/{id}`` through the full stack with
  an API key, client and server on one event loop (so the process's CPU covers both
  sides: a floor for the server alone); baseline: a bare aiohttp handler answering the
  same bytes in the same run.
- **posts dispatched/s per core**: social posts due now, dispatched by the job worker
  through the fake X on loopback (SQLite), per CPU second of the process; baseline: the
  same count of raw connector publishes.
- **rows ingested/s**: analytics points upserted into PostgreSQL by one writer;
  baseline: a bare ``INSERT`` of the same rows in one transaction.
- **renders/s per core**: :func:`dsp_core.engine.render_session` of a demo project on the
  C engine, seconds of audio per CPU second; baseline: the numpy twin on the same project.

Run by hand; a full run writes ``docs/benchmarks-capacity.json`` (``DAW_BENCH_CAPACITY_OUT``
names another file; smoke runs write nothing)::

    python -m pytest benchmarks/bench_capacity.py -s -p no:cacheprovider
    python scripts/capacity.py          # then regenerate docs/capacity.md
"""

from __future__ import annotations

import asyncio
import datetime
import gc
import itertools
import json
import os
import resource
import sys
import time
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from accounts.service import Actor
from accounts.sessions import RedisSessions, Sessions
from benchmarks.conftest import SMOKE, record
from collab.schema import ProjectDocument
from dawserver.app import create_app
from dawserver.config import ServerConfig
from dawserver.keys import ACCOUNTS, STORE
from dawserver.projects import import_session
from dsp_core.demo import write_demo_project
from dsp_core.engine import render_session
from dsp_core.project import load_project
from dsp_core.session import Session
from tests.loopback import free_port

ROOT = Path(__file__).resolve().parents[1]
OUT = os.environ.get("DAW_BENCH_CAPACITY_OUT") or (
    None if SMOKE else str(ROOT / "docs" / "benchmarks-capacity.json"))
COMMAND = "python -m pytest benchmarks/bench_capacity.py -s -p no:cacheprovider"
SESSIONS = 200 if SMOKE else 20_000
DOCUMENTS = 5 if SMOKE else 100
DOC_TRACKS = 16
REQUESTS = 100 if SMOKE else 3000
CONCURRENCY = 8
KEYS = 20
RENDER_TRACKS = 4 if SMOKE else 32
RENDER_SECONDS = 2.0 if SMOKE else 16.0
POSTS = 50 if SMOKE else 1000
CHANNELS = 5 if SMOKE else 50
ROWS = 500 if SMOKE else 50_000
pytestmark = pytest.mark.filterwarnings("ignore::pytest_benchmark.logger.PytestBenchmarkWarning")


def _save(section: str, figures: dict) -> None:
    """Write ``figures`` as ``section`` of the results file (other sections are kept)."""
    if OUT is None:
        return
    path = Path(OUT)
    saved = json.loads(path.read_text()) if path.exists() else {}
    saved[section] = {
        "measured": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()],
        "command": COMMAND, **figures}
    path.write_text(json.dumps(saved, indent=1, sort_keys=True) + "\n")


def _test_helpers() -> None:
    """Make tests/ importable: the fakes' helpers import their neighbours by name."""
    tests = str(ROOT / "tests")
    if tests not in sys.path:
        sys.path.append(tests)


def _rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@pytest.mark.asyncio
@pytest.mark.timeout(300)
async def test_sessions_per_gb_of_redis(benchmark, redis_url: str) -> None:  # noqa: ANN001
    store = RedisSessions.from_url(redis_url)
    try:
        await store.client.flushdb()
        before = int((await store.client.info("memory"))["used_memory"])
        sessions = Sessions(store)
        for i in range(SESSIONS):
            await sessions.start(f"capacity-person-{i}")
        after = int((await store.client.info("memory"))["used_memory"])
        sample = await store.client.get(next(iter(await store.client.keys("*{s:*}"))))
        await store.client.flushdb()
        base_before = int((await store.client.info("memory"))["used_memory"])
        async with store.client.pipeline(transaction=False) as pipe:
            for i in range(SESSIONS):
                pipe.set(f"bare:{i}", sample)
            await pipe.execute()
        base_after = int((await store.client.info("memory"))["used_memory"])
        await store.client.flushdb()
    finally:
        await store.close()
    per_session = (after - before) / SESSIONS
    per_bare = (base_after - base_before) / SESSIONS
    figures = {"sessions": SESSIONS, "bytes_per_session": per_session,
               "sessions_per_gb": 2**30 / per_session, "bare_set_bytes": per_bare,
               "vs_bare_set": per_session / per_bare}
    record(benchmark, **figures)
    assert per_session > 0
    _save("redis_sessions", figures)


def test_typical_documents_per_gb(benchmark, tmp_path: Path) -> None:  # noqa: ANN001
    session = load_project(write_demo_project(tmp_path / "demo", tracks=DOC_TRACKS,
                                              seconds=8.0))
    update_bytes = len(ProjectDocument.from_session(session).doc.get_update())
    gc.collect()
    before = _rss_bytes()
    kept = [ProjectDocument.from_session(session) for _ in range(DOCUMENTS)]
    gc.collect()
    after = _rss_bytes()
    per_document = max(after - before, 1) / len(kept)
    figures = {"documents": DOCUMENTS, "tracks": DOC_TRACKS,
               "clips": sum(len(t.clips) for t in session.tracks),
               "bytes_per_document": per_document, "documents_per_gb": 2**30 / per_document,
               "update_bytes": update_bytes, "vs_update_bytes": per_document / update_bytes}
    record(benchmark, **figures)
    _save("typical_documents", figures)


async def _rate(call, requests: int) -> tuple[float, float]:  # noqa: ANN001
    """Requests per wall second and per CPU second of this process."""
    left = iter(range(requests))

    async def worker() -> None:
        for _ in left:
            assert await call() == 200

    cpu, start = _cpu_s(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return requests / (time.perf_counter() - start), requests / (_cpu_s() - cpu)


@pytest.mark.asyncio
@pytest.mark.timeout(300)
async def test_api_requests_per_core(benchmark, tmp_path: Path) -> None:  # noqa: ANN001
    config = ServerConfig(port=free_port(), data_dir=tmp_path / "data",
                          password_hashing=(1, 1024, 1))
    app = create_app(config)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", config.port).start()
    bare_runner = None
    try:
        service = app[ACCOUNTS]
        person = await service.create_person("cap@example.org", "correct horse battery",
                                             "Cap", plan="paid")
        # paid-plan keys (1,000 requests/s each) taken in turn, so none is refused
        keys = itertools.cycle([(await service.create_key(
            Actor(person.account_id), person.account_id, f"k{i}", ["project.read"]))[0]
            for i in range(KEYS)])
        info = await import_session(app[STORE], Session(name="Cap"), name="Cap")
        await service.store.own_project(person.account_id, info.project_id)
        url = f"{config.base_url}/api/v1/projects/{info.project_id}"
        async with aiohttp.ClientSession() as http:
            async with http.get(url, headers={"Authorization": f"Bearer {next(keys)}"}
                                ) as answer:
                body = await answer.read()

            async def bare(request: web.Request) -> web.Response:
                return web.Response(body=body, content_type="application/json")

            bare_app = web.Application()
            bare_app.router.add_get("/p", bare)
            bare_runner = web.AppRunner(bare_app, handle_signals=False, access_log=None)
            await bare_runner.setup()
            bare_port = free_port()
            await web.TCPSite(bare_runner, "127.0.0.1", bare_port).start()

            async def get(target: str) -> int:
                async with http.get(target, headers={"Authorization": f"Bearer {next(keys)}"}
                                    ) as answer:
                    await answer.read()
                    return answer.status

            rest = await _rate(lambda: get(url), REQUESTS)
            floor = await _rate(lambda: get(f"http://127.0.0.1:{bare_port}/p"), REQUESTS)
    finally:
        if bare_runner is not None:
            await bare_runner.cleanup()
        await runner.cleanup()
    figures = {"requests": REQUESTS, "requests_per_s": rest[0],
               "requests_per_cpu_s": rest[1], "bare_requests_per_cpu_s": floor[1],
               "bare_vs_full_stack": floor[1] / rest[1]}
    record(benchmark, **figures)
    _save("api_requests", figures)


def test_renders_per_core(benchmark, tmp_path: Path) -> None:  # noqa: ANN001
    session = load_project(write_demo_project(tmp_path / "demo", tracks=RENDER_TRACKS,
                                              seconds=RENDER_SECONDS))
    render_session(session, backend="native")  # warm-up: opens every source once
    cpu = _cpu_s()
    audio = render_session(session, backend="native")
    native_cpu = _cpu_s() - cpu
    seconds = audio.shape[1] / session.sample_rate
    cpu = _cpu_s()
    render_session(session, backend="reference")
    twin_cpu = _cpu_s() - cpu
    figures = {"tracks": RENDER_TRACKS, "audio_seconds": seconds,
               "audio_s_per_cpu_s": seconds / native_cpu,
               "twin_audio_s_per_cpu_s": seconds / twin_cpu,
               "native_vs_twin": twin_cpu / native_cpu}
    record(benchmark, **figures)
    _save("renders", figures)


@pytest.mark.asyncio
@pytest.mark.timeout(300)
async def test_posts_dispatched_per_core(benchmark, tmp_path: Path) -> None:  # noqa: ANN001
    """Posts due now, dispatched by the job worker through the fake X on loopback (in this
    process, SQLite too: the CPU counted covers the network's side as well, a floor)."""
    _test_helpers()
    from social_fakes import dispatching

    from business.social.fakes import FakeUser
    from business.social.models import SCHEDULED, Post, PostTarget
    from business.social.networks.base import Publication
    from business.social.store import new_id

    url = f"sqlite://{tmp_path / 'social.sqlite3'}"
    async with dispatching(url, ["x"], tmp_path, concurrency=32, channel_limit="1000/minute",
                           network_limit="100000/second", lease_s=60.0) as h:
        channels, tokens = [], []
        for n in range(CHANNELS):
            user = FakeUser(id=f"u{n}", name=f"Artist {n}", handle=f"artist{n}")
            channels.append(await h.channel("x", user=user))
            tokens.append(h.fake("x").issue_access_token(user))
        slots = asyncio.Semaphore(32)

        async def raw(n: int) -> None:
            async with slots:
                await h.connectors["x"].publish(tokens[n % CHANNELS],
                                                Publication(f"b{n}", f"baseline {n}"))

        cpu = _cpu_s()
        await asyncio.gather(*(raw(n) for n in range(POSTS)))
        raw_cpu = _cpu_s() - cpu
        h.fake("x").posts.clear()
        now = time.time()
        async with h.db.transaction() as tx:
            for n in range(POSTS):
                post_id = new_id("post")
                post = Post("acc", post_id, "p_ada", f"due post {n}", [], None, None, "", now,
                            "UTC", SCHEDULED, 1, now, now, now,
                            [PostTarget(channels[n % CHANNELS], "x", state=SCHEDULED,
                                        dedupe_key=f"{post_id}:{channels[n % CHANNELS]}")])
                await h.store.insert_post(tx, post)
                await h.dispatcher.arm(tx, post)
        cpu, start = _cpu_s(), time.perf_counter()
        async with h.worker(poll_s=0.05):
            async with asyncio.timeout(240):
                while await h.db.fetchval("SELECT COUNT(*) FROM social_post_targets "
                                          "WHERE state <> 'published'"):
                    await asyncio.sleep(0.05)
        wall, spent = time.perf_counter() - start, _cpu_s() - cpu
        assert len(h.fake("x").posts) == POSTS
    figures = {"posts": POSTS, "channels": CHANNELS, "posts_per_s": POSTS / wall,
               "posts_per_cpu_s": POSTS / spent, "raw_publishes_per_cpu_s": POSTS / raw_cpu,
               "raw_vs_dispatch": spent / raw_cpu}
    record(benchmark, **figures)
    _save("social_dispatch", figures)


@pytest.mark.asyncio
@pytest.mark.timeout(300)
async def test_rows_ingested_per_core(benchmark, postgres_url: str) -> None:  # noqa: ANN001
    """Analytics points written by :meth:`PointStore.upsert` to PostgreSQL (monthly
    partitions, upsert, freshness) by one writer; the writer and PostgreSQL share this
    machine's cores, so per core is rows/s over the cores (a floor)."""
    _test_helpers()
    from analytics_helpers import migrated

    from business.analytics.sources.records import Point
    from business.analytics.store import PointStore

    start_day = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
    points = [Point("spotify", "track", f"t{n % 50}", "streams",
                    start_day + datetime.timedelta(days=n // 50), n) for n in range(ROWS)]
    async with migrated(postgres_url) as db:
        store = PointStore(db)
        await store.upsert("warm-up", points[:50])
        begin = time.perf_counter()
        await store.upsert("capacity", points)
        ours = time.perf_counter() - begin
        await db.execute("CREATE TABLE IF NOT EXISTS capacity_bare (account_id TEXT, "
                         "entity_id TEXT, at BIGINT, value DOUBLE PRECISION)")
        rows = [("capacity", p.entity_id, int(p.at.timestamp()), float(p.value))
                for p in points]
        begin = time.perf_counter()
        async with db.transaction() as tx:
            await tx.executemany("INSERT INTO capacity_bare VALUES (?, ?, ?, ?)", rows)
        bare = time.perf_counter() - begin
        await db.execute("DROP TABLE capacity_bare")
        assert await store.count("capacity") == ROWS
    cores = os.cpu_count() or 1
    figures = {"rows": ROWS, "cores": cores, "rows_per_s": ROWS / ours,
               "rows_per_core_s": ROWS / ours / cores, "bare_insert_rows_per_s": ROWS / bare,
               "bare_vs_upsert": ours / bare}
    record(benchmark, **figures)
    _save("analytics_ingest", figures)
