"""What metering an API request costs: :meth:`UsageMeter.record` against a Prometheus
histogram observation (``prometheus_client``, what every request already pays in
:mod:`dawserver.request_telemetry`), same run, same latencies; and one flush of a
day's tallies for 1,000 keys to SQLite.

Run by hand (``DAW_BENCH_SMOKE=1`` shortens it to a check that it runs)::

    python -m pytest benchmarks/bench_usage_meter.py -s -p no:cacheprovider
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from pathlib import Path

from prometheus_client import CollectorRegistry, Histogram

from benchmarks.conftest import SMOKE, median_ratio, record, rounds_of
from database import open_database
from dawserver.public_api.idempotency import MIGRATIONS
from dawserver.public_api.usage.meter import UsageMeter
from dawserver.public_api.usage.store import UsageStore

CALLS = 2_000 if SMOKE else 100_000
KEYS = 50 if SMOKE else 1_000


def test_recording_a_request_against_a_prometheus_observation(benchmark, tmp_path: Path
                                                                ) -> None:
    rng = random.Random(1)
    latencies = [rng.lognormvariate(3, 1) for _ in range(CALLS)]
    keys = [f"key_{rng.randrange(KEYS)}" for _ in range(CALLS)]
    meter = UsageMeter(UsageStore(None))  # type: ignore[arg-type]  (recording only)
    histogram = Histogram("bench_latency", "bench", ["route"],
                          registry=CollectorRegistry())
    child = histogram.labels(route="/api/v1/projects")
    now = time.time()

    def ours() -> None:
        for key, ms in zip(keys, latencies, strict=True):
            meter.record("acct", key, 200, ms, at=now)

    def prometheus() -> None:
        for ms in latencies:
            child.observe(ms / 1000)

    times = rounds_of({"prometheus": prometheus, "meter": ours})
    ratio = median_ratio(times, "prometheus", "meter")

    async def flush() -> float:
        async with open_database(f"sqlite://{tmp_path / 'usage.sqlite3'}") as db:
            await db.migrate(MIGRATIONS)
            meter.store = UsageStore(db)
            start = time.perf_counter()
            await meter.flush()
            return time.perf_counter() - start

    flush_s = asyncio.run(flush())
    per_call_us = statistics.median(times["meter"]) / CALLS * 1e6
    record(benchmark, meter_us_per_request=round(per_call_us, 3),
           prometheus_over_meter=round(ratio, 2), flush_ms_for_keys=round(flush_s * 1000, 1),
           keys=KEYS)
    print(f"\nrecord: {per_call_us:.2f} us/request; prometheus observe / record: {ratio:.2f}; "
          f"flush of {KEYS} keys' day: {flush_s * 1000:.1f} ms")
    assert ratio > 0 and flush_s > 0
