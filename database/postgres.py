"""PostgreSQL back-end of :class:`database.Database`: one asyncpg pool for the process.

The collaboration store reaches the same pool through :attr:`PostgresDatabase.pool`
for what only PostgreSQL offers (``COPY``, advisory locks).  Behind a pooler in
transaction mode (``pooler="transaction"``, from ``?pooler=transaction`` on the URL) the
pool keeps no prepared statements: the next transaction may run on a server connection
that never saw them.  Every lock the layer takes is a transaction-level advisory lock
(``pg_advisory_xact_lock``), released by the commit, so it holds through such a pooler;
a session-level lock would outlive its transaction on a server connection the pooler
hands to someone else.  On a server with the
Citus extension, :meth:`PostgresDatabase.distribute_tables` shards every table by
its distribution column and replicates the reference tables.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

import asyncpg

from .errors import DatabaseError
from .session import Database, Row, Session, to_dollar_params
from .sharding import TableShape, distribution_column
from .tracing import traced
from .url import SESSION_POOLING, TRANSACTION_POOLING

#: Advisory lock key that serialises migrators across processes.
MIGRATION_LOCK = 7007


class PostgresDatabase(Database):
    """A PostgreSQL database reached through one asyncpg connection pool."""

    dialect = "postgresql"

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 10,
                 pooler: str = SESSION_POOLING) -> None:
        self.url = url
        self.pooler = pooler
        self._sizes = (min_size, max_size)
        self._pool: asyncpg.Pool | None = None

    async def _start(self) -> None:
        try:
            self._pool = await asyncpg.create_pool(self.url, min_size=self._sizes[0],
                                                   max_size=self._sizes[1],
                                                   **self._pooler_options())
        except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
            raise DatabaseError(f"cannot connect to PostgreSQL at {self.redacted_url}: {exc}; "
                                "check the URL and that the server is running") from None

    def _pooler_options(self) -> dict[str, Any]:
        """asyncpg options for the pooler in front of the server (none for a direct one)."""
        if self.pooler != TRANSACTION_POOLING:
            return {}
        # No statement cache: a named statement lives on one server connection, and the
        # pooler may run the next statement on another ("prepared statement ... does not
        # exist").
        return {"statement_cache_size": 0}

    async def _stop(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    @property
    def pool(self) -> asyncpg.Pool:
        """The process's connection pool (for asyncpg's own API)."""
        if self._pool is None:
            raise DatabaseError(f"database {self.redacted_url} is not started; use 'async with'")
        return self._pool

    async def execute(self, sql: str, *args: Any) -> int:
        async with self.pool.acquire() as conn:
            return await _PostgresSession(conn).execute(sql, *args)

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        async with self.transaction() as tx:
            await tx.executemany(sql, rows)

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        async with self.pool.acquire() as conn:
            return await _PostgresSession(conn).fetch(sql, *args)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Session]:
        async with self.pool.acquire() as conn, conn.transaction():
            yield _PostgresSession(conn)

    async def lock_migrations(self, tx: Session) -> None:
        await tx.execute(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")

    async def distribute_tables(self, reference_tables: Iterable[str]) -> list[str]:
        if not await self.fetchval("SELECT COUNT(*) FROM pg_extension WHERE extname = 'citus'"):
            return []
        done = {row["name"] for row in await self.fetch(
            "SELECT logicalrelid::regclass::text AS name FROM pg_dist_partition")}
        reference, distributed = set(reference_tables), []
        for name, shape in (await self.describe()).items():
            column = distribution_column(shape)
            if name in done:
                continue
            if name in reference:
                await self.execute("SELECT create_reference_table(?)", name)
            elif column is not None:
                await self.execute("SELECT create_distributed_table(?, ?)", name, column)
            else:
                continue  # another component's reference table: distributed by its migrations
            distributed.append(name)
        return distributed

    async def describe(self) -> dict[str, TableShape]:
        columns = await self.fetch(
            "SELECT c.table_name, c.column_name FROM information_schema.columns c "
            "JOIN information_schema.tables t ON t.table_schema = c.table_schema "
            "AND t.table_name = c.table_name WHERE c.table_schema = current_schema() "
            "AND t.table_type = 'BASE TABLE' ORDER BY c.table_name, c.ordinal_position")
        indexes = await self.fetch(
            "SELECT c.relname AS table_name, i.indisprimary AS is_primary, "
            "array_agg(coalesce(a.attname::text, '(expression)') ORDER BY k.ord) AS columns "
            "FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) "
            "LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum "
            "WHERE n.nspname = current_schema() AND i.indisunique "
            "GROUP BY c.relname, i.indexrelid, i.indisprimary")
        names: dict[str, list[str]] = {}
        for row in columns:
            names.setdefault(row["table_name"], []).append(row["column_name"])
        primary: dict[str, tuple[str, ...]] = {}
        unique: dict[str, list[tuple[str, ...]]] = {}
        for row in indexes:
            if row["is_primary"]:
                primary[row["table_name"]] = tuple(row["columns"])
            else:
                unique.setdefault(row["table_name"], []).append(tuple(row["columns"]))
        return {table: TableShape(table, tuple(cols), primary.get(table, ()),
                                  tuple(sorted(unique.get(table, []))))
                for table, cols in sorted(names.items())}


class _PostgresSession(Session):
    """The statements of one connection (or of its transaction)."""

    dialect = "postgresql"

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    @traced()
    async def execute(self, sql: str, *args: Any) -> int:
        try:
            status = await self._conn.execute(to_dollar_params(sql), *args)
        except asyncpg.PostgresError as exc:
            raise DatabaseError(f"{exc} in: {sql}") from exc
        tail = status.rsplit(" ", 1)[-1]
        return int(tail) if tail.isdigit() else 0

    @traced()
    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        try:
            await self._conn.executemany(to_dollar_params(sql), [tuple(r) for r in rows])
        except asyncpg.PostgresError as exc:
            raise DatabaseError(f"{exc} in: {sql}") from exc

    @traced()
    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        try:
            rows = await self._conn.fetch(to_dollar_params(sql), *args)
        except asyncpg.PostgresError as exc:
            raise DatabaseError(f"{exc} in: {sql}") from exc
        return [dict(row) for row in rows]
