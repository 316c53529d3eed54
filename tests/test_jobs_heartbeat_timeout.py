"""A worker whose heartbeats fail or hang: bounded beats, never two workers running one job."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import pytest

from database import open_database
from jobs import DONE, JobContext, JobQueue, JobRecord, JobWorker, QueueSettings
from jobs.queue import Beat


def with_queue(url: str, body: Callable[[JobQueue], Awaitable[None]],
               settings: QueueSettings) -> None:
    async def go() -> None:
        async with asyncio.timeout(60), open_database(url) as db:
            queue = JobQueue(db, {"work": settings})
            await queue.setup()
            await body(queue)

    asyncio.run(go())


async def until(check: Callable[[], object], timeout: float = 20.0) -> None:
    """Wait until ``check()`` is true; fail after ``timeout`` seconds."""
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.02)


async def finished(queue: JobQueue, job: JobRecord) -> JobRecord:
    """``job`` once it is done, dead or cancelled."""
    async with asyncio.timeout(20):
        while not (record := await queue.get(job.account_id, job.id)).finished:
            await asyncio.sleep(0.02)
    return record


class OneRunAtATime:
    """A handler that notes who ran it beside another worker and whose run was stopped;
    it answers its worker's id, except on the worker ``cut-off``, where it never ends."""

    def __init__(self) -> None:
        self.running: set[str] = set()
        self.overlaps: list[set[str]] = []
        self.stopped: list[str] = []

    async def __call__(self, ctx: JobContext) -> str:
        me = ctx.job.worker or ""
        self.running.add(me)
        if len(self.running) > 1:
            self.overlaps.append(set(self.running))
        try:
            if me == "cut-off":
                await asyncio.sleep(3600)
            return me
        except asyncio.CancelledError:
            self.stopped.append(me)
            raise
        finally:
            self.running.discard(me)


def test_a_worker_whose_heartbeats_fail_stops_its_handler_before_another_takes_the_job(
        collab_database_url: str) -> None:
    """The database is out of reach for one node: its handler stops once the lease it last
    renewed runs out, records nothing, and the node that takes the job over runs it alone."""
    handler = OneRunAtATime()

    async def body(queue: JobQueue) -> None:
        cut_off = JobQueue(queue.db, queue.settings)

        async def unreachable(job: JobRecord, *args: object) -> object:
            raise ConnectionError("connection to the database lost")

        cut_off.heartbeat = unreachable  # type: ignore[method-assign]
        job = await queue.enqueue("work", {}, account_id="a")
        async with JobWorker(cut_off, {"work": handler}, worker_id="cut-off", poll_s=5):
            await until(lambda: "cut-off" in handler.running)
            async with JobWorker(queue, {"work": handler}, worker_id="reachable",
                                 poll_s=0.05):
                done = await finished(queue, job)
        assert (done.state, done.result, done.attempts) == (DONE, "reachable", 2)
        assert handler.stopped == ["cut-off"] and handler.overlaps == []

    with_queue(collab_database_url, body, QueueSettings(lease_s=0.6))


def test_a_worker_whose_heartbeat_hangs_stops_its_handler_before_another_takes_the_job(
        collab_database_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """The database never answers one node's heartbeat, and a cancel does not end the
    call either (a statement on SQLite's writer runs to its end): the node still stops
    its handler once the lease it last renewed may run out, records nothing with its
    token, logs it once, and the node that takes the job over runs it alone."""
    handler = OneRunAtATime()
    recorded: list[str] = []
    answer = asyncio.Event()  # the database answers: only at the end of the test

    async def hangs(job: JobRecord, *args: object) -> Beat:
        try:
            await answer.wait()
        except asyncio.CancelledError:
            await answer.wait()  # a cancel ends the call only once the database answers
            raise
        raise ConnectionError("the database answered too late")

    async def records(job: JobRecord, *args: object, **kwargs: object) -> bool:
        recorded.append(job.id)
        return False

    async def body(queue: JobQueue) -> None:
        cut_off = JobQueue(queue.db, queue.settings)
        claim_once = cut_off.claim

        async def claim(name: str, worker: str, limit: int = 1) -> list[JobRecord]:
            if claimed:  # then the database is out of this node's reach
                raise ConnectionError("the database does not answer")
            claimed.extend(await claim_once(name, worker, limit))
            return claimed

        claimed: list[JobRecord] = []
        cut_off.claim = claim  # type: ignore[method-assign]
        cut_off.heartbeat = hangs  # type: ignore[method-assign]
        for finish in ("complete", "fail", "cancelled"):
            setattr(cut_off, finish, records)
        job = await queue.enqueue("work", {}, account_id="a")
        async with JobWorker(cut_off, {"work": handler}, worker_id="cut-off", poll_s=5):
            try:
                await until(lambda: "cut-off" in handler.running)
                async with JobWorker(queue, {"work": handler}, worker_id="reachable",
                                     poll_s=0.05):
                    done = await finished(queue, job)
                seen = (list(handler.stopped), list(handler.overlaps), list(recorded))
            finally:
                answer.set()
        assert (done.state, done.result, done.attempts) == (DONE, "reachable", 2)
        assert seen == (["cut-off"], [], [])
        stops = [record.getMessage() for record in caplog.records
                 if "stopping its handler" in record.getMessage()]
        assert len(stops) == 1 and job.id in stops[0] and "(work)" in stops[0]

    with caplog.at_level(logging.WARNING, logger="jobs.worker"):
        with_queue(collab_database_url, body, QueueSettings(lease_s=0.6))


def test_a_heartbeat_that_times_out_once_then_lands_keeps_the_job_running(
        collab_database_url: str) -> None:
    """One heartbeat gets no answer, the next one lands within the lease: the job runs on
    past its first lease and is done by its worker alone (another node never takes it)."""
    runs: list[str] = []
    hung: list[str] = []
    landed: list[bool] = []
    never = asyncio.Event()

    async def body(queue: JobQueue) -> None:
        blip = JobQueue(queue.db, queue.settings)
        real_heartbeat = blip.heartbeat

        async def first_hangs(job: JobRecord, *args: object) -> Beat:
            if not hung:
                hung.append(job.id)
                await never.wait()  # given up on (and cancelled) by the worker
            beat = await real_heartbeat(job, *args)  # type: ignore[arg-type]
            landed.append(beat.held)
            return beat

        blip.heartbeat = first_hangs  # type: ignore[method-assign]

        async def handler(ctx: JobContext) -> str:
            me = ctx.job.worker or ""
            runs.append(me)
            if me == "blip":
                ctx.progress(0.1)  # a beat at once: the one that hangs
                # three beats that land take it well past the lease it was claimed with
                async with asyncio.timeout(20):
                    while len(landed) < 3:
                        await asyncio.sleep(0.02)
            return me

        job = await queue.enqueue("work", {}, account_id="a")
        async with JobWorker(blip, {"work": handler}, worker_id="blip", poll_s=5):
            await until(lambda: "blip" in runs)
            async with JobWorker(queue, {"work": handler}, worker_id="other", poll_s=0.05):
                done = await finished(queue, job)
        assert (done.state, done.result, done.attempts) == (DONE, "blip", 1)
        assert runs == ["blip"] and hung == [job.id]
        assert len(landed) >= 3 and all(landed)

    with_queue(collab_database_url, body, QueueSettings(lease_s=3))
