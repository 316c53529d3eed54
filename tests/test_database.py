"""The shared async database over SQLite and a real PostgreSQL server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from dawserver.database import (
    Database,
    DatabaseError,
    Migration,
    SqliteDatabase,
    open_database,
    to_dollar_params,
)
from dawserver.plugins import collect_migrations, load_plugins


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite://{tmp_path / 'test.sqlite3'}"
        return
    url = request.getfixturevalue("postgres_url")
    schema = f"t{abs(hash(request.node.name)) % 10**8}"

    async def reset() -> None:
        import asyncpg

        conn = await asyncpg.connect(url)
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}")
        await conn.close()

    asyncio.run(reset())
    yield f"{url}?options=-csearch_path%3D{schema}"


def run(coro):  # noqa: ANN001, ANN201 - tiny helper
    return asyncio.run(coro)


MIGRATIONS = [
    Migration("demo", 1, "items", "CREATE TABLE demo_items (account_id TEXT NOT NULL, "
              "item_id TEXT NOT NULL, cents BIGINT NOT NULL, PRIMARY KEY (account_id, item_id))"),
    Migration("demo", 2, "notes", {"sqlite": "ALTER TABLE demo_items ADD COLUMN note TEXT",
                                   "postgresql": "ALTER TABLE demo_items ADD COLUMN note TEXT"}),
]


def test_migrations_apply_once_in_order(db_url: str) -> None:
    async def go() -> None:
        async with open_database(db_url) as db:
            assert [m.version for m in await db.migrate(MIGRATIONS)] == [1, 2]
            assert await db.migrate(MIGRATIONS) == []
            await db.execute("INSERT INTO demo_items VALUES (?, ?, ?, ?)", "acc", "x", 5, "hi")
            assert await db.fetchrow("SELECT * FROM demo_items") == {
                "account_id": "acc", "item_id": "x", "cents": 5, "note": "hi"}

    run(go())


def test_failed_transaction_leaves_nothing_behind(db_url: str) -> None:
    async def go() -> None:
        async with open_database(db_url) as db:
            await db.migrate(MIGRATIONS)
            with pytest.raises(DatabaseError):
                async with db.transaction() as tx:
                    await tx.execute("INSERT INTO demo_items VALUES (?, ?, ?, ?)",
                                     "a", "1", 1, None)
                    await tx.execute("INSERT INTO demo_items VALUES (?, ?, ?, ?)",
                                     "a", "1", 2, None)
            assert await db.fetchval("SELECT COUNT(*) FROM demo_items") == 0

    run(go())


def test_broken_migration_names_itself_and_is_not_recorded(db_url: str) -> None:
    async def go() -> None:
        async with open_database(db_url) as db:
            bad = Migration("demo", 1, "typo", "CREATE TABLEX nope (a TEXT)")
            with pytest.raises(DatabaseError, match=r"migration demo/1 \(typo\) failed"):
                await db.migrate([bad])
            assert await db.fetchval("SELECT COUNT(*) FROM schema_migrations") == 0

    run(go())


def test_concurrent_migrators_apply_each_migration_once(db_url: str) -> None:
    async def go() -> None:
        first, second = open_database(db_url), open_database(db_url)
        async with first, second:
            results = await asyncio.gather(first.migrate(MIGRATIONS), second.migrate(MIGRATIONS))
            assert sorted(len(r) for r in results) in ([0, 2], [1, 1])
            assert await first.fetchval("SELECT COUNT(*) FROM schema_migrations") == 2

    run(go())


def test_every_plugin_table_leads_its_primary_key_with_account_id(tmp_path: Path) -> None:
    async def go() -> None:
        async with SqliteDatabase(tmp_path / "all.sqlite3") as db:
            await db.migrate(collect_migrations(load_plugins()))
            keys = await db.primary_keys()
            tables = [t for t in keys if t != "schema_migrations"]
            assert len(tables) >= 10
            for table in tables:
                assert keys[table][0] == "account_id", table

    run(go())


def test_placeholders_are_rewritten_outside_string_literals() -> None:
    assert to_dollar_params("SELECT '?', a FROM t WHERE b = ? AND c = 'x?''y' AND d = ?") == \
        "SELECT '?', a FROM t WHERE b = $1 AND c = 'x?''y' AND d = $2"


def test_unknown_url_is_refused_with_the_accepted_forms() -> None:
    with pytest.raises(DatabaseError, match="use postgresql://"):
        open_database("mysql://root@localhost/db")


def test_unreachable_postgres_is_a_clear_error() -> None:
    async def go() -> None:
        db = open_database("postgresql://user:pw@127.0.0.1:1/none")
        with pytest.raises(DatabaseError, match=r"cannot connect .*user:\*\*\*@"):
            await db.start()

    run(go())


def test_starting_twice_is_an_error(tmp_path: Path) -> None:
    async def go() -> None:
        db: Database = open_database(None, tmp_path)
        async with db:
            with pytest.raises(DatabaseError, match="already started"):
                await db.start()

    run(go())
