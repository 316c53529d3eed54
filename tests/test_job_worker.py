"""The job worker: handlers, progress, retries, cancellation, concurrency and shutdown."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable

import pytest

from database import open_database
from jobs import (
    CANCELLED,
    DEAD,
    DONE,
    QUEUED,
    RETRYING,
    JobContext,
    JobQueue,
    JobRecord,
    JobWorker,
    Permanent,
    QueueSettings,
    Retry,
)

FAST = QueueSettings(max_attempts=3, backoff_base=0.05, backoff_cap=0.1, lease_s=3,
                     concurrency=2)


def with_queue(url: str, body: Callable[[JobQueue], Awaitable[None]],
               settings: QueueSettings = FAST) -> None:
    async def go() -> None:
        async with asyncio.timeout(60), open_database(url) as db:
            queue = JobQueue(db, {"work": settings})
            await queue.setup()
            await body(queue)

    asyncio.run(go())


async def until(check: Callable[[], Awaitable[object]], timeout: float = 20.0) -> object:
    """Poll ``check`` until it gives something true; fail after ``timeout`` seconds."""
    async with asyncio.timeout(timeout):
        while not (result := await check()):
            await asyncio.sleep(0.02)
    return result


async def finished(queue: JobQueue, job: JobRecord) -> JobRecord:
    async def check() -> JobRecord | None:
        record = await queue.get(job.account_id, job.id)
        return record if record.finished else None

    return await until(check)


def running_in(worker: JobWorker) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return bool(worker.running("work"))

    return check


def test_a_handler_result_is_stored_and_its_progress_seen_while_it_runs(
        collab_database_url: str) -> None:
    release = asyncio.Event()

    async def handler(ctx: JobContext) -> dict:
        ctx.progress(0.5, "half way")
        await release.wait()
        return {"doubled": ctx.payload["n"] * 2, "attempt": ctx.attempt}

    async def body(queue: JobQueue) -> None:
        async with JobWorker(queue, {"work": handler}, poll_s=5):
            job = await queue.enqueue("work", {"n": 21}, account_id="a")

            async def halfway() -> bool:
                return (await queue.get("a", job.id)).progress == 0.5

            await until(halfway)
            assert (await queue.get("a", job.id)).note == "half way"
            release.set()
            done = await finished(queue, job)
        assert (done.state, done.result) == (DONE, {"doubled": 42, "attempt": 1})

    with_queue(collab_database_url, body)


def test_failures_are_retried_then_kept_as_dead_letters(collab_database_url: str) -> None:
    calls: dict[str, int] = {}

    async def handler(ctx: JobContext) -> str:
        kind = ctx.payload["kind"]
        calls[kind] = calls.get(kind, 0) + 1
        if kind == "flaky" and ctx.attempt < 3:
            raise ConnectionError("store unreachable")
        if kind == "later" and ctx.attempt == 1:
            raise Retry("rate limited", after=0.2)
        if kind == "broken":
            raise ValueError("always")
        if kind == "invalid":
            raise Permanent("payload names no clip")
        return "ok"

    async def body(queue: JobQueue) -> None:
        async with JobWorker(queue, {"work": handler}, poll_s=0.2):
            jobs = {kind: await queue.enqueue("work", {"kind": kind}, account_id="a")
                    for kind in ("flaky", "later", "broken", "invalid")}
            done = {kind: await finished(queue, job) for kind, job in jobs.items()}
        assert (done["flaky"].state, done["flaky"].attempts) == (DONE, 3)
        assert (done["later"].state, done["later"].attempts) == (DONE, 2)
        assert (done["broken"].state, done["broken"].attempts) == (DEAD, 3)
        assert done["broken"].last_error == "ValueError: always"
        assert (done["invalid"].state, done["invalid"].attempts) == (DEAD, 1)
        assert done["invalid"].last_error == "payload names no clip"  # the handler's words
        assert calls == {"flaky": 3, "later": 2, "broken": 3, "invalid": 1}
        assert {j.id for j in await queue.dead_letters("work")} == {
            jobs["broken"].id, jobs["invalid"].id}

    with_queue(collab_database_url, body)


def test_cancelling_a_running_job_stops_its_thread_and_its_coroutine(
        collab_database_url: str) -> None:
    started = threading.Event()
    stopped_cleanly: list[str] = []

    def blocking(ctx: JobContext) -> None:
        started.set()
        while True:
            try:
                ctx.check()
            except Exception:
                stopped_cleanly.append("thread")
                raise
            time.sleep(0.01)

    async def handler(ctx: JobContext) -> None:
        if ctx.payload["in_thread"]:
            await ctx.run_in_thread(blocking, ctx)
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            stopped_cleanly.append("coroutine")
            raise

    async def body(queue: JobQueue) -> None:
        async with JobWorker(queue, {"work": handler}, poll_s=5) as worker:
            for in_thread in (True, False):
                job = await queue.enqueue("work", {"in_thread": in_thread}, account_id="a")
                await until(running_in(worker))
                await asyncio.sleep(0.1)
                await queue.cancel("a", job.id)
                assert (await finished(queue, job)).state == CANCELLED
        assert started.is_set() and stopped_cleanly == ["thread", "coroutine"]

    with_queue(collab_database_url, body)


def test_a_cancel_from_another_process_is_seen_at_the_next_heartbeat(
        collab_database_url: str) -> None:
    async def handler(ctx: JobContext) -> None:
        await asyncio.sleep(3600)

    async def body(queue: JobQueue) -> None:
        elsewhere = JobQueue(queue.db, queue.settings)  # another node's queue object
        async with JobWorker(queue, {"work": handler}, poll_s=5) as worker:
            job = await queue.enqueue("work", {}, account_id="a")
            await until(running_in(worker))
            await elsewhere.cancel("a", job.id)
            assert (await finished(queue, job)).state == CANCELLED

    with_queue(collab_database_url, body, QueueSettings(lease_s=1.5))


def test_confirm_sees_a_cancel_from_another_process_before_the_next_heartbeat(
        collab_database_url: str) -> None:
    go_on = asyncio.Event()
    effects: list[str] = []

    async def handler(ctx: JobContext) -> str:
        await go_on.wait()
        await ctx.confirm()
        effects.append(ctx.payload["name"])
        return "written"

    async def body(queue: JobQueue) -> None:
        elsewhere = JobQueue(queue.db, queue.settings)  # another node's queue object
        async with JobWorker(queue, {"work": handler}, poll_s=5) as worker:
            kept = await queue.enqueue("work", {"name": "kept"}, account_id="a")
            dropped = await queue.enqueue("work", {"name": "dropped"}, account_id="a")

            async def both_running() -> bool:
                return len(worker.running("work")) == 2

            await until(both_running)
            await elsewhere.cancel("a", dropped.id)
            # the lease is long: no heartbeat comes before the handlers go on
            assert (await queue.get("a", dropped.id)).state == "running"
            go_on.set()
            states = [(await finished(queue, job)).state for job in (kept, dropped)]
        assert states == [DONE, CANCELLED] and effects == ["kept"]

    with_queue(collab_database_url, body, QueueSettings(lease_s=60, concurrency=2))


def test_no_more_jobs_of_a_queue_run_at_once_than_its_concurrency(
        collab_database_url: str) -> None:
    running = 0
    peak = 0

    async def handler(ctx: JobContext) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.05)
        running -= 1

    async def body(queue: JobQueue) -> None:
        async with JobWorker(queue, {"work": handler}, poll_s=0.2):
            jobs = [await queue.enqueue("work", {}, account_id="a") for _ in range(8)]
            states = [(await finished(queue, job)).state for job in jobs]
        assert states == [DONE] * 8
        assert peak == FAST.concurrency

    with_queue(collab_database_url, body)


def test_stopping_gives_running_jobs_back_and_another_worker_finishes_them(
        collab_database_url: str) -> None:
    entered = asyncio.Event()

    async def slow(ctx: JobContext) -> None:
        entered.set()
        await asyncio.sleep(3600)

    async def quick(ctx: JobContext) -> str:
        return "finished elsewhere"

    async def body(queue: JobQueue) -> None:
        job = await queue.enqueue("work", {}, account_id="a")
        async with JobWorker(queue, {"work": slow}, poll_s=5):
            async with asyncio.timeout(10):
                await entered.wait()
        given_back = await queue.get("a", job.id)
        assert (given_back.state, given_back.attempts) == (QUEUED, 0)
        async with JobWorker(queue, {"work": quick}, poll_s=0.2):
            done = await finished(queue, job)
        assert (done.state, done.result, done.attempts) == (DONE, "finished elsewhere", 1)

    with_queue(collab_database_url, body)



@pytest.mark.parametrize("stopped", ["while-claiming", "before-its-handler-starts"])
def test_a_job_claimed_as_the_worker_stops_is_given_back(
        collab_database_url: str, stopped: str) -> None:
    """The worker stops just as a claim lands: while it still waits for the claim's answer,
    or once the job is launched but before its handler ran. Either way the job goes back
    to the queue at once, not after its lease runs out."""
    ran: list[str] = []

    async def handler(ctx: JobContext) -> str:
        ran.append(ctx.job.id)
        return "ran"

    async def body(queue: JobQueue) -> None:
        job = await queue.enqueue("work", {}, account_id="a")
        worker = JobWorker(queue, {"work": handler}, poll_s=5)
        real_claim = queue.claim
        stops: list[asyncio.Task] = []

        async def claim(name: str, worker_id: str, limit: int = 1) -> list[JobRecord]:
            claimed = await real_claim(name, worker_id, limit)
            if claimed and not stops:
                stops.append(asyncio.create_task(worker.stop()))
                if stopped == "while-claiming":  # the stop cancels the wait for this answer
                    await asyncio.sleep(0)
                    await asyncio.sleep(0)
            return claimed

        queue.claim = claim  # type: ignore[method-assign]
        worker.start()
        async with asyncio.timeout(20):
            while not stops:
                await asyncio.sleep(0.01)
            await stops[0]
        back = await queue.get("a", job.id)
        assert (back.state, back.attempts, back.lease_token, ran) == (QUEUED, 0, None, [])

    with_queue(collab_database_url, body)


def test_a_dead_workers_job_is_taken_over_when_its_lease_expires(
        collab_database_url: str) -> None:
    async def handler(ctx: JobContext) -> str:
        return "rescued"

    async def body(queue: JobQueue) -> None:
        job = await queue.enqueue("work", {}, account_id="a")
        [held] = await queue.claim("work", "crashed-worker")  # then it never beats again
        assert held.id == job.id
        async with JobWorker(queue, {"work": handler}, poll_s=0.2):
            done = await finished(queue, job)
        assert (done.state, done.result, done.attempts) == (DONE, "rescued", 2)
        assert done.worker not in (None, "crashed-worker")

    with_queue(collab_database_url, body, QueueSettings(lease_s=1))


def test_run_once_runs_what_is_due_now_to_its_end_and_nothing_later(
        collab_database_url: str) -> None:
    async def handler(ctx: JobContext) -> str:
        if ctx.payload["fail"]:
            raise ConnectionError("store unreachable")
        return "ok"

    async def body(queue: JobQueue) -> None:
        worker = JobWorker(queue, {"work": handler})
        ok = await queue.enqueue("work", {"fail": False}, account_id="a")
        failing = await queue.enqueue("work", {"fail": True}, account_id="a")
        assert await worker.run_once("work") == 2
        assert (await queue.get("a", ok.id)).state == DONE
        retrying = await queue.get("a", failing.id)
        assert (retrying.state, retrying.attempts) == (RETRYING, 1)
        assert await worker.run_once("work") == 0  # its retry is not due yet

    with_queue(collab_database_url, body, QueueSettings(backoff_base=60, backoff_cap=60,
                                                        concurrency=4))


def test_run_in_thread_runs_in_the_handlers_context(collab_database_url: str) -> None:
    """A handler's context variables (a server's confinement of plug-in state files, a
    trace) hold in the thread it hands blocking work to, as with ``asyncio.to_thread``."""
    import contextvars

    where: contextvars.ContextVar[str] = contextvars.ContextVar("where", default="unset")

    async def handler(ctx: JobContext) -> str:
        where.set(ctx.payload["where"])
        return await ctx.run_in_thread(where.get)

    async def body(queue: JobQueue) -> None:
        job = await queue.enqueue("work", {"where": "the handler's"}, account_id="a")
        async with JobWorker(queue, {"work": handler}, poll_s=0.05):
            done = await finished(queue, job)
        assert (done.state, done.result) == (DONE, "the handler's")

    with_queue(collab_database_url, body)


def test_a_nan_progress_is_ignored_and_the_lease_still_renewed(
        collab_database_url: str) -> None:
    async def handler(ctx: JobContext) -> str:
        ctx.progress(0.25)
        await ctx.confirm()
        for _ in range(8):  # past the lease: only heartbeats that land keep it
            ctx.progress(float("nan"), "counting samples")
            await asyncio.sleep(0.1)
        return "counted"

    async def body(queue: JobQueue) -> None:
        async with JobWorker(queue, {"work": handler}, poll_s=0.05):
            job = await queue.enqueue("work", {}, account_id="a")
            done = await finished(queue, job)
        assert (done.state, done.result, done.attempts) == (DONE, "counted", 1)

    with_queue(collab_database_url, body, QueueSettings(lease_s=0.6))


def test_a_result_that_is_not_json_makes_a_dead_letter_after_one_run(
        collab_database_url: str) -> None:
    runs: list[int] = []

    async def handler(ctx: JobContext) -> dict:
        runs.append(ctx.attempt)  # its effects happened: running it again repeats them
        return {"tags": {"a", "b"}}

    async def body(queue: JobQueue) -> None:
        async with JobWorker(queue, {"work": handler}, poll_s=0.05):
            job = await queue.enqueue("work", {}, account_id="a")
            done = await finished(queue, job)
        assert (done.state, done.attempts, runs) == (DEAD, 1, [1])
        assert done.last_error.startswith("result is not JSON: ")
        assert "set" in done.last_error

    with_queue(collab_database_url, body, QueueSettings(lease_s=0.5, backoff_base=0.05,
                                                        backoff_cap=0.1))
