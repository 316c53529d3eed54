"""Dead-letter notices: a watched queue's owner hears of each job that dies, however."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from database import open_database
from jobs import (
    DEAD,
    DEAD_NOTICES,
    DONE,
    JobContext,
    JobQueue,
    JobRecord,
    JobWorker,
    Permanent,
    QueueSettings,
)
from jobs.dead_notices import dead_notice_handler

WORK = QueueSettings(max_attempts=2, backoff_base=0.05, backoff_cap=0.1, lease_s=0.5)
NOTICES = QueueSettings(max_attempts=5, backoff_base=0.05, backoff_cap=0.1, lease_s=3)


def with_queue(url: str, body: Callable[[JobQueue], Awaitable[None]]) -> None:
    async def go() -> None:
        async with asyncio.timeout(60), open_database(url) as db:
            queue = JobQueue(db, {"work": WORK, DEAD_NOTICES: NOTICES})
            await queue.setup()
            queue.watch_dead("work")
            await body(queue)

    asyncio.run(go())


async def settled(queue: JobQueue) -> list[JobRecord]:
    """Wait until no notice is waiting or running; the notices, oldest first."""
    async with asyncio.timeout(20):
        while True:
            notices = await queue.find(queue=DEAD_NOTICES)
            if notices and all(n.finished for n in notices):
                return notices
            await asyncio.sleep(0.02)


def test_a_job_whose_workers_die_on_every_attempt_is_told_once(
        collab_database_url: str) -> None:
    told: list[JobRecord] = []

    async def hook(record: JobRecord) -> None:
        told.append(record)

    async def handler(ctx: JobContext) -> str:
        raise AssertionError("its last claim gives up without running it")

    async def body(queue: JobQueue) -> None:
        job = await queue.enqueue("work", {"line": 7}, account_id="seller")
        for _ in range(WORK.max_attempts):  # each worker is killed while holding it
            assert [j.id for j in await queue.claim("work", "killed")] == [job.id]
            await asyncio.sleep(WORK.lease_s + 0.1)
        handlers = {"work": handler, DEAD_NOTICES: dead_notice_handler(queue, {"work": hook})}
        async with JobWorker(queue, handlers, poll_s=0.05):
            [notice] = await settled(queue)
        assert notice.state == DONE and notice.account_id == "seller"
        [dead] = told
        assert (dead.id, dead.state, dead.payload) == (job.id, DEAD, {"line": 7})
        assert "workers stopped before finishing" in dead.last_error

    with_queue(collab_database_url, body)


def test_each_death_is_told_once_a_requeued_job_again_and_success_never(
        collab_database_url: str) -> None:
    told: list[tuple[str, str]] = []
    hook_failures = [ConnectionError("mail database restarting")]

    async def hook(record: JobRecord) -> None:
        if hook_failures:  # the notice is retried, not lost
            raise hook_failures.pop()
        told.append((record.payload["name"], record.last_error))

    async def handler(ctx: JobContext) -> str:
        if ctx.payload["name"] == "refused":
            raise Permanent("the bank refused it for good")
        if ctx.attempt < 2:
            raise ConnectionError("try again")
        return "paid"

    async def body(queue: JobQueue) -> None:
        handlers = {"work": handler, DEAD_NOTICES: dead_notice_handler(queue, {"work": hook})}
        async with JobWorker(queue, handlers, poll_s=0.05):
            refused = await queue.enqueue("work", {"name": "refused"}, account_id="a")
            await queue.enqueue("work", {"name": "flaky"}, account_id="a")
            notices = await settled(queue)
            assert [n.state for n in notices] == [DONE]
            assert notices[0].attempts == 2  # its first run's hook failed
            assert told == [("refused", "the bank refused it for good")]
            await queue.requeue("a", refused.id)  # dies again: told again
            async with asyncio.timeout(20):
                while len(told) < 2:
                    await asyncio.sleep(0.02)
        assert told == [("refused", "the bank refused it for good")] * 2
        assert len(await queue.find(queue=DEAD_NOTICES)) == 2
        flaky = [j for j in await queue.find(queue="work") if j.payload["name"] == "flaky"]
        assert [j.state for j in flaky] == [DONE]

    with_queue(collab_database_url, body)


def test_a_notice_of_a_job_requeued_meanwhile_tells_nothing(
        collab_database_url: str) -> None:
    told: list[JobRecord] = []

    async def hook(record: JobRecord) -> None:
        told.append(record)

    async def body(queue: JobQueue) -> None:
        job = await queue.enqueue("work", {}, account_id="a")
        [held] = await queue.claim("work", "w")
        assert await queue.fail(held, "gone", permanent=True) == DEAD
        await queue.requeue("a", job.id)  # before any notice ran
        handlers = {DEAD_NOTICES: dead_notice_handler(queue, {"work": hook})}
        async with JobWorker(queue, handlers, poll_s=0.05):
            [notice] = await settled(queue)
        assert notice.result == {"queue": "work", "job_id": job.id, "skipped": "queued"}
        assert told == []

    with_queue(collab_database_url, body)
