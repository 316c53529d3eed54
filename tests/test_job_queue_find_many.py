"""``find_many``: many accounts' jobs in one query, on SQLite and a real PostgreSQL
server, and over data regions (one query per region)."""

from __future__ import annotations

from typing import Any

import pytest
from test_job_queue import Clock, run_with_queue
from test_regions_jobs_events import Setup, regions  # noqa: F401 - the fixture

from accounts.regions import new_account_id
from jobs import QUEUED, JobQueue, JobQueueError


def counting_fetches(queue: JobQueue) -> list[str]:
    """The SQL of every ``fetch`` the queue's database runs from now on."""
    seen: list[str] = []
    fetch = queue.db.fetch

    async def counted(sql: str, *args: Any) -> Any:
        seen.append(sql)
        return await fetch(sql, *args)

    queue.db.fetch = counted  # type: ignore[method-assign]
    return seen


def test_each_accounts_jobs_come_back_oldest_first_in_one_query(
        collab_database_url: str) -> None:
    clock = Clock()

    async def body(queue: JobQueue) -> None:
        made: dict[str, list[str]] = {"a": [], "b": [], "c": []}
        for step in range(4):
            for account_id in ("b", "a") if step % 2 else ("a", "b"):
                clock.now += 1
                job = await queue.enqueue("render", {"n": step}, account_id=account_id)
                made[account_id].append(job.id)
        await queue.enqueue("mail", {}, account_id="a")
        await queue.enqueue("render", {}, account_id="c")  # not asked for
        await queue.cancel("a", made["a"][0])

        fetches = counting_fetches(queue)
        found = await queue.find_many(["b", "a", "none", "b"], queue="render")
        assert len(fetches) == 1
        assert list(found) == ["b", "a", "none"]
        assert {k: [j.id for j in v] for k, v in found.items()} == {
            "b": made["b"], "a": made["a"], "none": []}
        assert all(j.account_id == "a" for j in found["a"])
        for account_id in ("a", "b"):  # the same jobs as find, account by account
            assert found[account_id] == await queue.find(account_id=account_id,
                                                         queue="render")

        waiting = await queue.find_many(["a", "b"], queue="render", states=[QUEUED])
        assert [j.id for j in waiting["a"]] == made["a"][1:]
        first_two = await queue.find_many(["a", "b"], queue="render", limit_each=2)
        assert {k: [j.id for j in v] for k, v in first_two.items()} == {
            "a": made["a"][:2], "b": made["b"][:2]}
        assert await queue.find_many([]) == {}
        with pytest.raises(JobQueueError, match="unknown job states"):
            await queue.find_many(["a"], states=["lost"])

    run_with_queue(collab_database_url, body, clock=clock)


@pytest.mark.asyncio
async def test_regional_find_many_asks_each_region_once_for_its_accounts(
        regions: Setup) -> None:  # noqa: F811 - the fixture
    people = {region: [new_account_id("p", region) for _ in range(3)]
              for region in regions.databases}
    made: dict[str, str] = {}
    for accounts in people.values():
        for account_id in accounts[:2]:
            made[account_id] = (await regions.queue.enqueue(
                "other", {}, account_id=account_id)).id
    fetches = {name: counting_fetches(q) for name, q in regions.queue.queues.items()}
    asked = [a for accounts in people.values() for a in accounts]
    found = await regions.queue.find_many(asked, queue="other")
    assert list(found) == asked
    assert {k: [j.id for j in v] for k, v in found.items()} == {
        a: [made[a]] if a in made else [] for a in asked}
    assert {name: len(seen) for name, seen in fetches.items()} == {
        name: 1 for name in regions.databases}
