"""Distribution: statement allocation, audio analysis and the delivery pipeline.

Each figure is a ratio against a baseline timed in the same run:

- statements: ``allocate_statement`` against summing the same amounts as Decimals
  (the least any exact method must do);
- audio: ``analyze_audio`` (loudness, true peak, clipping, silence) against reading
  the file with soundfile, plus its speed in multiples of real time;
- delivery: the durable pipeline (delivery records and their events in SQLite, each
  delivery a job of the job queue, run by a job worker under a lease) against
  calling the store connector directly for the same packages, both against a local
  fake store.

Run: ``python -m pytest benchmarks/bench_distribution.py --benchmark-enable -s``.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
from decimal import Decimal
from pathlib import Path

import numpy as np
import soundfile as sf

from benchmarks.conftest import SMOKE, best_time, measure, record
from business.distribution.audio import analyze_audio
from business.distribution.catalog import Catalog
from business.distribution.delivery import DELIVER, DeliveryPipeline, PipelineSettings
from business.distribution.identifiers import make_upc
from business.distribution.plugin import MIGRATIONS
from business.distribution.splits import Payee, Split
from business.distribution.statements import StatementLine, allocate_statement
from business.distribution.stores.fakestore import FakeStore
from business.distribution.stores.http_drop import HttpDropConnector
from database import open_database
from events import MIGRATIONS as EVENTS
from jobs import MIGRATIONS as JOBS
from jobs import JobQueue, JobWorker

LINES = 2_000 if SMOKE else 200_000
AUDIO_SECONDS = 5 if SMOKE else 180
RELEASES = 4 if SMOKE else 100


def _statement() -> tuple[list[StatementLine], dict[str, Split]]:
    rng = random.Random(0)
    isrcs = [f"QZABC26{i:05d}" for i in range(500)]
    lines = [StatementLine("Spotify", "US", rng.choice(isrcs), 1,
                           Decimal(rng.randint(1, 10**6)) / 10**6, "USD") for _ in range(LINES)]
    payees = [Payee("a", Decimal("33.33")), Payee("b", Decimal("33.33")),
              Payee("c", Decimal("33.34"), joined=False)]
    splits = {i: Split(i, payees, 500, "a", "USD") for i in isrcs[:400]}
    return lines, splits


def test_statement_allocation_against_decimal_sum(benchmark) -> None:  # noqa: ANN001
    lines, splits = _statement()
    baseline = best_time(lambda: sum((line.amount for line in lines), Decimal(0)))
    seconds = measure(benchmark, lambda: allocate_statement(lines, splits))
    result = allocate_statement(lines, splits)
    assert result.ledger_totals() == result.totals
    record(benchmark, lines=LINES, lines_per_s=LINES / seconds,
           ratio_to_decimal_sum=seconds / baseline)


def test_audio_analysis_against_reading_the_file(benchmark) -> None:  # noqa: ANN001
    rate = 44_100
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "song.wav"
        rng = np.random.default_rng(0)
        data = (0.1 * rng.standard_normal((AUDIO_SECONDS * rate, 2))).astype(np.float32)
        sf.write(path, data, rate, subtype="PCM_24")
        baseline = best_time(lambda: sf.read(str(path), dtype="float32"))
        seconds = measure(benchmark, lambda: analyze_audio(path), rounds=2)
    record(benchmark, audio_seconds=AUDIO_SECONDS, times_real_time=AUDIO_SECONDS / seconds,
           ratio_to_read=seconds / baseline)


async def _delivery_figures(root: Path) -> tuple[float, float]:
    from PIL import Image

    art = root / "cover.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (3000, 3000, 3), np.uint8)
                    ).save(art, quality=85)
    audio = root / "a.wav"
    tone = 0.25 * np.sin(2 * np.pi * 440 * np.arange(44_100) / 44_100)
    sf.write(audio, np.repeat(tone[:, None], 2, 1).astype(np.float32), 44_100,
             subtype="PCM_16")
    async with open_database(f"sqlite://{root / 'b.sqlite3'}") as db, FakeStore() as store:
        await db.migrate([*JOBS, *EVENTS])  # the core's tables first, as the server does
        await db.migrate(MIGRATIONS)
        catalog = Catalog(db)
        for n in range(RELEASES):
            await catalog.save_release("acc", {
                "release_id": f"r{n}", "title": "T", "artists": ["A"], "label": "L",
                "genre": "Pop", "language": "en", "p_line": "2026 L", "c_line": "2026 L",
                "upc": make_upc(f"{10**10 + n:011d}"), "release_date": "2030-01-01",
                "artwork_path": str(art), "tracks": [{
                    "title": "T", "audio_path": str(audio), "isrc": f"QZABC26{n:05d}",
                    "contributors": [{"name": "A", "role": "composer"}]}]})
        snapshots = [await catalog.snapshot("acc", f"r{n}") for n in range(RELEASES)]
        connector = HttpDropConnector("s", store.url, token="secret")
        loop = asyncio.get_running_loop()
        start = loop.time()
        for n in range(RELEASES):
            package = await catalog.package("acc", f"r{n}", "s", "new", f"direct-{n}",
                                            snapshots[n])
            await connector.deliver(package)
        direct = loop.time() - start
        pipeline = DeliveryPipeline(db, JobQueue(db), [connector], catalog.package,
                                    settings=PipelineSettings(concurrency=4))
        worker = JobWorker(pipeline.queue, {DELIVER: pipeline.handle})
        start = loop.time()
        for n in range(RELEASES):
            await pipeline.enqueue("acc", f"r{n}", ["s"], snapshot_id=snapshots[n])
        while await worker.run_once(DELIVER):
            pass
        piped = loop.time() - start
        assert len(store.accepted) == 2 * RELEASES
        return direct, piped


def test_delivery_pipeline_against_direct_uploads(benchmark) -> None:  # noqa: ANN001
    with tempfile.TemporaryDirectory() as tmp:
        direct, piped = asyncio.run(_delivery_figures(Path(tmp)))
    benchmark.extra_info["note"] = "one run each, timed by hand"
    record(benchmark, releases=RELEASES, deliveries_per_s=RELEASES / piped,
           ratio_to_direct=piped / direct)
