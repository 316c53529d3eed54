"""Group commit: many rooms appending at once, one transaction per group vs one per append.

Each of ``ROOMS`` rooms appends a 60-byte update, waits for it to be durable,
and appends the next, ``APPENDS`` times, all rooms at once: the shape of many
projects edited together.  The same store class runs with group commit (the
default) and without it (``group_commit = False``: one transaction, one fsync,
per append), in the same run, on SQLite and on PostgreSQL (``fsync=on``).
Reported: appends per second, transactions per append, and the p50/p99 of the
time an append waits to be durable; the ratios are group over single.

Run by hand::

    python -m pytest benchmarks/bench_store.py -s -p no:cacheprovider
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from pathlib import Path

import pytest

from benchmarks.conftest import SMOKE, record
from collab.store import Store, open_store

ROOMS = 4 if SMOKE else 50
APPENDS = 3 if SMOKE else 40
UPDATE = bytes(60)


async def _room(store: Store, project_id: str, waits: list[float]) -> None:
    for seq in range(1, APPENDS + 1):
        started = time.perf_counter()
        await store.append(project_id, seq, [UPDATE])
        waits.append(time.perf_counter() - started)


async def _run(store: Store, group_commit: bool) -> dict[str, float]:
    store.group_commit = group_commit
    rooms = [f"bench-{uuid.uuid4().hex[:8]}" for _ in range(ROOMS)]
    for project_id in rooms:
        await store.create_project(project_id, "Bench", None)
    waits: list[float] = []
    commits = store.commits
    started = time.perf_counter()
    await asyncio.gather(*(_room(store, project_id, waits) for project_id in rooms))
    elapsed = time.perf_counter() - started
    waits.sort()
    return {"appends_per_s": len(waits) / elapsed,
            "commits_per_append": (store.commits - commits) / len(waits),
            "wait_p50_ms": 1000 * statistics.median(waits),
            "wait_p99_ms": 1000 * waits[int(0.99 * (len(waits) - 1))]}


async def _compare(database_url: str | None, data_dir: Path) -> dict[str, float]:
    async with open_store(database_url, data_dir) as store:
        single = await _run(store, group_commit=False)
        grouped = await _run(store, group_commit=True)
    return {**{f"single_{k}": v for k, v in single.items()},
            **{f"group_{k}": v for k, v in grouped.items()},
            "throughput_ratio": grouped["appends_per_s"] / single["appends_per_s"],
            "wait_p99_ratio": grouped["wait_p99_ms"] / single["wait_p99_ms"]}


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_group_commit_against_one_commit_per_append(benchmark, backend: str, tmp_path: Path,
                                                    request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue("postgres_url") if backend == "postgresql" else None
    figures = asyncio.run(_compare(url, tmp_path))
    record(benchmark, backend=backend, rooms=ROOMS, appends=APPENDS, **figures)
    assert figures["group_commits_per_append"] <= figures["single_commits_per_append"]
