"""A stopping worker never runs a finished attempt again; a ``Retry`` whose delay is not
a finite number still retries the job (and lets it become a dead letter)."""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from database import open_database
from jobs import DEAD, DONE, RETRYING, JobContext, JobQueue, JobWorker, QueueSettings, Retry
from jobs.queue import MAX_RETRY_AFTER_S

SETTINGS = QueueSettings(max_attempts=2, backoff_base=5.0, backoff_cap=10.0, lease_s=3)


def with_queue(url: str, body: Callable[[JobQueue], Awaitable[None]],
               clock: Callable[[], float] | None = None) -> None:
    async def go() -> None:
        async with asyncio.timeout(30), open_database(url) as db:
            queue = JobQueue(db, {"work": SETTINGS}, rng=random.Random(3),
                             **({"clock": clock} if clock else {}))
            await queue.setup()
            await body(queue)

    asyncio.run(go())


async def stopped_at(queue: JobQueue, handler: Callable[[JobContext], Awaitable[Any]],
                     reached: asyncio.Event) -> Any:
    """One job's record after a worker running it is stopped once ``reached`` is set,
    checked not to be run again by a later worker."""
    job = await queue.enqueue("work", {}, account_id="a")
    worker = JobWorker(queue, {"work": handler}, poll_s=0.05)
    worker.start()
    await reached.wait()
    await worker.stop()
    assert await JobWorker(queue, {"work": handler}).run_once("work") == 0
    return await queue.get("a", job.id)


def test_a_handler_that_ended_as_the_worker_stops_is_recorded_not_run_again(
        collab_database_url: str) -> None:
    async def body(queue: JobQueue) -> None:
        runs: list[int] = []
        ended = asyncio.Event()

        async def handler(ctx: JobContext) -> dict[str, Any]:
            runs.append(ctx.attempt)
            ended.set()  # the worker is stopped before it records the result
            return {"sent": True}

        record = await stopped_at(queue, handler, ended)
        assert (record.state, record.result, record.attempts) == (DONE, {"sent": True}, 1)
        assert runs == [1]

    with_queue(collab_database_url, body)


def test_a_result_being_recorded_as_the_worker_stops_is_still_recorded(
        collab_database_url: str) -> None:
    async def body(queue: JobQueue) -> None:
        runs: list[int] = []
        recording, never = asyncio.Event(), asyncio.Event()
        complete = queue.complete

        async def slow_complete(job: Any, result: Any = None) -> bool:
            if not recording.is_set():  # the first commit is slow: the stop cancels it
                recording.set()
                await never.wait()
            return await complete(job, result)

        queue.complete = slow_complete  # type: ignore[method-assign]

        async def handler(ctx: JobContext) -> int:
            runs.append(ctx.attempt)
            return 7

        record = await stopped_at(queue, handler, recording)
        assert (record.state, record.result) == (DONE, 7)
        assert runs == [1]

    with_queue(collab_database_url, body)


@pytest.mark.parametrize("after", [math.nan, math.inf, -math.inf])
def test_a_retry_after_that_is_not_a_finite_number_gets_the_backoff(
        collab_database_url: str, after: float) -> None:
    now = [1_000_000.0]

    async def body(queue: JobQueue) -> None:
        async def handler(ctx: JobContext) -> None:
            raise Retry("later", after=after)

        job = await queue.enqueue("work", {}, account_id="a")
        worker = JobWorker(queue, {"work": handler})
        assert await worker.run_once("work") == 1
        record = await queue.get("a", job.id)
        assert record.state == RETRYING
        assert now[0] + 2.5 <= record.run_at <= now[0] + 5.0  # attempt 1: base 5, jitter
        now[0] = record.run_at
        assert await worker.run_once("work") == 1
        assert (await queue.get("a", job.id)).state == DEAD

    with_queue(collab_database_url, body, clock=lambda: now[0])


def test_a_negative_retry_after_retries_at_once(collab_database_url: str) -> None:
    async def body(queue: JobQueue) -> None:
        async def handler(ctx: JobContext) -> None:
            raise Retry("now", after=-30.0)

        job = await queue.enqueue("work", {}, account_id="a")
        assert await JobWorker(queue, {"work": handler}).run_once("work") == 1
        record = await queue.get("a", job.id)
        assert (record.state, record.run_at) == (RETRYING, 1_000_000.0)

    with_queue(collab_database_url, body, clock=lambda: 1_000_000.0)


@pytest.mark.parametrize("after", [1e300, 400 * 86_400.0])
def test_a_retry_after_beyond_a_year_waits_366_days(collab_database_url: str,
                                                    after: float) -> None:
    """A finite but huge delay (a remote ``Retry-After: 1e300``) would make a job that is
    never due and never dead; it waits the longest a retry may, 366 days, instead."""
    async def body(queue: JobQueue) -> None:
        async def handler(ctx: JobContext) -> None:
            raise Retry("much later", after=after)

        job = await queue.enqueue("work", {}, account_id="a")
        assert await JobWorker(queue, {"work": handler}).run_once("work") == 1
        record = await queue.get("a", job.id)
        assert (record.state, record.run_at) == (RETRYING, 1_000_000.0 + MAX_RETRY_AFTER_S)
        assert MAX_RETRY_AFTER_S == 366 * 86_400

    with_queue(collab_database_url, body, clock=lambda: 1_000_000.0)
