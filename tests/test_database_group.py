"""Group commit: units of work of one process share commits, each under its own savepoint."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from database import DatabaseError, GroupCommit, Session, group_commit, open_database

pytestmark = pytest.mark.timeout(60)


def run(coro):  # noqa: ANN001, ANN201 - tiny helper
    return asyncio.run(coro)


async def _table(db) -> None:  # noqa: ANN001
    await db.execute("CREATE TABLE counters (name TEXT PRIMARY KEY, value BIGINT NOT NULL)")


def insert(name: str, value: int):  # noqa: ANN201 - a unit of work
    async def unit(tx: Session) -> int:
        return await tx.execute("INSERT INTO counters (name, value) VALUES (?, ?)", name,
                                value)
    return unit


def test_concurrent_units_share_commits_and_each_gets_its_result(db_url: str) -> None:
    async def go() -> None:
        async with open_database(db_url) as db:
            await _table(db)
            group = group_commit(db)
            assert group_commit(db) is group  # one per database
            results = await asyncio.gather(*(group.run(insert(f"c{n}", n))
                                             for n in range(60)))
            assert results == [1] * 60
            assert group.units == 60
            if db.dialect == "sqlite":
                assert group.commits < 60  # they went in groups
            else:  # PostgreSQL runs them side by side, each in its own transaction
                assert group.commits == 60
            rows = await db.fetch("SELECT name, value FROM counters ORDER BY value")
            assert [(r["name"], r["value"]) for r in rows] == [(f"c{n}", n)
                                                               for n in range(60)]

    run(go())


def test_a_failing_unit_undoes_only_its_own_statements(db_url: str) -> None:
    async def go() -> None:
        async with open_database(db_url) as db:
            await _table(db)
            group = GroupCommit(db, shared=True)  # savepoints on both databases

            async def half_then_fail(tx: Session) -> None:
                await tx.execute("INSERT INTO counters (name, value) VALUES ('half', 1)")
                raise ValueError("changed my mind")

            async def duplicate(tx: Session) -> None:  # a database error mid-group
                await tx.execute("INSERT INTO counters (name, value) VALUES ('a', 9)")

            outcomes = await asyncio.gather(
                group.run(insert("a", 1)), group.run(half_then_fail), group.run(duplicate),
                group.run(insert("b", 2)), return_exceptions=True)
            assert outcomes[0] == 1 and outcomes[3] == 1
            assert isinstance(outcomes[1], ValueError)
            assert isinstance(outcomes[2], DatabaseError)
            assert group.commits == 1  # all four went in one transaction
            rows = await db.fetch("SELECT name, value FROM counters ORDER BY name")
            assert [(r["name"], r["value"]) for r in rows] == [("a", 1), ("b", 2)]
            # a lone unit that fails is rolled back too
            with pytest.raises(ValueError):
                await group.run(half_then_fail)
            assert await db.fetchval("SELECT COUNT(*) FROM counters") == 2

    run(go())


def test_a_result_comes_after_the_commit_and_a_cancelled_unit_is_skipped(db_url: str) -> None:
    async def go() -> None:
        async with open_database(db_url) as db:
            await _table(db)
            group = GroupCommit(db, shared=True)
            first = asyncio.create_task(group.run(insert("first", 1)))
            await asyncio.sleep(0)  # the first group starts
            skipped = asyncio.create_task(group.run(insert("skipped", 2)))
            kept = asyncio.create_task(group.run(insert("kept", 3)))
            await asyncio.sleep(0)
            skipped.cancel()  # before its group began
            assert await first == 1
            # committed: another connection sees it
            assert await db.fetchval("SELECT value FROM counters WHERE name = 'first'") == 1
            assert await kept == 1
            with pytest.raises(asyncio.CancelledError):
                await skipped
            names = {r["name"] for r in await db.fetch("SELECT name FROM counters")}
            assert names == {"first", "kept"}

    run(go())


def test_a_group_commit_inside_the_own_sqlite_transaction_is_refused(tmp_path: Path) -> None:
    async def go() -> None:
        async with open_database(f"sqlite://{tmp_path / 'own.sqlite3'}") as db:
            await _table(db)
            async with db.transaction() as tx:
                await tx.execute("INSERT INTO counters (name, value) VALUES ('outer', 1)")
                with pytest.raises(DatabaseError, match="wait for itself"):
                    await group_commit(db).run(insert("inner", 2))
            assert await db.fetchval("SELECT COUNT(*) FROM counters") == 1

    run(go())
