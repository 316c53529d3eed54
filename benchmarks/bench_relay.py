"""Scale-out: what the Redis hop between two server processes adds to an edit's travel.

Two servers (``create_app``) share one PostgreSQL store and one Redis (then a Redis
Cluster of three masters, sharded pub/sub); a Python client
on server A moves a fader at 20 Hz, and the time until each move reaches a client on the
same server A (the baseline: store then relay) and a client on server B (store, relay,
publish, Redis, apply, relay) is measured on one clock.  Reported: p50/p99 of both, and
the cross-process figures as ratios to the same-process ones, from the same run.

Run by hand::

    python -m pytest benchmarks/bench_relay.py -s -p no:cacheprovider
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from pathlib import Path

import pytest
from pycrdt import Map

from benchmarks.conftest import SMOKE, record
from collab.client import SyncClient
from collab.tokens import Role
from dawclient.channel import connect
from dawserver.config import ServerConfig
from dawserver.keys import STORE, TOKENS
from dawserver.projects import import_session
from dsp_core.session import Clip, Session, Track
from tests.loopback import free_port
from tests.nodepeer import running_server

MOVES = 10 if SMOKE else 400
RATE_HZ = 20.0


def _session() -> Session:
    return Session(name="Bench", tracks=[
        Track(f"t{i}", clips=[Clip("/audio/x.wav", 0, 48000, id=f"c{i}")]) for i in range(64)])


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _arrival(track: Map, sent: dict[float, float], times: dict[float, float]):
    """An observer noting when each sent fader value first shows up in ``track``, or is
    overtaken: the server relays what it stored in one go as one update, so moves that
    queued behind a slow commit arrive together and only the last shows.  The values
    fall with each move, so every move not seen yet whose value is above the one shown
    arrived with it."""
    def seen(_events) -> None:
        value = track["t0"]["gain_db"]
        if value not in sent:
            return
        now = time.perf_counter()
        for earlier, at in sent.items():
            if earlier >= value and earlier not in times:
                times[earlier] = now - at

    return seen


async def _measure(tmp_path: Path, database_url: str, redis_url: str
                   ) -> dict[str, dict[float, float]]:
    configs = [ServerConfig(port=free_port(), data_dir=tmp_path, engine=False,
                            database_url=database_url, redis_url=redis_url) for _ in range(2)]
    async with running_server(configs[0]) as app_a, running_server(configs[1]):
        info = await import_session(app_a[STORE], _session())
        token = app_a[TOKENS].issue(info.project_id, Role.EDITOR, "bench")
        urls = [f"{c.collab_url}/{info.project_id}" for c in configs]
        sent: dict[float, float] = {}
        arrived: dict[str, dict[float, float]] = {"same_process": {}, "other_process": {}}
        async with contextlib.AsyncExitStack() as stack:
            clients = {}
            for name, url in (("sender", urls[0]), ("same_process", urls[0]),
                              ("other_process", urls[1])):
                channel = await stack.enter_async_context(connect(url, token))
                clients[name] = await stack.enter_async_context(SyncClient(channel))
                await clients[name].wait_synced()
            subscriptions = []  # pycrdt drops an observer whose subscription is collected
            for name in ("same_process", "other_process"):
                track = clients[name].doc.get("tracks", type=Map)
                subscriptions.append(track.observe_deep(_arrival(track, sent, arrived[name])))
            for i in range(MOVES):
                value = -0.001 * (i + 1)
                sent[value] = time.perf_counter()
                clients["sender"].document.set_track_gain("t0", value)
                await asyncio.sleep(1 / RATE_HZ)
            deadline = time.perf_counter() + 10
            while min(map(len, arrived.values())) < MOVES and time.perf_counter() < deadline:
                await asyncio.sleep(0.05)
    return arrived


@pytest.mark.asyncio
@pytest.mark.parametrize("server", ["redis_url", "redis_cluster_url"])
async def test_cross_process_edit_latency(benchmark, tmp_path: Path, postgres_url: str,
                                          server: str, request: pytest.FixtureRequest) -> None:
    arrived = await _measure(tmp_path, postgres_url, request.getfixturevalue(server))
    assert all(len(times) == MOVES for times in arrived.values()), "no move may be lost"
    ms = {name: [t * 1000 for t in times.values()] for name, times in arrived.items()}
    same, other = ms["same_process"], ms["other_process"]
    record(benchmark,
           moves=MOVES,
           same_p50_ms=statistics.median(same), same_p99_ms=_percentile(same, 0.99),
           other_p50_ms=statistics.median(other), other_p99_ms=_percentile(other, 0.99),
           p50_ratio=statistics.median(other) / statistics.median(same),
           p99_ratio=_percentile(other, 0.99) / _percentile(same, 0.99))
