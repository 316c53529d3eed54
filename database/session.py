"""What every database offers: query methods, transactions, migrations, its table shapes.

Queries are written once with ``?`` placeholders and portable types (``TEXT``,
``BIGINT``, ``DOUBLE PRECISION``); the PostgreSQL back-end rewrites the
placeholders to ``$n`` (:func:`to_dollar_params`). :attr:`Session.now_sql` is the
database's own clock, for times that servers whose clocks differ must agree on.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Self

from .errors import DatabaseError

if TYPE_CHECKING:
    from .migrations import Migration
    from .sharding import TableShape

Row = dict[str, Any]

_PLACEHOLDER = re.compile(r"'(?:[^']|'')*'|\?")

#: The database's own clock, in seconds since the epoch (a ``DOUBLE PRECISION``), by
#: dialect. PostgreSQL's ``now()`` is the server's clock at the start of the transaction
#: (the statement's, outside one); it is stable, so Citus evaluates it once, on the
#: coordinator. SQLite's is the clock of the one host its file lives on, read per
#: statement, to the millisecond.
NOW_SQL = {
    "sqlite": "((julianday('now') - 2440587.5) * 86400.0)",
    "postgresql": "CAST(EXTRACT(EPOCH FROM now()) AS DOUBLE PRECISION)",
}


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

    @property
    def now_sql(self) -> str:
        """SQL for the database's own clock, in seconds since the epoch (:data:`NOW_SQL`).

        A time stamped with it and compared with it means the same on every server,
        whatever their own clocks say: use it for leases and claims that servers take
        over from each other (``claimed_at <= {now_sql} - ?``).
        """
        return NOW_SQL[self.dialect]

    async def hold_lock(self, key: int, name: str) -> None:
        """In a transaction: hold the lock ``(key, name)`` until the transaction ends, so
        the transactions that take it for one ``name`` run one after the other (a
        transaction-level advisory lock on PostgreSQL, which a pooler in transaction mode
        keeps; SQLite writes one transaction at a time, so there it takes nothing)."""
        if self.dialect == "postgresql":
            await self.execute("SELECT pg_advisory_xact_lock(?, hashtext(?))", key, name)

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
    """The process's database (an async context manager): queries, transactions, migrations.

    One per process: the collaboration store, transcription and every plug-in
    share it (``create_app`` opens it once, :func:`database.open_database`).
    """

    url: str
    _started = False

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Open connections; starting twice is an error."""
        if self._started:
            raise DatabaseError(f"database {self.redacted_url} is already started")
        await self._start()
        self._started = True

    async def stop(self) -> None:
        """Close connections once the work under way is done (idempotent)."""
        if self._started:
            self._started = False
            await self._stop()

    @property
    def started(self) -> bool:
        """Whether :meth:`start` has run and :meth:`stop` has not."""
        return self._started

    @property
    def redacted_url(self) -> str:
        """The URL without its password, for messages."""
        from .url import redact

        return redact(self.url)

    async def _start(self) -> None:
        raise NotImplementedError

    async def _stop(self) -> None:
        raise NotImplementedError

    def transaction(self) -> contextlib.AbstractAsyncContextManager[Session]:
        """A session whose statements commit together (or roll back on error)."""
        raise NotImplementedError

    async def migrate(self, migrations: Iterable[Migration]) -> list[Migration]:
        """Apply the migrations not applied yet (:mod:`database.migrations`); those applied now."""
        from .migrations import apply_migrations

        return await apply_migrations(self, migrations)

    async def lock_migrations(self, tx: Session) -> None:
        """Serialise concurrent migrators inside ``tx`` (SQLite's write lock already does)."""

    async def distribute_tables(self, reference_tables: Iterable[str]) -> list[str]:
        """Shard (Citus) the tables not distributed yet; their names (none without Citus)."""
        return []

    async def tables(self) -> dict[str, list[str]]:
        """Every table and its column names, in column order."""
        return {name: list(shape.columns) for name, shape in (await self.describe()).items()}

    async def describe(self) -> dict[str, TableShape]:
        """Every table's columns, primary key and unique constraints (:mod:`database.sharding`)."""
        raise NotImplementedError
