"""The shared database layer over SQLite and a real PostgreSQL server."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from database import (
    Database,
    DatabaseError,
    Migration,
    TableShape,
    distribution_column,
    load_migrations,
    open_database,
    parse_url,
    sharding_problems,
    to_dollar_params,
)
from database.migrations import split_statements


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
            recorded = await db.fetch("SELECT component, version, name FROM schema_migrations")
            assert sorted((r["component"], r["version"]) for r in recorded) == [
                ("demo", 1), ("demo", 2)]

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


def test_the_bookkeeping_of_an_older_database_is_taken_over(db_url: str) -> None:
    """Before the shared layer, schema_migrations named its first column ``plugin``."""
    async def go() -> None:
        async with open_database(db_url) as db:
            await db.execute(
                "CREATE TABLE schema_migrations (plugin TEXT NOT NULL, version INTEGER NOT NULL, "
                "name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL, "
                "PRIMARY KEY (plugin, version))")
            await db.execute(MIGRATIONS[0].text(db.dialect))
            await db.execute("INSERT INTO schema_migrations VALUES ('demo', 1, 'items', 0)")
            assert [m.version for m in await db.migrate(MIGRATIONS)] == [2]
            assert "component" in (await db.tables())["schema_migrations"]

    run(go())


def test_a_read_does_not_wait_behind_a_held_write(tmp_path: Path) -> None:
    """SQLite: queries go to the reader connection, so a slow write holds up no reader."""
    import threading

    async def go() -> None:
        async with open_database(None, tmp_path) as db:
            await db.migrate(MIGRATIONS)
            release = threading.Event()
            held = asyncio.create_task(db.write(lambda conn: release.wait(10)))
            await asyncio.sleep(0.05)
            try:
                assert await asyncio.wait_for(
                    db.fetchval("SELECT COUNT(*) FROM demo_items"), 5) == 0
            finally:
                release.set()
                await held

    run(go())


def test_a_write_inside_its_own_transaction_is_an_error_not_a_hang(tmp_path: Path) -> None:
    async def go() -> None:
        async with open_database(None, tmp_path) as db:
            await db.migrate(MIGRATIONS)
            async with db.transaction() as tx:
                await tx.execute("INSERT INTO demo_items VALUES ('a', '1', 1, NULL)")
                with pytest.raises(DatabaseError, match="use the transaction's session"):
                    async with asyncio.timeout(5):  # same task: wait_for would make another
                        await db.execute("INSERT INTO demo_items VALUES ('a', '2', 1, NULL)")
            assert await db.fetchval("SELECT COUNT(*) FROM demo_items") == 1

    run(go())


def test_a_transaction_cancelled_while_it_begins_leaves_the_writer_free(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    import database.sqlite as sqlite_layer

    execute = sqlite_layer._execute
    begun = threading.Event()

    def slow_begin(conn, sql, args):  # noqa: ANN001, ANN202 - wraps the layer's own
        count = execute(conn, sql, args)
        if sql == "BEGIN IMMEDIATE" and not begun.is_set():
            begun.set()
            time.sleep(0.2)  # the task is cancelled while BEGIN is in the writer thread
        return count

    async def go() -> None:
        async with open_database(None, tmp_path) as db:
            await db.migrate(MIGRATIONS)
            monkeypatch.setattr(sqlite_layer, "_execute", slow_begin)

            async def write() -> None:
                async with db.transaction() as tx:
                    await tx.execute("INSERT INTO demo_items VALUES ('a', '1', 1, NULL)")

            task = asyncio.create_task(write())
            while not begun.is_set():
                await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            async with asyncio.timeout(5), db.transaction() as tx:
                await tx.execute("INSERT INTO demo_items VALUES ('a', '2', 1, NULL)")
            assert [r["item_id"] for r in await db.fetch("SELECT item_id FROM demo_items")] \
                == ["2"]

    run(go())


def test_placeholders_are_rewritten_outside_string_literals() -> None:
    assert to_dollar_params("SELECT '?', a FROM t WHERE b = ? AND c = 'x?''y' AND d = ?") == \
        "SELECT '?', a FROM t WHERE b = $1 AND c = 'x?''y' AND d = $2"


def test_statements_are_split_outside_quotes_and_comments() -> None:
    sql = ("-- a comment; with a semicolon\nCREATE TABLE a (x TEXT DEFAULT 'a;b''c');\n"
           "/* block; comment */ INSERT INTO a VALUES (';');\n-- trailing comment only\n")
    assert split_statements(sql) == ["CREATE TABLE a (x TEXT DEFAULT 'a;b''c')",
                                     "INSERT INTO a VALUES (';')"]


def test_migration_files_are_found_by_version_and_dialect(tmp_path: Path) -> None:
    (tmp_path / "0001_items.sql").write_text("CREATE TABLE items (account_id TEXT)")
    (tmp_path / "0002_blobs.sqlite.sql").write_text("ALTER TABLE items ADD COLUMN b BLOB")
    (tmp_path / "0002_blobs.postgresql.sql").write_text("ALTER TABLE items ADD COLUMN b BYTEA")
    (tmp_path / "README.md").write_text("not a migration")
    first, second = load_migrations("demo", tmp_path)
    assert (first.component, first.version, first.name) == ("demo", 1, "items")
    assert first.statements("postgresql") == ["CREATE TABLE items (account_id TEXT)"]
    assert (second.version, second.name) == (2, "blobs")
    assert second.statements("sqlite") == ["ALTER TABLE items ADD COLUMN b BLOB"]
    assert second.statements("postgresql") == ["ALTER TABLE items ADD COLUMN b BYTEA"]


@pytest.mark.parametrize(("files", "message"), [
    (["0001_a.sqlite.sql"], "no file for postgresql"),
    (["0001_a.sql", "0001_a.sqlite.sql"], "given twice"),
    (["0001_a.sql", "0001_b.sql"], "given twice"),
    (["1_a.sql"], "misnamed"),
])
def test_misplaced_migration_files_are_refused_by_name(tmp_path: Path, files: list[str],
                                                       message: str) -> None:
    for name in files:
        (tmp_path / name).write_text("SELECT 1")
    with pytest.raises(DatabaseError, match=message):
        load_migrations("demo", tmp_path)


def test_a_migration_declares_reference_tables_in_a_comment() -> None:
    migration = Migration("demo", 1, "currencies", "-- reference table: currencies\n"
                          "CREATE TABLE currencies (code TEXT PRIMARY KEY)")
    assert migration.reference_tables == {"currencies"}


def test_the_sharding_rule_names_each_table_that_breaks_it() -> None:
    shapes = [
        TableShape("fine", ("account_id", "id"), ("account_id", "id")),
        TableShape("by_project", ("project_id", "seq"), ("project_id", "seq")),
        TableShape("lookup", ("lookup_key", "account_id"), ("lookup_key",)),
        TableShape("keyless", ("id", "name"), ("id",)),
        TableShape("global", ("code",), ("code",)),
        TableShape("bad_key", ("account_id", "id"), ("id",)),
        TableShape("bad_unique", ("account_id", "id", "slug"), ("account_id", "id"),
                   (("slug",),)),
    ]
    problems = sharding_problems(shapes, {"global"})
    assert distribution_column(shapes[2]) == "lookup_key"
    assert len(problems) == 3
    assert "'keyless' has no distribution column" in problems[0]
    assert "'bad_key': its primary key (id) lacks its distribution column account_id" in \
        problems[1]
    assert "'bad_unique': its unique constraint (slug) lacks" in problems[2]


def test_tables_are_described_alike_on_both_dialects(db_url: str) -> None:
    async def go() -> None:
        async with open_database(db_url) as db:
            await db.execute("CREATE TABLE shaped (account_id TEXT NOT NULL, id TEXT NOT NULL, "
                             "slug TEXT NOT NULL, PRIMARY KEY (account_id, id), "
                             "UNIQUE (account_id, slug))")
            await db.execute("CREATE UNIQUE INDEX shaped_slug ON shaped (slug)")
            shape = (await db.describe())["shaped"]
            assert shape == TableShape("shaped", ("account_id", "id", "slug"),
                                       ("account_id", "id"), (("account_id", "slug"), ("slug",)))

    run(go())


def test_times_stamped_with_the_database_clock_compare_alike_on_both_dialects(
        db_url: str) -> None:
    import time

    async def go() -> None:
        async with open_database(db_url) as db:
            await db.execute("CREATE TABLE leases (account_id TEXT NOT NULL, "
                             "at DOUBLE PRECISION, PRIMARY KEY (account_id))")
            async with db.transaction() as tx:
                await tx.execute(f"INSERT INTO leases VALUES ('a', {tx.now_sql})")
            now = await db.fetchval(f"SELECT {db.now_sql} AS now")
            # epoch seconds, as a float, on this host's clock here (the server is local)
            assert isinstance(now, float) and abs(now - time.time()) < 5
            at = await db.fetchval("SELECT at FROM leases")
            assert 0 <= now - at < 5
            # compared in SQL, beside a parameter: a lease of 60 s is live, then over
            live = f"SELECT COUNT(*) FROM leases WHERE at > {db.now_sql} - ?"
            assert await db.fetchval(live, 60.0) == 1
            await db.execute("UPDATE leases SET at = at - 61")
            assert await db.fetchval(live, 60.0) == 0

    run(go())


def test_urls_are_parsed_in_one_place(tmp_path: Path) -> None:
    assert parse_url(None, tmp_path).target == str(tmp_path / "collab.sqlite3")
    assert parse_url("sqlite:///abs/x.db").target == "/abs/x.db"
    assert parse_url("postgres://u@h/db").dialect == "postgresql"
    assert parse_url("postgresql://u:secret@h/db").redacted() == "postgresql://u:***@h/db"


def test_sqlite_commits_are_fsynced_unless_the_url_says_normal(tmp_path: Path) -> None:
    """``?synchronous=normal`` reaches the writer connection; anything else is refused."""
    async def pragma(url: str) -> int:
        db = open_database(url, tmp_path)
        async with db:
            return await db.write(lambda conn: conn.execute("PRAGMA synchronous").fetchone()[0])

    assert run(pragma(f"sqlite://{tmp_path / 'a.sqlite3'}")) == 2  # FULL
    assert run(pragma("sqlite://?synchronous=normal")) == 1  # NORMAL, on the default file
    assert parse_url("sqlite://?synchronous=normal", tmp_path).target == str(
        tmp_path / "collab.sqlite3")
    for bad in ("?synchronous=off", "?synchronous=normal&synchronous=full", "?timeout=5"):
        with pytest.raises(DatabaseError, match=r"\?synchronous=normal"):
            open_database(f"sqlite://{tmp_path / 'b.sqlite3'}{bad}")


def test_postgres_commits_without_waiting_when_the_url_says_so(postgres_url: str) -> None:
    """``?synchronous_commit=off`` reaches the server as a setting of every connection."""
    async def setting(url: str) -> str:
        async with open_database(url) as db:
            [row] = await db.fetch("SHOW synchronous_commit")
            return row["synchronous_commit"]

    joiner = "&" if "?" in postgres_url else "?"
    assert run(setting(postgres_url)) == "on"
    assert run(setting(f"{postgres_url}{joiner}synchronous_commit=off")) == "off"


def test_unknown_url_is_refused_with_the_accepted_forms() -> None:
    with pytest.raises(DatabaseError, match="use postgresql://"):
        open_database("mysql://root:pw@localhost/db")


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
