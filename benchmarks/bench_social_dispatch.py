"""Social dispatch lag: publish time to the network's acceptance, many posts due at once.

N posts due in the same minute (their publish times spread evenly over it) over M
X channels (one account each) of the fake X on loopback (``business/social/fakes``),
dispatched by the job queue's worker through :class:`~business.social.dispatch.Dispatcher`
on SQLite (``DAW_SOCIAL_DB=postgresql``: a throw-away PostgreSQL); burst limits set wide
enough not to bind, so the lag is ours (``DAW_SOCIAL_CONCURRENCY``: jobs at a time, 32;
``DAW_SOCIAL_PROFILE=file``: a cProfile of the dispatching). Baseline, same run:
the fake's raw publish latency, the same posts published by the connectors over the same
session with the same concurrency and no database.

Full: ``DAW_SOCIAL_POSTS=10000 DAW_SOCIAL_CHANNELS=1000 python -m pytest
benchmarks/bench_social_dispatch.py --benchmark-enable -s`` (defaults: 2,000 posts over
200 channels); smoke (``DAW_BENCH_SMOKE=1``): 100 posts over 10 channels due within 5 s.
"""

from __future__ import annotations

import asyncio
import cProfile
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from benchmarks.conftest import SMOKE, record
from business.social.fakes import FakeUser
from business.social.models import SCHEDULED, Post, PostTarget
from business.social.networks.base import Publication
from business.social.store import new_id

POSTS = 100 if SMOKE else int(os.environ.get("DAW_SOCIAL_POSTS", "2000"))
CHANNELS = 10 if SMOKE else int(os.environ.get("DAW_SOCIAL_CHANNELS", "200"))
WINDOW_S = 5.0 if SMOKE else 60.0
CONCURRENCY = int(os.environ.get("DAW_SOCIAL_CONCURRENCY", "32"))
#: ``sqlite`` (default) or ``postgresql`` (a throw-away server, the ``postgres_url`` fixture).
DATABASE = os.environ.get("DAW_SOCIAL_DB", "sqlite")
#: A file to write a cProfile of the dispatching phase to (``DAW_SOCIAL_PROFILE``).
PROFILE = os.environ.get("DAW_SOCIAL_PROFILE", "")


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _baseline(h: Any, tokens: list[tuple[str, str]], count: int) -> list[float]:
    """Seconds per raw connector publish (no database), ``CONCURRENCY`` at a time."""
    latencies: list[float] = []
    slots = asyncio.Semaphore(CONCURRENCY)

    async def one(n: int) -> None:
        network, token = tokens[n % len(tokens)]
        async with slots:
            start = time.perf_counter()
            await h.connectors[network].publish(token, Publication(f"base-{n}",
                                                                   f"baseline post {n}"))
            latencies.append(time.perf_counter() - start)

    await asyncio.gather(*(one(n) for n in range(count)))
    return latencies


async def _seed(h: Any, channels: list[tuple[str, str]], start: float) -> list[str]:
    """Posts in state scheduled, due over ``WINDOW_S`` from ``start``, armed in batches."""
    ids = []
    now = time.time()
    for first in range(0, POSTS, 500):
        async with h.db.transaction() as tx:
            for n in range(first, min(POSTS, first + 500)):
                network, channel_id = channels[n % len(channels)]
                post_id = new_id("post")
                at = start + WINDOW_S * n / POSTS
                post = Post("acc", post_id, "p_ada", f"due post {n} on {network}", [], None,
                            None, "", at, "UTC", SCHEDULED, 1, now, now, now,
                            [PostTarget(channel_id, network, state=SCHEDULED,
                                        dedupe_key=f"{post_id}:{channel_id}")])
                await h.store.insert_post(tx, post)
                await h.dispatcher.arm(tx, post)
                ids.append(post_id)
    return ids


async def _run(url: str, tmp_path: Path) -> dict[str, float]:
    from social_fakes import dispatching

    async with dispatching(url, ["x"], tmp_path, concurrency=CONCURRENCY,
                           channel_limit="1000/minute", network_limit="100000/second",
                           lease_s=60.0) as h:
        channels, tokens = [], []
        for n in range(CHANNELS):
            network = "x"
            user = FakeUser(id=f"u{n}", name=f"Artist {n}", handle=f"artist{n}")
            channels.append((network, await h.channel(network, user=user)))
            tokens.append((network, h.fake(network).issue_access_token(user)))
        base = await _baseline(h, tokens, min(POSTS, 2000))
        h.fake("x").posts.clear()
        seed_start = time.time()
        # the first post is due after seeding (PostgreSQL seeds at a round trip a row)
        start = seed_start + (max(10.0, POSTS / 200) if DATABASE == "postgresql"
                              else max(5.0, POSTS / 400))
        await _seed(h, channels, start)
        seeded = time.time() - seed_start
        assert time.time() < start, "seeding took longer than its head start"
        profiler = cProfile.Profile() if PROFILE else None
        if profiler is not None:
            profiler.enable()
        async with h.worker(poll_s=0.05):
            while await h.db.fetchval("SELECT COUNT(*) FROM social_post_targets "
                                      "WHERE state <> 'published'"):
                await asyncio.sleep(0.2)
            finished = time.time()
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(PROFILE)
        rows = await h.db.fetch("SELECT t.published_at - p.publish_at AS lag FROM "
                                "social_post_targets t JOIN social_posts p ON "
                                "p.account_id = t.account_id AND p.post_id = t.post_id")
        lags = [r["lag"] for r in rows]
        published = len(h.fake("x").posts)
        assert published == POSTS, (published, POSTS)
        return {"database": DATABASE, "concurrency": CONCURRENCY,
                "posts": POSTS, "channels": CHANNELS, "window_s": WINDOW_S,
                "seed_s": seeded, "lag_p50_s": statistics.median(lags),
                "lag_p99_s": _pct(lags, 0.99), "lag_max_s": max(lags),
                "drain_after_window_s": finished - (start + WINDOW_S),
                "raw_publish_p50_ms": 1000 * statistics.median(base),
                "raw_publish_p99_ms": 1000 * _pct(base, 0.99),
                "dispatch_per_s": POSTS / (finished - start)}


def test_dispatch_lag_against_raw_publish(benchmark, request: pytest.FixtureRequest,  # noqa: ANN001
                                          tmp_path: Path) -> None:
    tests = str(Path(__file__).resolve().parents[1] / "tests")
    if tests not in sys.path:  # the fakes' test helpers import their neighbours by name
        sys.path.append(tests)
    if DATABASE == "postgresql":
        from database_helpers import postgres_schema_url

        url = postgres_schema_url(request.getfixturevalue("postgres_url"), "bench_social")
    else:
        url = f"sqlite://{tmp_path / 'bench.sqlite3'}"
    figures = asyncio.run(_run(url, tmp_path))
    record(benchmark, **figures)
