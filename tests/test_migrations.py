"""Every component's migrations: the Citus rule on both dialects, and in-place upgrades.

The walk applies every migration of every component (collab, transcription, the
job queue, the event bus, then each built-in plug-in, as the server does) one at
a time, on SQLite and on a real PostgreSQL, and fails naming the migration and
the table that breaks the rule of :mod:`database.sharding`.  The upgrade tests
write a database with the DDL of the code before the shared layer, then open it
with today's components.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from accounts.store import MIGRATIONS as ACCOUNTS
from collab.store import MIGRATIONS as COLLAB
from collab.store import QuarantinedUpdate, open_store
from database import Database, Migration, open_database, sharding_problems
from dawserver.plugins import collect_migrations, load_plugins
from events import MIGRATIONS as EVENTS
from jobs import MIGRATIONS as JOBS
from jobs import JobQueue
from samples.library import MIGRATIONS as SAMPLES
from transcription.jobs import MIGRATIONS as TRANSCRIPTION
from transcription.jobs import Job, migrate

PLUGINS = collect_migrations(load_plugins())
#: The core's migrations: the server applies them before any plug-in's, whose
#: migrations may use the core's tables (the job queue's, the event outbox).
CORE = [*ACCOUNTS, *COLLAB, *TRANSCRIPTION, *JOBS, *EVENTS, *SAMPLES]
#: The plug-in migrations a database written before the shared layer had.
PLUGINS_BEFORE_SHARED = [m for m in PLUGINS if (m.component, m.version) <= ("distribution", 7)]


def every_migration() -> list[Migration]:
    """Every migration of every component, in the order the server applies them."""
    def ordered(migrations: list[Migration]) -> list[Migration]:
        return sorted(migrations, key=lambda m: (m.component, m.version))

    return [*ordered(CORE), *ordered(PLUGINS)]


async def migrate_all(db: Database) -> None:
    """Apply every migration as the server does: the core's, then the plug-ins'."""
    await db.migrate(CORE)
    await db.migrate(PLUGINS)


async def walk(db: Database, migrations: list[Migration]) -> list[str]:
    """Apply ``migrations`` one by one; after each, every table newly breaking the rule."""
    # every declaration up front: on a database that has them all already, a later
    # component's reference table exists before its migration is walked past
    reference = {"schema_migrations"}.union(*(m.reference_tables for m in migrations))
    problems: list[str] = []
    seen: set[str] = set()
    for migration in migrations:
        await db.migrate([migration])
        for problem in sharding_problems((await db.describe()).values(), reference):
            if problem not in seen:
                seen.add(problem)
                problems.append(f"after {migration.component}/{migration.version} "
                                f"({migration.name}): {problem}")
    return problems


def test_every_table_of_every_component_keeps_the_citus_rule(db_url: str) -> None:
    async def go() -> tuple[list[str], set[str]]:
        async with open_database(db_url) as db:
            return await walk(db, every_migration()), set(await db.tables())

    problems, tables = asyncio.run(go())
    assert problems == [], "\n".join(problems)
    assert {"collab_projects", "collab_updates", "jobs", "events_outbox", "dist_jobs"} <= tables
    assert "transcription_jobs" not in tables  # transcription/2 moved it into the job queue


def test_the_walk_names_a_table_that_breaks_the_rule(db_url: str) -> None:
    bad = [Migration("demo", 1, "good and bad",
                     "CREATE TABLE demo_fine (account_id TEXT NOT NULL, id TEXT NOT NULL, "
                     "PRIMARY KEY (account_id, id));"
                     "CREATE TABLE demo_keyless (id TEXT PRIMARY KEY, account_id TEXT);\n"
                     "-- reference table: demo_currencies\n"
                     "CREATE TABLE demo_currencies (code TEXT PRIMARY KEY)"),
           Migration("demo", 2, "a global slug",
                     "CREATE UNIQUE INDEX demo_fine_id ON demo_fine (id)")]

    async def go() -> list[str]:
        async with open_database(db_url) as db:
            return await walk(db, bad)

    problems = asyncio.run(go())
    assert len(problems) == 2, problems
    assert problems[0].startswith("after demo/1 (good and bad): table 'demo_keyless'")
    assert "primary key (id) lacks its distribution column account_id" in problems[0]
    assert problems[1].startswith("after demo/2 (a global slug): table 'demo_fine': its "
                                  "unique constraint (id) lacks")


def test_every_component_makes_the_same_tables_on_both_dialects(tmp_path: Path,
                                                                  postgres_url: str) -> None:
    schema = f"same{time.monotonic_ns() % 10**8}"

    async def tables(url: str) -> dict[str, tuple]:
        async with open_database(url) as db:
            await migrate_all(db)
            return {name: (shape.columns, shape.primary_key, shape.unique)
                    for name, shape in (await db.describe()).items()}

    async def go() -> tuple[dict, dict]:
        import asyncpg

        conn = await asyncpg.connect(postgres_url)
        await conn.execute(f"CREATE SCHEMA {schema}")
        await conn.close()
        return (await tables(f"sqlite://{tmp_path / 'same.sqlite3'}"),
                await tables(f"{postgres_url}?options=-csearch_path%3D{schema}"))

    on_sqlite, on_postgres = asyncio.run(go())
    assert on_sqlite == on_postgres


# -- in-place upgrades of databases written before the shared layer ---------------------

#: The collab store's tables as its SQLite back-end created them.
OLD_SQLITE_STORE = """
CREATE TABLE IF NOT EXISTS projects (
    project_id TEXT PRIMARY KEY, name TEXT NOT NULL, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS updates (
    project_id TEXT NOT NULL, seq INTEGER NOT NULL, data BLOB NOT NULL,
    PRIMARY KEY (project_id, seq));
CREATE TABLE IF NOT EXISTS snapshots (
    project_id TEXT PRIMARY KEY, upto_seq INTEGER NOT NULL, data BLOB NOT NULL,
    created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS quarantined_updates (
    project_id TEXT NOT NULL, seq INTEGER NOT NULL, data BLOB NOT NULL, reason TEXT NOT NULL,
    quarantined_at REAL NOT NULL, PRIMARY KEY (project_id, seq));
CREATE TABLE IF NOT EXISTS revocations (
    project_id TEXT NOT NULL, user_name TEXT NOT NULL, revoked_at REAL NOT NULL,
    PRIMARY KEY (project_id, user_name));
"""
#: The same tables as the PostgreSQL back-end created them (prefixed).
OLD_POSTGRES_STORE = """
CREATE TABLE IF NOT EXISTS collab_projects (
    project_id TEXT PRIMARY KEY, name TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL);
CREATE TABLE IF NOT EXISTS collab_updates (
    project_id TEXT NOT NULL, seq BIGINT NOT NULL, data BYTEA NOT NULL,
    PRIMARY KEY (project_id, seq));
CREATE TABLE IF NOT EXISTS collab_snapshots (
    project_id TEXT PRIMARY KEY, upto_seq BIGINT NOT NULL, data BYTEA NOT NULL,
    created_at DOUBLE PRECISION NOT NULL);
CREATE TABLE IF NOT EXISTS collab_quarantined_updates (
    project_id TEXT NOT NULL, seq BIGINT NOT NULL, data BYTEA NOT NULL, reason TEXT NOT NULL,
    quarantined_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (project_id, seq));
CREATE TABLE IF NOT EXISTS collab_revocations (
    project_id TEXT NOT NULL, user_name TEXT NOT NULL, revoked_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (project_id, user_name));
"""
#: dawserver/database.py's bookkeeping, keyed by plug-in.
OLD_BOOKKEEPING = """
CREATE TABLE schema_migrations (plugin TEXT NOT NULL, version INTEGER NOT NULL,
  name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (plugin, version))
"""
#: transcription/jobs.py's own job file (SQLite, no bookkeeping).
OLD_JOB_FILE = """
CREATE TABLE IF NOT EXISTS transcription_jobs (
    project_id TEXT NOT NULL, id TEXT NOT NULL, clip_id TEXT, source TEXT NOT NULL,
    start_s REAL NOT NULL DEFAULT 0, end_s REAL, language TEXT, status TEXT NOT NULL,
    progress REAL NOT NULL DEFAULT 0, result TEXT, error TEXT, created_at REAL NOT NULL,
    updated_at REAL NOT NULL, PRIMARY KEY (project_id, id))
"""
#: dawserver/transcription_store.py's migration ``transcription/1``.
OLD_JOB_TABLE = """
CREATE TABLE transcription_jobs (
    project_id TEXT NOT NULL, id TEXT NOT NULL, clip_id TEXT, source TEXT NOT NULL,
    start_s DOUBLE PRECISION NOT NULL DEFAULT 0, end_s DOUBLE PRECISION, language TEXT,
    status TEXT NOT NULL, progress DOUBLE PRECISION NOT NULL DEFAULT 0, result TEXT,
    error TEXT, created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (project_id, id));
CREATE INDEX transcription_jobs_status ON transcription_jobs (status)
"""
#: A distribution release row, as business/distribution wrote it.
OLD_RELEASE = ("INSERT INTO dist_releases VALUES ('acct', 'r1', '{}', 'draft', '{}', 1.0, 2.0)")


async def write_old_database(db: Database) -> None:
    """A database as the code before the shared layer left it, with data in every part."""
    from database.migrations import split_statements

    sqlite = db.dialect == "sqlite"
    for statement in split_statements(OLD_SQLITE_STORE if sqlite else OLD_POSTGRES_STORE):
        await db.execute(statement)
    prefix = "" if sqlite else "collab_"
    await db.execute(f"INSERT INTO {prefix}projects VALUES (?, ?, ?)", "song", "Old song", 5.0)
    await db.execute(f"INSERT INTO {prefix}snapshots VALUES (?, ?, ?, ?)",
                     "song", 2, b"snapshot", 6.0)
    await db.executemany(f"INSERT INTO {prefix}updates VALUES (?, ?, ?)",
                         [("song", 3, b"u3"), ("song", 4, b"u4")])
    await db.execute(f"INSERT INTO {prefix}quarantined_updates VALUES (?, ?, ?, ?, ?)",
                     "song", 5, b"bad", "does not apply", 7.0)
    await db.execute(f"INSERT INTO {prefix}revocations VALUES (?, ?, ?)", "song", "sam", 8.0)

    await db.execute(OLD_BOOKKEEPING)
    for migration in PLUGINS_BEFORE_SHARED:  # moved verbatim into .sql files
        for statement in migration.statements(db.dialect):
            await db.execute(statement)
        await db.execute("INSERT INTO schema_migrations VALUES (?, ?, ?, ?)",
                         migration.component, migration.version, migration.name, 1.0)
    await db.execute(OLD_RELEASE)

    if sqlite:  # the job table of a standalone job file: created, never recorded
        await db.execute(OLD_JOB_FILE)
    else:
        for statement in split_statements(OLD_JOB_TABLE):
            await db.execute(statement)
        await db.execute("INSERT INTO schema_migrations VALUES ('transcription', 1, 'jobs', 1)")
    await db.execute("INSERT INTO transcription_jobs (project_id, id, source, status, "
                     "created_at, updated_at) VALUES ('song', 'j1', '/a.wav', 'queued', 1, 1)")
    await db.execute("INSERT INTO transcription_jobs (project_id, id, clip_id, source, start_s, "
                     "end_s, language, status, progress, result, created_at, updated_at) "
                     "VALUES ('song', 'j2', 'c1', '/b.wav', 0.5, 2.25, 'de', 'done', 1, "
                     "'{\"language\": \"de\", \"segments\": []}', 2, 3)")
    await db.execute("INSERT INTO transcription_jobs (project_id, id, source, status, "
                     "progress, error, created_at, updated_at) "
                     "VALUES ('song', 'j3', '/c.wav', 'failed', 0.2, 'no such file', 4, 5)")


def test_a_database_written_before_the_shared_layer_upgrades_in_place(db_url: str,
                                                                      tmp_path: Path) -> None:
    async def go() -> None:
        async with open_database(db_url) as db:
            await write_old_database(db)

        async with open_store(db_url, tmp_path) as store:
            assert [p.name for p in await store.list_projects()] == ["Old song"]
            stored = await store.load("song")
            assert (stored.snapshot, stored.snapshot_seq, stored.updates, stored.last_seq) == (
                b"snapshot", 2, [b"u3", b"u4"], 4)
            assert await store.quarantined("song") == [
                QuarantinedUpdate(5, b"bad", "does not apply")]
            assert await store.revocations("song") == {"sam": 8.0}
            await store.append("song", 5, [b"u5"])  # the log goes on where it stopped

        async with open_database(db_url) as db:
            await migrate(db)  # the job queue's table, then transcription/2 moves the jobs in
            queue = JobQueue(db)
            moved = {r.id: r for r in await queue.find(account_id="song", queue="transcription")}
            assert {j: (r.state, r.attempts) for j, r in moved.items()} == {
                "j1": ("queued", 0), "j2": ("done", 1), "j3": ("dead", 1)}
            waiting, done, failed = (Job.from_record(moved[j]) for j in ("j1", "j2", "j3"))
            assert (waiting.status, waiting.source, waiting.clip_id, waiting.end_s) == (
                "queued", "/a.wav", None, None)
            assert (done.status, done.clip_id, done.start_s, done.end_s, done.language) == (
                "done", "c1", 0.5, 2.25, "de")
            assert done.result == {"language": "de", "segments": []}
            assert (done.created_at, done.updated_at, moved["j2"].finished_at) == (2, 3, 3)
            assert (failed.status, failed.error) == ("failed", "no such file")
            [claimed] = await queue.claim("transcription", "w")  # the queued one runs again
            assert claimed.id == "j1"
            await db.migrate([*JOBS, *EVENTS])  # the server opens them before the plug-ins
            applied = await db.migrate(PLUGINS)  # those recorded under the old column name
            assert applied == sorted(  # are not (the runner applies in component order)
                [m for m in PLUGINS if m not in PLUGINS_BEFORE_SHARED],
                key=lambda m: (m.component, m.version))
            assert await db.fetchval("SELECT status FROM dist_releases") == "draft"
            tables = set(await db.tables())
            assert not tables & {"projects", "updates", "snapshots", "revocations"}
            recorded = {(r["component"], r["version"]) for r in await db.fetch(
                "SELECT component, version FROM schema_migrations")}
            assert {("collab", 1), ("transcription", 1), ("transcription", 2), ("jobs", 1),
                    ("distribution", 7)} <= recorded
            assert "transcription_jobs" not in tables
            assert await walk(db, every_migration()) == []

    asyncio.run(go())
