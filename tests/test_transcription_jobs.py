"""The job service: worker pool off the event loop, progress, cancel, requeue on restart."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
import pytest
import soundfile

from transcription.engine import Transcriber
from transcription.errors import JobError
from transcription.evaluation import SAMPLES, synthesize, word_error_rate
from transcription.job_store import JobStore, open_job_store
from transcription.jobs import CANCELLED, DONE, FAILED, QUEUED, RUNNING, Job, JobService

T = TypeVar("T")


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


def jobs_in(path: Path) -> contextlib.AbstractAsyncContextManager[JobStore]:
    """The job store in the SQLite file ``path``."""
    return open_job_store(f"sqlite://{path}")


def stored(path: Path, read: Callable[[JobStore], Awaitable[T]]) -> T:
    """``read(store)`` on the jobs saved in ``path``, from outside any service."""
    async def go() -> T:
        async with jobs_in(path) as store:
            return await read(store)

    return asyncio.run(go())


class Recorder:
    """Listener that remembers every state a job went through."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, float]] = []
        self.events: dict[tuple[str, str], asyncio.Event] = {}

    def __call__(self, job: Job) -> None:
        self.seen.append((job.id, job.status, job.progress))
        for (job_id, status), event in self.events.items():
            if job_id == job.id and status == job.status:
                event.set()

    def wait_for(self, job_id: str, status: str) -> asyncio.Event:
        return self.events.setdefault((job_id, status), asyncio.Event())


def test_a_job_runs_off_the_loop_and_keeps_its_result(tmp_path: Path, speech: Path,
                                                      transcriber: Transcriber) -> None:
    async def scenario() -> tuple[Job, Recorder, list[float]]:
        recorder, ticks = Recorder(), []
        async with jobs_in(tmp_path / "jobs.sqlite3") as store, \
                JobService(store, lambda: transcriber) as service:
            service.add_listener(recorder)

            async def ticker() -> None:  # the loop keeps running while Whisper decodes
                while True:
                    ticks.append(asyncio.get_running_loop().time())
                    await asyncio.sleep(0.05)

            tick = asyncio.create_task(ticker())
            job = await service.submit("p1", speech, clip_id="c1", language="en")
            done = await service.wait(job.id)
            tick.cancel()
        return done, recorder, ticks

    job, recorder, ticks = asyncio.run(scenario())
    assert job.status == DONE and job.progress == 1.0
    assert word_error_rate(SAMPLES["en"][1], job.transcript.text, "en") < 0.1
    statuses = [s for _, s, _ in recorder.seen]
    assert statuses[0] == QUEUED and RUNNING in statuses and statuses[-1] == DONE
    progress = [p for _, _, p in recorder.seen]
    assert progress == sorted(progress)
    # Decoding on the loop would stall it for the whole job: one gap as long as the run.
    # Off the loop, the longest gap is a scheduling hiccup (up to ~1 s on a loaded machine).
    assert len(ticks) >= 5 and max(np.diff(ticks)) < 0.5 * (ticks[-1] - ticks[0])
    path = tmp_path / "jobs.sqlite3"
    assert stored(path, lambda store: store.get(job.id)).result == job.result
    assert [j.id for j in stored(path, lambda store: store.for_project("p1"))] == [job.id]
    assert stored(path, lambda store: store.for_project("p2")) == []


def test_jobs_survive_a_restart(tmp_path: Path, speech: Path,
                                transcriber: Transcriber) -> None:
    path = tmp_path / "jobs.sqlite3"

    async def first_run() -> tuple[str, str]:
        recorder = Recorder()
        async with jobs_in(path) as store, JobService(store, lambda: transcriber) as service:
            service.add_listener(recorder)
            running = await service.submit("p1", speech, language="en")
            waiting = await service.submit("p1", speech, language="en")
            await asyncio.wait_for(recorder.wait_for(running.id, RUNNING).wait(), 60)
        return running.id, waiting.id

    interrupted, waiting = asyncio.run(first_run())
    assert stored(path, lambda store: store.get(interrupted)).status == QUEUED
    assert stored(path, lambda store: store.get(waiting)).status == QUEUED

    async def second_run() -> list[Job]:
        async with jobs_in(path) as store, JobService(store, lambda: transcriber) as service:
            return [await service.wait(interrupted), await service.wait(waiting)]

    jobs = asyncio.run(second_run())
    assert [j.status for j in jobs] == [DONE, DONE]
    assert all(j.transcript.words for j in jobs)


def test_a_job_left_running_by_a_crash_is_requeued(tmp_path: Path, speech: Path,
                                                   transcriber: Transcriber) -> None:
    crashed = Job(project_id="p1", source=str(speech), status=RUNNING, progress=0.4)
    stored(tmp_path / "jobs.sqlite3", lambda store: store.save(crashed))

    async def run() -> Job:
        async with jobs_in(tmp_path / "jobs.sqlite3") as store, \
                JobService(store, lambda: transcriber) as service:
            return await service.wait(crashed.id)

    assert asyncio.run(run()).status == DONE


def test_cancelling_a_running_job_stops_it(tmp_path: Path, long_speech: Path,
                                           transcriber: Transcriber) -> None:
    async def run() -> tuple[Job, Recorder]:
        recorder = Recorder()
        async with jobs_in(tmp_path / "jobs.sqlite3") as store, \
                JobService(store, lambda: transcriber) as service:
            service.add_listener(recorder)
            job = await service.submit("p1", long_speech, language="en")
            await asyncio.wait_for(recorder.wait_for(job.id, RUNNING).wait(), 60)
            await service.cancel(job.id)
            return await service.wait(job.id), recorder

    job, recorder = asyncio.run(run())
    assert job.status == CANCELLED
    assert job.result is None and job.progress < 1.0


def test_cancelling_a_queued_job_means_it_never_runs(tmp_path: Path, speech: Path,
                                                     transcriber: Transcriber) -> None:
    async def run() -> tuple[Job, Job, Recorder]:
        recorder = Recorder()
        async with jobs_in(tmp_path / "jobs.sqlite3") as store, \
                JobService(store, lambda: transcriber) as service:
            service.add_listener(recorder)
            first = await service.submit("p1", speech, language="en")
            second = await service.submit("p1", speech, language="en")
            assert (await service.cancel(second.id)).status == CANCELLED
            return await service.wait(first.id), await service.wait(second.id), recorder

    first, second, recorder = asyncio.run(run())
    assert first.status == DONE and second.status == CANCELLED
    assert (second.id, RUNNING, 0.0) not in recorder.seen


def test_a_job_on_a_bad_file_fails_with_a_clear_error(tmp_path: Path,
                                                      transcriber: Transcriber) -> None:
    async def run() -> Job:
        async with jobs_in(tmp_path / "jobs.sqlite3") as store, \
                JobService(store, lambda: transcriber) as service:
            job = await service.submit("p1", tmp_path / "missing.wav")
            return await service.wait(job.id)

    job = asyncio.run(run())
    assert job.status == FAILED and "does not exist" in job.error


def test_each_worker_thread_loads_one_model(tmp_path: Path, speech: Path,
                                            transcriber: Transcriber) -> None:
    built: list[int] = []

    def factory() -> Transcriber:
        built.append(threading.get_ident())
        return transcriber

    async def run() -> list[Job]:
        async with jobs_in(tmp_path / "jobs.sqlite3") as store, \
                JobService(store, factory, workers=2) as service:
            jobs = [await service.submit("p1", speech, language="en") for _ in range(4)]
            return [await service.wait(j.id) for j in jobs]

    assert [j.status for j in asyncio.run(run())] == [DONE] * 4
    assert 1 <= len(built) <= 2 and len(set(built)) == len(built)


def test_misuse_is_refused(tmp_path: Path, transcriber: Transcriber) -> None:
    async def misuse() -> None:
        async with jobs_in(tmp_path / "jobs.sqlite3") as store:
            with pytest.raises(JobError, match="no transcription job"):
                await store.get("nope")
            with pytest.raises(JobError, match="workers"):
                JobService(store, lambda: transcriber, workers=0)
            service = JobService(store, lambda: transcriber)
            with pytest.raises(JobError, match="not started"):
                await service.submit("p1", "x.wav")
            async with service:
                with pytest.raises(JobError, match="already started"):
                    await service.start()

    asyncio.run(misuse())
