"""The durable job queue's rows and transitions, on SQLite and a real PostgreSQL server."""

from __future__ import annotations

import asyncio
import random

import pytest

from database import open_database
from jobs import (
    CANCELLED,
    DEAD,
    DEAD_NOTICES,
    DONE,
    QUEUED,
    RETRYING,
    RUNNING,
    JobQueue,
    JobQueueError,
    QueueSettings,
    UnknownJob,
    backoff_delay,
)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def run_with_queue(url: str, body, settings: QueueSettings | None = None,  # noqa: ANN001
                   clock: Clock | None = None):  # noqa: ANN201
    async def go():  # noqa: ANN202
        async with open_database(url) as db:
            queue = JobQueue(db, {"render": settings or QueueSettings()},
                             rng=random.Random(7), clock=clock or Clock())
            await queue.setup()
            return await body(queue)

    return asyncio.run(go())


def test_an_idempotency_key_gives_the_same_job_back(collab_database_url: str) -> None:
    async def body(queue: JobQueue) -> None:
        first = await queue.enqueue("render", {"n": 1}, account_id="a", idempotency_key="k")
        again = await queue.enqueue("render", {"n": 2}, account_id="a", idempotency_key="k")
        other = await queue.enqueue("render", {"n": 3}, account_id="b", idempotency_key="k")
        plain = [await queue.enqueue("render", {"n": 4}, account_id="a") for _ in range(2)]
        assert again.id == first.id and again.payload == {"n": 1}
        assert other.id != first.id
        assert plain[0].id != plain[1].id
        assert len(await queue.find(account_id="a")) == 3
        with pytest.raises(JobQueueError, match="not JSON"):
            await queue.enqueue("render", {"x": object()}, account_id="a")

    run_with_queue(collab_database_url, body)


def test_a_delay_that_is_not_a_finite_number_is_refused(collab_database_url: str) -> None:
    async def body(queue: JobQueue) -> None:
        for delay in (float("nan"), float("inf")):  # never due: refused, nothing stored
            with pytest.raises(JobQueueError, match="delay must be a number of seconds"):
                await queue.enqueue("render", {}, account_id="a", delay_s=delay)
        assert await queue.find(account_id="a") == []

    run_with_queue(collab_database_url, body)


def test_jobs_are_found_oldest_or_newest_first_and_the_limit_keeps_that_end(
        collab_database_url: str) -> None:
    clock = Clock()

    async def body(queue: JobQueue) -> None:
        made = []
        for n in range(4):
            made.append((await queue.enqueue("render", {"n": n}, account_id="a")).id)
            clock.now += 1
        await queue.enqueue("render", {}, account_id="b")
        assert [j.id for j in await queue.find(account_id="a")] == made
        assert [j.id for j in await queue.find(account_id="a", limit=2)] == made[:2]
        newest = await queue.find(account_id="a", limit=2, newest_first=True)
        assert [j.id for j in newest] == made[:1:-1]

    run_with_queue(collab_database_url, body, clock=clock)


def test_jobs_are_found_by_their_ids(collab_database_url: str) -> None:
    async def body(queue: JobQueue) -> None:
        jobs = [await queue.enqueue("render", {"n": n}, account_id="a") for n in range(3)]
        wanted = {jobs[0].id, jobs[2].id, "no-such-job"}
        assert {j.id for j in await queue.find(ids=wanted)} == wanted - {"no-such-job"}
        assert await queue.find(ids=[]) == []
        assert await queue.find(account_id="b", ids=wanted) == []

    run_with_queue(collab_database_url, body)


def test_a_job_enqueued_in_a_rolled_back_transaction_does_not_exist(
        collab_database_url: str) -> None:
    async def body(queue: JobQueue) -> None:
        with pytest.raises(RuntimeError):
            async with queue.db.transaction() as tx:
                await queue.enqueue("render", {}, account_id="a", tx=tx, job_id="gone")
                raise RuntimeError("the change failed")
        with pytest.raises(UnknownJob):
            await queue.get("a", "gone")
        async with queue.db.transaction() as tx:
            await queue.enqueue("render", {}, account_id="a", tx=tx, job_id="kept")
        assert (await queue.get("a", "kept")).state == QUEUED

    run_with_queue(collab_database_url, body)


def test_a_claimed_job_is_held_until_its_lease_expires(collab_database_url: str) -> None:
    clock = Clock()

    async def body(queue: JobQueue) -> None:
        job = await queue.enqueue("render", {}, account_id="a")
        [held] = await queue.claim("render", "w1", limit=5)
        assert (held.id, held.state, held.attempts, held.worker) == (job.id, RUNNING, 1, "w1")
        assert await queue.claim("render", "w2") == []
        clock.now += 10
        beat = await queue.heartbeat(held, 0.25, "a quarter")
        assert beat.held and not beat.cancel_requested
        stored = await queue.get("a", job.id)
        assert (stored.progress, stored.note) == (0.25, "a quarter")
        clock.now += 25  # 35 s after the claim, 25 after the heartbeat: still leased
        assert await queue.claim("render", "w2") == []
        clock.now += 10  # the lease (30 s after the last beat) has expired: w2 takes over
        [taken] = await queue.claim("render", "w2")
        assert (taken.worker, taken.attempts) == ("w2", 2)
        assert (taken.progress, taken.note) == (0, "")  # a new attempt starts from nothing
        assert not (await queue.heartbeat(held)).held
        assert not await queue.complete(held, {"late": True})
        assert await queue.complete(taken, {"ok": 1})
        done = await queue.get("a", job.id)
        assert (done.state, done.result, done.progress) == (DONE, {"ok": 1}, 1.0)

    run_with_queue(collab_database_url, body, QueueSettings(lease_s=30), clock)


def test_failures_back_off_with_jitter_then_become_dead_letters(
        collab_database_url: str) -> None:
    clock = Clock()
    settings = QueueSettings(max_attempts=3, backoff_base=10, backoff_cap=15)

    async def body(queue: JobQueue) -> None:
        job = await queue.enqueue("render", {}, account_id="a")
        waits = []
        for attempt in (1, 2):
            [held] = await queue.claim("render", "w")
            assert held.attempts == attempt
            await queue.heartbeat(held, 0.5)
            assert await queue.fail(held, f"boom {attempt}") == RETRYING
            stored = await queue.get("a", job.id)
            assert stored.progress == 0
            waits.append(stored.run_at - clock.now)
            assert stored.last_error == f"boom {attempt}"
            assert await queue.claim("render", "w") == []  # not due yet
            clock.now = stored.run_at
        assert 5 <= waits[0] <= 10 and 7.5 <= waits[1] <= 15  # equal jitter, capped
        [last] = await queue.claim("render", "w")
        assert await queue.fail(last, "boom 3") == DEAD
        [dead] = await queue.dead_letters("render")
        assert (dead.id, dead.state, dead.last_error, dead.attempts) == (job.id, DEAD,
                                                                         "boom 3", 3)
        again = await queue.requeue("a", job.id)
        assert (again.state, again.attempts) == (QUEUED, 0)
        [held] = await queue.claim("render", "w")
        assert await queue.fail(held, "bad input", permanent=True) == DEAD
        with pytest.raises(JobQueueError, match="only a dead or cancelled"):
            await queue.requeue("a", (await queue.enqueue("render", {}, account_id="a")).id)

    run_with_queue(collab_database_url, body, settings, clock)


def test_cancel_stops_a_waiting_job_at_once_and_flags_a_running_one(
        collab_database_url: str) -> None:
    async def body(queue: JobQueue) -> None:
        waiting = await queue.enqueue("render", {}, account_id="a", delay_s=60)
        assert (await queue.cancel("a", waiting.id)).state == CANCELLED
        running = await queue.enqueue("render", {}, account_id="a")
        [held] = await queue.claim("render", "w")
        heard = []
        queue.on_cancel(held, lambda: heard.append(True))
        flagged = await queue.cancel("a", running.id)
        assert (flagged.state, flagged.cancel_requested, heard) == (RUNNING, True, [True])
        assert (await queue.heartbeat(held)).cancel_requested
        assert await queue.cancelled(held)
        assert (await queue.get("a", running.id)).state == CANCELLED
        assert (await queue.cancel("a", running.id)).state == CANCELLED  # no change
        with pytest.raises(UnknownJob):
            await queue.cancel("b", running.id)  # another account's id

    run_with_queue(collab_database_url, body)


def test_a_released_job_is_not_counted_as_an_attempt(collab_database_url: str) -> None:
    async def body(queue: JobQueue) -> None:
        job = await queue.enqueue("render", {}, account_id="a")
        [held] = await queue.claim("render", "w")
        await queue.heartbeat(held, 0.5, "half way")
        assert await queue.release(held)
        again = await queue.get("a", job.id)
        assert (again.state, again.attempts, again.progress, again.note) == (QUEUED, 0, 0, "")

    run_with_queue(collab_database_url, body)


def test_concurrent_claims_never_take_one_job_twice(collab_database_url: str) -> None:
    async def body(queue: JobQueue) -> None:
        for n in range(40):
            await queue.enqueue("render", {"n": n}, account_id=f"acct{n % 4}")
        claims = await asyncio.gather(*(queue.claim("render", f"w{i}", limit=3)
                                        for i in range(20)))
        ids = [job.id for batch in claims for job in batch]
        assert len(ids) == len(set(ids)) == 40
        assert await queue.claim("render", "late") == []

    run_with_queue(collab_database_url, body)


def test_claims_take_higher_priority_first(collab_database_url: str) -> None:
    async def body(queue: JobQueue) -> None:
        low = await queue.enqueue("render", {}, account_id="a")
        high = await queue.enqueue("render", {}, account_id="a", priority=5)
        assert [j.id for j in await queue.claim("render", "w", limit=2)] == [high.id, low.id]

    run_with_queue(collab_database_url, body)


def test_purge_deletes_old_finished_jobs_but_keeps_dead_letters(
        collab_database_url: str) -> None:
    clock = Clock()

    async def body(queue: JobQueue) -> None:
        ids = {}
        for kind in ("done", "dead", "cancelled", "waiting"):
            ids[kind] = (await queue.enqueue("render", {"kind": kind}, account_id="a")).id
        for held in await queue.claim("render", "w", limit=3):
            kind = held.payload["kind"]
            if kind == "done":
                await queue.complete(held)
            elif kind == "dead":
                await queue.fail(held, "broken", permanent=True)
            else:
                await queue.release(held)
        await queue.cancel("a", ids["cancelled"])
        clock.now += 100
        recent = (await queue.enqueue("render", {}, account_id="a")).id
        [held] = [j for j in await queue.claim("render", "w", limit=5) if j.id == recent]
        await queue.complete(held)
        assert await queue.purge(older_than_s=50) == 2  # the old done and cancelled ones
        left = {job.id for job in await queue.find(account_id="a")}
        assert left == {ids["dead"], ids["waiting"], recent}

    run_with_queue(collab_database_url, body, clock=clock)


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    rng = random.Random(0)
    for attempt in range(1, 12):
        ceiling = min(60.0, 1.0 * 2 ** (attempt - 1))
        delays = [backoff_delay(attempt, 1.0, 60.0, rng) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 100  # jittered, not fixed
    # a webhook retries up to 10,000 times: far past 2 ** 1024, the cap still holds
    for attempt in (1025, 10_000):
        assert 30.0 <= backoff_delay(attempt, 1.0, 60.0, rng) <= 60.0


def test_a_heartbeat_ignores_a_nan_progress_and_clamps_the_rest(
        collab_database_url: str) -> None:
    async def body(queue: JobQueue) -> None:
        job = await queue.enqueue("render", {}, account_id="a")
        [held] = await queue.claim("render", "w1")
        assert (await queue.heartbeat(held, 0.4)).held
        assert (await queue.heartbeat(held, float("nan"), "no samples yet")).held
        record = await queue.get("a", job.id)
        assert (record.progress, record.note) == (0.4, "no samples yet")
        assert (await queue.heartbeat(held, float("inf"))).held
        assert (await queue.get("a", job.id)).progress == 1.0

    run_with_queue(collab_database_url, body)


def test_a_job_asked_to_cancel_while_running_never_runs_again(
        collab_database_url: str) -> None:
    """Its attempt fails after the ask, or its worker dies: it ends cancelled, not retried."""
    clock = Clock()

    async def body(queue: JobQueue) -> None:
        failing = await queue.enqueue("render", {}, account_id="a")
        [held] = await queue.claim("render", "w1")
        await queue.cancel("a", failing.id)
        assert await queue.fail(held, "upstream timeout") == CANCELLED
        record = await queue.get("a", failing.id)
        assert record.state == CANCELLED and "upstream timeout" in record.last_error

        crashed = await queue.enqueue("render", {}, account_id="a")
        [held] = await queue.claim("render", "w1")  # then w1 dies
        await queue.cancel("a", crashed.id)
        clock.now += 61  # past its lease
        assert await queue.claim("render", "w2", 5) == []
        assert (await queue.get("a", crashed.id)).state == CANCELLED
        assert not await queue.complete(held, "late")

    run_with_queue(collab_database_url, body, QueueSettings(lease_s=60), clock=clock)


def test_a_job_whose_payload_does_not_decode_dies_and_the_rest_of_its_claim_runs(
        collab_database_url: str) -> None:
    async def body(queue: JobQueue) -> None:
        queue.watch_dead("render")
        bad = await queue.enqueue("render", {"n": 0}, account_id="a", priority=1)
        await queue.db.execute("UPDATE jobs SET payload = '{not json' WHERE id = ?", bad.id)
        good = [await queue.enqueue("render", {"n": n}, account_id="a") for n in (1, 2)]
        claimed = await queue.claim("render", "w", 3)
        assert sorted(job.payload["n"] for job in claimed) == [1, 2]
        assert {job.id for job in claimed} == {job.id for job in good}
        dead = await queue.db.fetchrow(
            "SELECT state, lease_token, last_error FROM jobs WHERE id = ?", bad.id)
        assert (dead["state"], dead["lease_token"]) == (DEAD, None)
        assert dead["last_error"].startswith("stored payload or result is not JSON")
        [notice] = await queue.find(queue=DEAD_NOTICES)
        assert notice.payload == {"queue": "render", "job_id": bad.id}
        assert await queue.claim("render", "w", 3) == []

    run_with_queue(collab_database_url, body)
