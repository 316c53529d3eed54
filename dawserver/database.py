"""Async database access shared by the server and its plug-ins.

SQLite (a file in the data directory) is the embedded default; a
``postgresql://`` URL selects PostgreSQL through asyncpg. Queries are written
once with ``?`` placeholders and portable types (``TEXT``, ``BIGINT``,
``DOUBLE PRECISION``); the PostgreSQL backend rewrites placeholders to ``$n``.

Every plug-in table carries a distribution key (``account_id``) that leads its
primary key, so the schema can be sharded with Citus unchanged
(:meth:`Database.distribute` is a no-op without the Citus extension).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import sqlite3
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

Row = dict[str, Any]
#: The SQLite file in the data directory: the same one the collaboration store uses.
DEFAULT_FILE = "collab.sqlite3"


class DatabaseError(Exception):
    """A database could not be opened, migrated or queried."""


@dataclass(frozen=True)
class Migration:
    """One schema change of one plug-in, applied once in version order."""

    plugin: str
    version: int
    name: str
    sql: str | Mapping[str, str]

    def statements(self, dialect: str) -> list[str]:
        """The SQL statements of this migration for ``dialect``."""
        sql = self.sql
        if isinstance(sql, Mapping):
            if dialect not in sql:
                raise DatabaseError(
                    f"migration {self.plugin}/{self.version} has no SQL for {dialect!r}; "
                    f"give one of {sorted(sql)} or a portable string"
                )
            sql = sql[dialect]
        return [part.strip() for part in sql.split(";") if part.strip()]


_PLACEHOLDER = re.compile(r"'(?:[^']|'')*'|\?")


def to_dollar_params(sql: str) -> str:
    """Rewrite ``?`` placeholders (outside string literals) to PostgreSQL's ``$n``."""
    counter = iter(range(1, 10_000))

    def repl(match: re.Match[str]) -> str:
        text = match.group(0)
        return text if text.startswith("'") else f"${next(counter)}"

    return _PLACEHOLDER.sub(repl, sql)


class Session:
    """Query methods shared by a database and one of its transactions."""

    dialect: str

    async def execute(self, sql: str, *args: Any) -> int:
        """Run one statement; the number of rows it changed."""
        raise NotImplementedError

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Run one statement once per row of arguments."""
        raise NotImplementedError

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        """All rows of a query, as dicts."""
        raise NotImplementedError

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        """The first row of a query, or None."""
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None

    async def fetchval(self, sql: str, *args: Any) -> Any:
        """The first column of the first row, or None."""
        row = await self.fetchrow(sql, *args)
        return None if row is None else next(iter(row.values()))


class Database(Session):
    """A started database: query methods, transactions and migrations."""

    url: str

    async def start(self) -> None:
        """Open connections."""
        raise NotImplementedError

    async def stop(self) -> None:
        """Close connections."""
        raise NotImplementedError

    def transaction(self) -> contextlib.AbstractAsyncContextManager[Session]:
        """A session whose statements commit together (or roll back on error)."""
        raise NotImplementedError

    async def __aenter__(self) -> Database:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def migrate(self, migrations: Iterable[Migration]) -> list[Migration]:
        """Apply the migrations not applied yet; the list of those applied now."""
        async with self.transaction() as tx:
            await self._lock_migrations(tx)
            await tx.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (plugin TEXT NOT NULL, "
                "version INTEGER NOT NULL, name TEXT NOT NULL, applied_at DOUBLE PRECISION "
                "NOT NULL, PRIMARY KEY (plugin, version))"
            )
        ordered = sorted(migrations, key=lambda m: (m.plugin, m.version))
        seen: set[tuple[str, int]] = set()
        for migration in ordered:
            key = (migration.plugin, migration.version)
            if key in seen:
                raise DatabaseError(
                    f"plug-in {migration.plugin!r} declares migration version "
                    f"{migration.version} twice; give each migration its own version"
                )
            seen.add(key)
        applied: list[Migration] = []
        for migration in ordered:
            async with self.transaction() as tx:
                await self._lock_migrations(tx)
                done = await tx.fetchval(
                    "SELECT COUNT(*) FROM schema_migrations WHERE plugin = ? AND version = ?",
                    migration.plugin, migration.version,
                )
                if done:
                    continue
                for statement in migration.statements(self.dialect):
                    try:
                        await tx.execute(statement)
                    except Exception as exc:
                        raise DatabaseError(
                            f"migration {migration.plugin}/{migration.version} "
                            f"({migration.name}) failed: {exc}"
                        ) from exc
                await tx.execute(
                    "INSERT INTO schema_migrations (plugin, version, name, applied_at) "
                    "VALUES (?, ?, ?, ?)",
                    migration.plugin, migration.version, migration.name, time.time(),
                )
                applied.append(migration)
                logger.info("applied migration %s/%s %s", migration.plugin,
                            migration.version, migration.name)
        return applied

    async def _lock_migrations(self, tx: Session) -> None:
        """Serialise concurrent migrators (SQLite's write lock already does)."""

    async def distribute(self, table: str, key: str = "account_id") -> bool:
        """Shard ``table`` by ``key`` when the Citus extension is present."""
        return False

    async def tables(self) -> dict[str, list[str]]:
        """Every user table and its column names (for checks and tooling)."""
        raise NotImplementedError


class SqliteDatabase(Database):
    """SQLite through aiosqlite; one connection, writes serialised by a lock."""

    dialect = "sqlite"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.url = f"sqlite:///{self.path}"
        self._conn: Any = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        import aiosqlite

        if self._conn is not None:
            raise DatabaseError(f"database {self.url} is already started")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = await aiosqlite.connect(self.path, isolation_level=None)
        except sqlite3.Error as exc:
            raise DatabaseError(f"cannot open SQLite database {self.path}: {exc}") from exc
        self._conn.row_factory = sqlite3.Row
        await self._conn.execute("PRAGMA journal_mode=WAL")
        await self._conn.execute("PRAGMA busy_timeout=10000")
        await self._conn.execute("PRAGMA foreign_keys=ON")

    async def stop(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await conn.close()

    def _require(self) -> Any:
        if self._conn is None:
            raise DatabaseError(f"database {self.url} is not started; use 'async with'")
        return self._conn

    async def execute(self, sql: str, *args: Any) -> int:
        async with self._lock:
            return await _SqliteSession(self._require()).execute(sql, *args)

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        async with self.transaction() as tx:
            await tx.executemany(sql, rows)

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        async with self._lock:
            return await _SqliteSession(self._require()).fetch(sql, *args)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Session]:
        async with self._lock:
            conn = self._require()
            await conn.execute("BEGIN IMMEDIATE")
            try:
                yield _SqliteSession(conn)
            except BaseException:
                await conn.execute("ROLLBACK")
                raise
            else:
                await conn.execute("COMMIT")

    async def tables(self) -> dict[str, list[str]]:
        names = await self.fetch(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
        result = {}
        for row in names:
            columns = await self.fetch(f"PRAGMA table_info({row['name']})")
            result[row["name"]] = [c["name"] for c in sorted(columns, key=lambda c: c["cid"])]
        return result

    async def primary_keys(self) -> dict[str, list[str]]:
        """Primary key columns of every table, in key order."""
        result = {}
        for table in await self.tables():
            columns = await self.fetch(f"PRAGMA table_info({table})")
            keyed = sorted((c for c in columns if c["pk"]), key=lambda c: c["pk"])
            result[table] = [c["name"] for c in keyed]
        return result


class _SqliteSession(Session):
    dialect = "sqlite"

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    async def execute(self, sql: str, *args: Any) -> int:
        try:
            cursor = await self._conn.execute(sql, args)
        except sqlite3.Error as exc:
            raise DatabaseError(f"{exc} in: {sql}") from exc
        count = cursor.rowcount
        await cursor.close()
        return count

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        try:
            await self._conn.executemany(sql, [tuple(r) for r in rows])
        except sqlite3.Error as exc:
            raise DatabaseError(f"{exc} in: {sql}") from exc

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        try:
            async with self._conn.execute(sql, args) as cursor:
                return [dict(row) for row in await cursor.fetchall()]
        except sqlite3.Error as exc:
            raise DatabaseError(f"{exc} in: {sql}") from exc


class PostgresDatabase(Database):
    """PostgreSQL through an asyncpg connection pool."""

    dialect = "postgresql"

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 10) -> None:
        self.url = url
        self._pool: Any = None
        self._sizes = (min_size, max_size)

    async def start(self) -> None:
        import asyncpg

        if self._pool is not None:
            raise DatabaseError("database is already started")
        try:
            self._pool = await asyncpg.create_pool(
                self.url, min_size=self._sizes[0], max_size=self._sizes[1]
            )
        except (OSError, asyncpg.PostgresError) as exc:
            raise DatabaseError(
                f"cannot connect to PostgreSQL at {_redact(self.url)}: {exc}; "
                "check the URL and that the server is running"
            ) from exc

    async def stop(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    def _require(self) -> Any:
        if self._pool is None:
            raise DatabaseError("database is not started; use 'async with'")
        return self._pool

    async def execute(self, sql: str, *args: Any) -> int:
        async with self._require().acquire() as conn:
            return await _PgSession(conn).execute(sql, *args)

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        async with self.transaction() as tx:
            await tx.executemany(sql, rows)

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        async with self._require().acquire() as conn:
            return await _PgSession(conn).fetch(sql, *args)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Session]:
        async with self._require().acquire() as conn, conn.transaction():
            yield _PgSession(conn)

    async def _lock_migrations(self, tx: Session) -> None:
        await tx.execute("SELECT pg_advisory_xact_lock(7007)")

    async def distribute(self, table: str, key: str = "account_id") -> bool:
        has_citus = await self.fetchval(
            "SELECT COUNT(*) FROM pg_extension WHERE extname = 'citus'"
        )
        if not has_citus:
            return False
        await self.execute(f"SELECT create_distributed_table('{table}', '{key}')")
        return True

    async def tables(self) -> dict[str, list[str]]:
        rows = await self.fetch(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position"
        )
        result: dict[str, list[str]] = {}
        for row in rows:
            result.setdefault(row["table_name"], []).append(row["column_name"])
        return result


class _PgSession(Session):
    dialect = "postgresql"

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    async def execute(self, sql: str, *args: Any) -> int:
        import asyncpg

        try:
            status = await self._conn.execute(to_dollar_params(sql), *args)
        except asyncpg.PostgresError as exc:
            raise DatabaseError(f"{exc} in: {sql}") from exc
        tail = status.rsplit(" ", 1)[-1]
        return int(tail) if tail.isdigit() else 0

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        import asyncpg

        try:
            await self._conn.executemany(to_dollar_params(sql), [tuple(r) for r in rows])
        except asyncpg.PostgresError as exc:
            raise DatabaseError(f"{exc} in: {sql}") from exc

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        import asyncpg

        try:
            rows = await self._conn.fetch(to_dollar_params(sql), *args)
        except asyncpg.PostgresError as exc:
            raise DatabaseError(f"{exc} in: {sql}") from exc
        return [dict(row) for row in rows]


def _redact(url: str) -> str:
    return re.sub(r"://([^:@/]+):[^@/]*@", r"://\1:***@", url)


def open_database(url: str | None = None, data_dir: str | Path = ".") -> Database:
    """A database for ``url`` (postgresql://..., sqlite:///PATH) or SQLite in ``data_dir``.

    The returned object is not started: use ``async with open_database(...) as db``.
    """
    if not url:
        return SqliteDatabase(Path(data_dir) / DEFAULT_FILE)
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresDatabase(url)
    if url.startswith("sqlite://"):
        return SqliteDatabase(url.removeprefix("sqlite://"))
    raise DatabaseError(
        f"unsupported database URL {_redact(url)!r}; use postgresql://user@host:port/db "
        "or sqlite:///absolute/path.sqlite3"
    )
