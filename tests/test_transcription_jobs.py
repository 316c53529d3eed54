"""Transcription jobs on the one job queue: off the event loop, progress, cancel, restarts.

Each test serves the ``transcription`` queue with a :class:`jobs.JobWorker` and
:func:`transcription.jobs.transcribe`, as the server does (the server's part,
writing into the document, is tested in ``test_transcription_api.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile

from database import open_database
from jobs import JobContext, JobQueue, JobWorker, Permanent, QueueSettings
from transcription.engine import Transcriber
from transcription.errors import JobCancelled, JobError
from transcription.evaluation import SAMPLES, synthesize, word_error_rate
from transcription.jobs import (
    CANCELLED,
    DONE,
    FAILED,
    QUEUE,
    QUEUED,
    RUNNING,
    Job,
    TranscriberPool,
    TranscriptionRequest,
    migrate,
    queue_settings,
    transcribe,
)

Progress = Callable[[str, float], None]


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> Path:
    voice, text = SAMPLES["en"]
    return synthesize(text, voice, tmp_path_factory.mktemp("jobs") / "en.wav")


@pytest.fixture(scope="module")
def long_speech(speech: Path) -> Path:
    """The sentence four times with pauses (~30 s)."""
    audio, rate = soundfile.read(str(speech), dtype="float32")
    pause = np.zeros(rate * 2, np.float32)
    path = speech.with_name("long.wav")
    soundfile.write(str(path), np.concatenate([audio, pause] * 4), rate)
    return path


@dataclasses.dataclass
class Served:
    """A job queue and the worker serving its ``transcription`` queue."""

    queue: JobQueue
    worker: JobWorker
    pool: TranscriberPool

    async def submit(self, source: Path | str, project_id: str = "p1", **options: Any) -> Job:
        request = TranscriptionRequest(project_id=project_id, source=str(source), **options)
        record = await self.queue.enqueue(QUEUE, request.to_payload(), account_id=project_id)
        return Job.from_record(record)

    async def job(self, job_id: str, project_id: str = "p1") -> Job:
        return Job.from_record(await self.queue.get(project_id, job_id))

    async def until(self, job_id: str, *statuses: str, timeout: float = 120.0) -> Job:
        async with asyncio.timeout(timeout):
            while (job := await self.job(job_id)).status not in statuses:
                await asyncio.sleep(0.05)
        return job

    async def wait(self, job_id: str) -> Job:
        return await self.until(job_id, DONE, FAILED, CANCELLED)


@contextlib.asynccontextmanager
async def serving(url: str, factory: Callable[[], Any], *, workers: int = 1,
                  progress: Progress | None = None) -> AsyncIterator[Served]:
    """Serve transcription jobs in the database ``url`` with a pool of ``workers`` models."""
    async with open_database(url) as db:
        await migrate(db)
        queue = JobQueue(db, {QUEUE: queue_settings(workers)})
        pool = TranscriberPool(factory, workers)

        async def handler(ctx: JobContext) -> dict:
            def report(fraction: float) -> None:
                if progress is not None:
                    progress(ctx.job.id, fraction)

            return (await transcribe(ctx, pool, report)).to_dict()

        async with JobWorker(queue, {QUEUE: handler}, poll_s=0.2) as worker:
            yield Served(queue, worker, pool)


def sqlite(path: Path) -> str:
    return f"sqlite://{path / 'jobs.sqlite3'}"


def test_a_job_runs_off_the_loop_and_keeps_its_result(tmp_path: Path, speech: Path,
                                                      transcriber: Transcriber) -> None:
    seen: list[tuple[str, float]] = []

    async def scenario() -> tuple[Job, Job, list[float]]:
        ticks = []
        async with serving(sqlite(tmp_path), lambda: transcriber,
                           progress=lambda job_id, p: seen.append((job_id, p))) as served:
            async def ticker() -> None:  # the loop keeps running while Whisper decodes
                while True:
                    ticks.append(asyncio.get_running_loop().time())
                    await asyncio.sleep(0.05)

            tick = asyncio.create_task(ticker())
            queued = await served.submit(speech, clip_id="c1", language="en")
            done = await served.wait(queued.id)
            tick.cancel()
        return queued, done, ticks

    queued, job, ticks = asyncio.run(scenario())
    assert (queued.status, queued.progress, queued.result) == (QUEUED, 0.0, None)
    assert job.status == DONE and job.progress == 1.0 and job.error is None
    assert (job.clip_id, job.language, job.source) == ("c1", "en", str(speech))
    assert word_error_rate(SAMPLES["en"][1], job.transcript.text, "en") < 0.1
    progress = [p for job_id, p in seen if job_id == job.id]
    assert progress and progress == sorted(progress) and progress[-1] == 1.0
    # Decoding on the loop would stall it for the whole job: one gap as long as the run.
    # Off the loop, the longest gap is a scheduling hiccup (up to ~1 s on a loaded machine).
    assert len(ticks) >= 5 and max(np.diff(ticks)) < 0.5 * (ticks[-1] - ticks[0])

    async def stored() -> tuple[dict, list[str], list[str]]:  # from outside any worker
        async with open_database(sqlite(tmp_path)) as db:
            queue = JobQueue(db)
            return ((await queue.get("p1", job.id)).result,
                    [r.id for r in await queue.find(account_id="p1", queue=QUEUE)],
                    [r.id for r in await queue.find(account_id="p2", queue=QUEUE)])

    assert asyncio.run(stored()) == (job.result, [job.id], [])


def test_jobs_survive_a_restart(tmp_path: Path, speech: Path,
                                transcriber: Transcriber) -> None:
    async def first_run() -> list[str]:
        async with serving(sqlite(tmp_path), lambda: transcriber) as served:
            running = await served.submit(speech, language="en")
            waiting = await served.submit(speech, language="en")
            await served.until(running.id, RUNNING, timeout=60)
        return [running.id, waiting.id]

    async def stored(ids: list[str]) -> list[tuple[str, float, int]]:  # no worker running
        async with open_database(sqlite(tmp_path)) as db:
            records = [await JobQueue(db).get("p1", job_id) for job_id in ids]
        return [(Job.from_record(r).status, r.progress, r.attempts) for r in records]

    async def second_run(ids: list[str]) -> list[Job]:
        async with serving(sqlite(tmp_path), lambda: transcriber) as served:
            return [await served.wait(job_id) for job_id in ids]

    ids = asyncio.run(first_run())
    # the worker stopped: the running job was given back, the waiting one waits
    assert asyncio.run(stored(ids)) == [(QUEUED, 0.0, 0), (QUEUED, 0.0, 0)]
    jobs = asyncio.run(second_run(ids))
    assert [j.status for j in jobs] == [DONE, DONE]
    assert all(j.transcript.words for j in jobs)


def test_a_job_left_running_by_a_crash_is_taken_over(collab_database_url: str, speech: Path,
                                                     transcriber: Transcriber) -> None:
    async def run() -> tuple[Job, Job, int]:
        async with open_database(collab_database_url) as db:  # a worker that then dies
            await migrate(db)
            crashed = JobQueue(db, {QUEUE: QueueSettings(lease_s=1)})
            request = TranscriptionRequest(project_id="p1", source=str(speech))
            held = await crashed.enqueue(QUEUE, request.to_payload(), account_id="p1")
            waiting = await crashed.enqueue(QUEUE, request.to_payload(), account_id="p1")
            [claimed] = await crashed.claim(QUEUE, "crashed-worker")
            assert claimed.id == held.id
        async with serving(collab_database_url, lambda: transcriber) as served:
            first, second = await served.wait(held.id), await served.wait(waiting.id)
            return first, second, (await served.queue.get("p1", held.id)).attempts

    first, second, attempts = asyncio.run(run())
    assert (first.status, second.status, attempts) == (DONE, DONE, 2)
    assert first.transcript.words and second.transcript.words


def test_cancelling_a_running_job_stops_it(tmp_path: Path, long_speech: Path,
                                           transcriber: Transcriber) -> None:
    async def run() -> tuple[Job, Job]:
        async with serving(sqlite(tmp_path), lambda: transcriber) as served:
            job = await served.submit(long_speech, language="en")
            await served.until(job.id, RUNNING, timeout=60)
            answer = Job.from_record(await served.queue.cancel("p1", job.id))
            return answer, await served.wait(job.id)

    answer, job = asyncio.run(run())
    assert answer.status == CANCELLED  # at once, though the decode stops at its next segment
    assert job.status == CANCELLED and job.result is None and job.progress < 1.0


def test_cancelling_a_queued_job_means_it_never_runs(tmp_path: Path, speech: Path,
                                                     transcriber: Transcriber) -> None:
    async def run() -> tuple[Job, Job, Job, int]:
        async with serving(sqlite(tmp_path), lambda: transcriber) as served:
            first = await served.submit(speech, language="en")
            second = await served.submit(speech, language="en")
            answer = Job.from_record(await served.queue.cancel("p1", second.id))
            first, second = await served.wait(first.id), await served.wait(second.id)
            return first, second, answer, (await served.queue.get("p1", second.id)).attempts

    first, second, answer, attempts = asyncio.run(run())
    assert answer.status == CANCELLED and answer.error is None
    assert first.status == DONE and second.status == CANCELLED
    assert attempts == 0  # never claimed


def test_a_job_on_a_bad_file_fails_at_once_with_a_clear_error(
        tmp_path: Path, transcriber: Transcriber) -> None:
    async def run() -> tuple[Job, int]:
        async with serving(sqlite(tmp_path), lambda: transcriber) as served:
            job = await served.wait((await served.submit(tmp_path / "missing.wav")).id)
            return job, (await served.queue.get("p1", job.id)).attempts

    job, attempts = asyncio.run(run())
    assert job.status == FAILED and "does not exist" in job.error
    assert attempts == 1  # retrying cannot make the file appear


def test_each_model_is_loaded_once_and_used_by_one_thread_at_a_time(
        tmp_path: Path, speech: Path, transcriber: Transcriber) -> None:
    built: list[int] = []
    overlaps: list[int] = []

    class OneAtATime:
        def __init__(self) -> None:
            self.busy = threading.Lock()

        def transcribe(self, *args: Any, **kwargs: Any) -> Any:
            if not self.busy.acquire(blocking=False):
                overlaps.append(threading.get_ident())
                raise AssertionError("a model was used by two threads at once")
            try:
                return transcriber.transcribe(*args, **kwargs)
            finally:
                self.busy.release()

    def factory() -> OneAtATime:
        built.append(threading.get_ident())
        return OneAtATime()

    async def run() -> tuple[list[Job], int]:
        async with serving(sqlite(tmp_path), factory, workers=2) as served:
            jobs = [await served.submit(speech, language="en") for _ in range(4)]
            return [await served.wait(j.id) for j in jobs], served.pool.loaded

    jobs, loaded = asyncio.run(run())
    assert [j.status for j in jobs] == [DONE] * 4 and overlaps == []
    assert 1 <= len(built) == loaded <= 2 and len(set(built)) == len(built)


def test_misuse_is_refused() -> None:
    with pytest.raises(JobError, match="workers must be >= 1"):
        queue_settings(0)
    with pytest.raises(JobError, match="workers must be >= 1"):
        TranscriberPool(lambda: None, 0)
    with pytest.raises(Permanent, match="not a transcription request"):
        TranscriptionRequest.from_payload({"project_id": "p1", "clip": "c1"})


def test_a_pool_waits_for_a_free_model_and_stops_waiting_when_cancelled() -> None:
    made: list[object] = []
    failures = [RuntimeError("model.bin is truncated")]

    def factory() -> object:
        if failures:
            raise failures.pop()
        made.append(object())
        return made[-1]

    pool = TranscriberPool(factory, 1)
    with pytest.raises(RuntimeError, match="truncated"), pool.borrow():
        pass
    assert pool.loaded == 0  # a model that failed to load frees its slot
    cancel = threading.Event()
    waited: list[object] = []
    with pool.borrow() as model:
        def other() -> None:
            try:
                with pool.borrow(cancel):
                    waited.append("got a model")
            except JobCancelled as exc:
                waited.append(exc)

        thread = threading.Thread(target=other)
        thread.start()
        thread.join(0.3)
        assert thread.is_alive() and waited == []  # the one model is busy: it waits
        cancel.set()
        thread.join(5)
    assert isinstance(waited[0], JobCancelled)
    with pool.borrow() as again:
        assert again is model and made == [model] and pool.loaded == 1
