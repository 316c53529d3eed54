"""Per-API-key rate limits: what a hit costs, and how closely a plan is held.

Latency: the time one :meth:`accounts.ratelimit.RateLimiter.hit` adds to a request,
p50/p99, in process (``memory://``) and over a Redis on loopback, for both strategies,
each as a ratio to a baseline measured the same way in the same run: awaiting a
coroutine that increments a dict counter (the least any limiter could do).  The hits go
round-robin to 10 paid keys, so the keys fill up and both allowed and refused hits count.
Over Redis it is also set against one PING round trip on the limiter's own client (what
any limiter sharing a Redis must pay at least).  Then the same over HTTP: an aiohttp
handler that hits the limiter and answers its headers against a bare handler, in rounds
on one server, and over Redis also against ``limits``' own two round trips (hit, then
read the window) and against a handler that only PINGs Redis (the floor of any limiter
that shares one).

Accuracy: one free key (100 requests per second) offered 300 requests per second, evenly
paced; the accepted requests are counted per second of the run, and in the busiest
one-second interval wherever it starts.  On one in-process limiter, and on two limiters
sharing one Redis, each offered half the load (as two server processes would be).  The
moving window (the default) should keep every second within 100 +/- 5 % (reported:
the accepted are stamped here, late after a stall; what is asserted holds at any pace:
100 in all at least, at most 100 for each second the run took).  Then for real: one
and two ``dawserver serve`` processes on one PostgreSQL and one Redis, offered 300
requests a second over HTTP for 10 s, dealt to the processes in turn
(``tests/ratelimit_servers.py``); the admissions are counted per second on Redis's own
stamps of them, and the servers' CPU per request is read from ``/proc``.

Run by hand (``DAW_BENCH_SMOKE=1`` shortens it to a check that it runs)::

    python -m pytest benchmarks/bench_ratelimit.py -s -p no:cacheprovider
"""

from __future__ import annotations

import asyncio
import itertools
import math
import statistics
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from accounts.ratelimit import RateLimiter
from benchmarks.conftest import SMOKE, record

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from database_helpers import postgres_schema_url  # noqa: E402 - the tests' helpers
from loopback import free_port  # noqa: E402
from ratelimit_servers import (  # noqa: E402
    WindowStamps,
    cpu_seconds,
    offer,
    served,
    summary,
)

HITS = 300 if SMOKE else 20_000
REDIS_HITS = 300 if SMOKE else 5_000
HTTP_REQUESTS = 100 if SMOKE else 1_000
HTTP_ROUNDS = 1 if SMOKE else 7
KEYS = [f"bench-{i}" for i in range(10)]
OFFERED_PER_S = 300
SECONDS = 2 if SMOKE else 10
STRATEGIES = ["moving-window", "sliding-window-counter"]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _latencies(hit: Callable[[str], Awaitable[object]], hits: int) -> list[float]:
    """Seconds each of ``hits`` awaited calls took, after a warm-up of 100."""
    for i in range(100):
        await hit(KEYS[i % len(KEYS)])
    times = []
    for i in range(hits):
        start = time.perf_counter()
        await hit(KEYS[i % len(KEYS)])
        times.append(time.perf_counter() - start)
    return times


@pytest.mark.asyncio
@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("storage", ["memory", "redis"])
async def test_hit_latency(benchmark, request: pytest.FixtureRequest, storage: str,
                           strategy: str) -> None:
    url = request.getfixturevalue("redis_url") if storage == "redis" else None
    counts: Counter[str] = Counter()

    async def baseline(key: str) -> None:
        counts[key] += 1

    async with RateLimiter.from_url(url, strategy=strategy,
                                    key_prefix=f"bench-{uuid.uuid4().hex}") as limiter:
        hits = REDIS_HITS if storage == "redis" else HITS
        base = await _latencies(baseline, hits)
        ours = await _latencies(lambda key: limiter.hit(key, "paid"), hits)
        trips: dict[str, float] = {}
        if storage == "redis":  # the least a shared limiter costs: one PING, same client
            ping = limiter.storage.bridge.get_connection().ping
            trip_us = [t * 1e6 for t in await _latencies(lambda key: ping(), hits)]
            trips = {"round_trip_p50_us": statistics.median(trip_us)}
    us = [t * 1e6 for t in ours]
    base_us = [t * 1e6 for t in base]
    if trips:
        trips["p50_over_round_trip"] = statistics.median(us) / trips["round_trip_p50_us"]
    record(benchmark, hits=hits,
           p50_us=statistics.median(us), p99_us=_percentile(us, 0.99),
           baseline_p50_us=statistics.median(base_us),
           p50_ratio=statistics.median(us) / statistics.median(base_us),
           p99_ratio=_percentile(us, 0.99) / _percentile(base_us, 0.99), **trips)


async def _offer(limiter: RateLimiter, key: str, per_s: float, offset: float, start: float,
                 accepted: list[float]) -> None:
    """Send ``per_s`` hits a second for SECONDS, evenly paced; note when each was accepted."""
    for i in range(round(per_s * SECONDS)):
        delay = start + offset + i / per_s - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if (await limiter.hit(key, "free")).allowed:
            accepted.append(time.perf_counter() - start)


def _busiest_second(times: list[float]) -> int:
    """Most accepted requests in any one-second interval."""
    times, first, most = sorted(times), 0, 0
    for last, t in enumerate(times):
        while t - times[first] >= 1:
            first += 1
        most = max(most, last - first + 1)
    return most


@pytest.mark.asyncio
@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("storage", ["memory-one-limiter", "redis-two-limiters"])
async def test_accuracy_of_a_free_key_offered_three_times_its_plan(
        benchmark, request: pytest.FixtureRequest, storage: str, strategy: str) -> None:
    url = request.getfixturevalue("redis_url") if storage.startswith("redis") else None
    limiters = [RateLimiter.from_url(url, strategy=strategy)
                for _ in range(2 if url else 1)]
    key, accepted = f"accuracy-{uuid.uuid4().hex}", []
    try:
        start = time.perf_counter()
        share = OFFERED_PER_S / len(limiters)
        await asyncio.gather(*(_offer(limiter, key, share, n / OFFERED_PER_S, start, accepted)
                               for n, limiter in enumerate(limiters)))
        took = time.perf_counter() - start
    finally:
        for limiter in limiters:
            await limiter.close()
    per_second = Counter(int(t) for t in accepted if t < SECONDS)
    seconds = [per_second[s] for s in range(SECONDS)]
    record(benchmark, seconds=SECONDS, offered_per_s=OFFERED_PER_S,
           accepted_per_s=len(accepted) / SECONDS,
           min_second=min(seconds), max_second=max(seconds),
           busiest_1s=_busiest_second(accepted))
    if strategy == "moving-window":  # what holds at any pace of the machine: the plan's
        # 100 in the first second, and never more than 100 in any second of the run
        assert 100 <= len(accepted) <= 100 * math.ceil(took), (len(accepted), took)


@pytest.mark.asyncio
@pytest.mark.parametrize("storage", ["memory", "redis"])
async def test_added_latency_over_a_bare_handler(benchmark, request: pytest.FixtureRequest,
                                                 storage: str) -> None:
    """p50 of a request whose handler hits the limiter (and answers its headers) less the
    p50 of a bare handler's, in rounds on one aiohttp server in this process."""
    url = request.getfixturevalue("redis_url") if storage == "redis" else None
    keys = itertools.cycle(KEYS)
    async with RateLimiter.from_url(url, key_prefix=f"bench-{uuid.uuid4().hex}") as limiter:
        item = limiter.plan("paid")

        async def bare(_: web.Request) -> web.Response:
            return web.json_response({"ok": True})

        async def limited(_: web.Request) -> web.Response:
            decision = await limiter.hit(next(keys), "paid")
            return web.json_response({"ok": decision.allowed}, headers=decision.headers())

        async def two_trips(_: web.Request) -> web.Response:  # what ``limits`` alone does
            key = next(keys)
            allowed = await limiter._limiter.hit(item, key)
            stats = await limiter._limiter.get_window_stats(item, key)
            return web.json_response({"ok": allowed, "left": stats.remaining})

        async def round_trip(_: web.Request) -> web.Response:  # the least Redis costs
            await limiter.storage.bridge.get_connection().ping()
            return web.json_response({"ok": True})

        app = web.Application()
        app.router.add_get("/bare", bare)
        app.router.add_get("/limited", limited)
        if url:
            app.router.add_get("/two-trips", two_trips)
            app.router.add_get("/round-trip", round_trip)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        paths = ["/bare", "/limited", *(["/two-trips", "/round-trip"] if url else [])]
        p50s: dict[str, list[float]] = {path: [] for path in paths}
        try:
            async with aiohttp.ClientSession() as http:
                async def get(path: str) -> None:
                    async with http.get(f"http://127.0.0.1:{port}{path}") as response:
                        await response.read()

                async def p50(path: str) -> float:
                    times = []
                    for _ in range(HTTP_REQUESTS):
                        start = time.perf_counter()
                        await get(path)
                        times.append(time.perf_counter() - start)
                    return statistics.median(times) * 1e6

                for path in paths:  # warm-up
                    await p50(path)
                for _ in range(HTTP_ROUNDS):
                    for path in paths:
                        p50s[path].append(await p50(path))
        finally:
            await runner.cleanup()
    bare_us, limited_us = (statistics.median(p50s[p]) for p in ("/bare", "/limited"))
    added = [lim - b for lim, b in zip(p50s["/limited"], p50s["/bare"], strict=True)]
    figures = {"bare_p50_us": bare_us, "limited_p50_us": limited_us,
               "added_p50_us": statistics.median(added),
               "limited_over_bare": statistics.median(
                   lim / b for lim, b in zip(p50s["/limited"], p50s["/bare"], strict=True))}
    if url:
        two = [t - b for t, b in zip(p50s["/two-trips"], p50s["/bare"], strict=True)]
        ping = [t - b for t, b in zip(p50s["/round-trip"], p50s["/bare"], strict=True)]
        figures["limits_two_trips_added_p50_us"] = statistics.median(two)
        figures["added_over_limits_two_trips"] = statistics.median(
            a / t for a, t in zip(added, two, strict=True))
        figures["ping_added_p50_us"] = statistics.median(ping)
        figures["added_over_ping"] = statistics.median(
            a / t for a, t in zip(added, ping, strict=True))
    record(benchmark, requests=HTTP_REQUESTS, rounds=HTTP_ROUNDS, **figures)


@pytest.fixture
def fresh_postgres_schema(postgres_url: str, request: pytest.FixtureRequest) -> str:
    """A fresh schema of the test PostgreSQL, for the servers of one run."""
    return postgres_schema_url(postgres_url, f"bench_ratelimit_{request.node.callspec.id}")


@pytest.mark.parametrize("processes", [1, 2])
@pytest.mark.alone  # the servers' CPU per request and round trips are measured
def test_accuracy_of_server_processes_sharing_one_redis(
        benchmark, tmp_path: Path, fresh_postgres_schema: str, redis_url: str,
        processes: int) -> None:
    """A free key offered 300 requests a second over HTTP, dealt to ``processes``
    ``dawserver serve`` processes on one Redis; admissions per second on Redis's clock."""

    async def run() -> tuple[dict[str, float], float]:
        async with served(tmp_path, fresh_postgres_schema, redis_url, processes) as servers:
            before = cpu_seconds(servers.pids)
            with WindowStamps(redis_url, servers.key_id) as stamps:
                answers = await offer(servers.urls, servers.secret, OFFERED_PER_S, SECONDS)
            cpu_ms = (cpu_seconds(servers.pids) - before) * 1e3 / len(answers)
        return summary(answers, stamps), cpu_ms

    figures, cpu_ms = asyncio.run(run())
    record(benchmark, processes=processes, seconds=SECONDS, offered_per_s=OFFERED_PER_S,
           server_cpu_ms_per_request=cpu_ms, **figures)
    assert figures["busiest_1s"] <= 100, figures
    assert figures["stamped"] == figures["accepted"], figures
