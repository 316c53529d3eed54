"""SQLite back-end of :class:`database.Database` (the embedded default).

Every call runs in a worker thread, so the event loop never blocks on disk.
Writes go through one connection in one thread, one transaction at a time
(an asyncio lock orders them); reads through a second connection in its own
thread, so a read never waits behind a write's fsync (WAL lets readers run
beside the writer).  WAL journal with ``synchronous=FULL``: a returned write
has been fsynced (``?synchronous=normal`` on the URL trades that for a commit
without fsync, durable across a crash of the process but not of the machine).

Automatic checkpoints are off on the writing connection (they would run inside
some unlucky commit and stall every writer); a third connection in its own
thread checkpoints the WAL in the background once it passes
:data:`CHECKPOINT_BYTES`.

Besides the portable query methods, :meth:`SqliteDatabase.write` and
:meth:`SqliteDatabase.read` run a whole function on the raw ``sqlite3``
connection in one thread hop: the collaboration store's group commit writes
every room's appends that way.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from .errors import DatabaseError
from .session import Database, Row, Session
from .sharding import TableShape
from .tracing import traced
from .url import FULL_SYNC, SYNCHRONOUS

T = TypeVar("T")
#: WAL size past which a background checkpoint starts.
CHECKPOINT_BYTES = 8 * 1024 * 1024
#: What the WAL file is cut back to when a writer starts it again after a complete
#: checkpoint (``journal_size_limit``): below CHECKPOINT_BYTES, or else the file, which
#: SQLite reuses from its start without shrinking, would look full after every commit.
WAL_KEPT_BYTES = CHECKPOINT_BYTES // 4
#: How long a connection waits for another process's write lock (seconds).
BUSY_TIMEOUT_S = 10.0
#: Statements that only read: :meth:`SqliteDatabase.fetch` runs them on the reader.
_QUERY = re.compile(r"\s*SELECT\b", re.IGNORECASE)


class SqliteDatabase(Database):
    """A database in one SQLite file: one writer connection and thread, one reader."""

    dialect = "sqlite"

    def __init__(self, path: str | Path, *, synchronous: str = FULL_SYNC) -> None:
        if synchronous not in SYNCHRONOUS:
            raise DatabaseError(f"synchronous must be one of {SYNCHRONOUS}, not {synchronous!r}")
        self.path = Path(path)
        #: ``full``: every commit is fsynced; ``normal``: durable across a crash of the
        #: process, not of the operating system (database.url).
        self.synchronous = synchronous
        self.url = f"sqlite://{self.path}" + (
            "" if synchronous == FULL_SYNC else f"?synchronous={synchronous}")
        self._write_lock = asyncio.Lock()
        self._transaction_task: asyncio.Task | None = None
        self._writer: ThreadPoolExecutor | None = None
        self._reader: ThreadPoolExecutor | None = None
        self._checkpointer: ThreadPoolExecutor | None = None
        self._write_conn: sqlite3.Connection | None = None
        self._read_conn: sqlite3.Connection | None = None
        self._checkpoint_conn: sqlite3.Connection | None = None
        self._checkpointing: asyncio.Future | None = None

    # -- life cycle ----------------------------------------------------------

    async def _start(self) -> None:
        self._write_lock = asyncio.Lock()  # bound to this start's event loop
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="db-write")
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="db-read")
        self._checkpointer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="db-ckpt")
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._writer, self._open_writer)
            await loop.run_in_executor(self._reader, self._open_reader)
        except (sqlite3.Error, OSError) as exc:
            await self._close_all()
            raise DatabaseError(f"cannot open SQLite database {self.path}: {exc}; check that "
                                "its directory is writable") from None

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                               timeout=BUSY_TIMEOUT_S)

    def _open_writer(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = self._connect()
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self.synchronous.upper()}")
        conn.execute("PRAGMA wal_autocheckpoint=0")
        conn.execute(f"PRAGMA journal_size_limit={WAL_KEPT_BYTES}")
        conn.execute("PRAGMA foreign_keys=ON")
        self._write_conn = conn

    def _open_reader(self) -> None:
        self._read_conn = self._connect()

    async def _stop(self) -> None:
        async with self._write_lock:  # the write under way finishes first
            await self._close_all()

    async def _close_all(self) -> None:
        if self._checkpointing is not None:
            await asyncio.gather(self._checkpointing, return_exceptions=True)
            self._checkpointing = None
        loop = asyncio.get_running_loop()
        if self._reader is not None:
            await loop.run_in_executor(self._reader, self._close_reader)
        if self._writer is not None:
            await loop.run_in_executor(self._writer, self._close_writer)
        for pool in (self._writer, self._reader, self._checkpointer):
            if pool is not None:
                pool.shutdown(wait=True)
        self._writer = self._reader = self._checkpointer = None

    def _close_reader(self) -> None:
        if self._read_conn is not None:
            self._read_conn.close()
            self._read_conn = None

    def _close_writer(self) -> None:
        if self._write_conn is not None:
            with contextlib.suppress(sqlite3.Error):  # another process may be reading
                self._write_conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._write_conn.close()
            self._write_conn = None
        if self._checkpoint_conn is not None:
            self._checkpoint_conn.close()
            self._checkpoint_conn = None

    @contextlib.asynccontextmanager
    async def _writing(self) -> AsyncIterator[None]:
        """Hold the writer (one write or transaction at a time)."""
        if self._transaction_task is not None and \
                self._transaction_task is asyncio.current_task():
            raise DatabaseError(f"a write to {self.path} inside this task's own transaction "
                                "would wait for itself; use the transaction's session")
        async with self._write_lock:
            yield

    # -- raw access: a whole function in one thread hop -------------------------

    @traced("write")
    async def write(self, func: Callable[[sqlite3.Connection], T], *,
                    begin: str = "BEGIN IMMEDIATE") -> T:
        """Run ``func(writer connection)`` in the writer's thread inside one transaction.

        The transaction is committed (fsynced) before this returns, or rolled back
        when ``func`` raises; ``sqlite3`` errors come through unchanged.
        """
        async with self._writing():
            result = await self._in_writer(self._transact, func, begin)
        self._maybe_checkpoint()
        return result

    @traced("read")
    async def read(self, func: Callable[[sqlite3.Connection], T], *,
                   begin: str | None = None) -> T:
        """Run ``func(reader connection)`` in the reader's thread, never behind a write.

        With ``begin`` (e.g. ``"BEGIN"``) every statement of ``func`` reads one snapshot.
        """
        return await self._read(func, begin=begin)

    async def _read(self, func: Callable[[sqlite3.Connection], T], *,
                    begin: str | None = None) -> T:
        """:meth:`read` without its trace span (for :meth:`fetch`, which has its own)."""
        def work() -> T:
            conn = self._read_conn
            if conn is None:
                raise DatabaseError(f"database {self.url} is not started; use 'async with'")
            if begin is None:
                return func(conn)
            conn.execute(begin)
            try:
                return func(conn)
            finally:
                conn.execute("COMMIT")

        return await self._in(self._reader, work)

    def _transact(self, func: Callable[[sqlite3.Connection], T], begin: str) -> T:
        conn = self._require_writer()
        conn.execute(begin)
        try:
            result = func(conn)
        except BaseException:
            _rollback_if_open(conn)
            raise
        conn.execute("COMMIT")
        return result

    def _require_writer(self) -> sqlite3.Connection:
        if self._write_conn is None:
            raise DatabaseError(f"database {self.url} is not started; use 'async with'")
        return self._write_conn

    async def _in(self, pool: ThreadPoolExecutor | None, func: Callable[..., T], *args: Any
                  ) -> T:
        if pool is None:
            raise DatabaseError(f"database {self.url} is not started; use 'async with'")
        return await asyncio.get_running_loop().run_in_executor(pool, func, *args)

    async def _in_writer(self, func: Callable[..., T], *args: Any) -> T:
        return await self._in(self._writer, func, *args)

    async def _in_writer_to_the_end(self, func: Callable[..., T], *args: Any) -> T:
        """:meth:`_in_writer` that runs to its end even when the caller is cancelled.

        For the statements that open and end a transaction: a caller cancelled
        meanwhile waits for the statement (one thread hop), then sees the
        cancellation, so no transaction is left open on the writer connection.
        """
        job = asyncio.ensure_future(self._in_writer(func, *args))
        try:
            return await asyncio.shield(job)
        except asyncio.CancelledError:
            await asyncio.wait({job})
            raise

    def _maybe_checkpoint(self) -> None:
        """Start a background checkpoint when the WAL has grown past CHECKPOINT_BYTES."""
        if self._checkpointing is not None and not self._checkpointing.done():
            return
        try:
            size = os.path.getsize(f"{self.path}-wal")
        except OSError:
            return
        if size >= CHECKPOINT_BYTES and self._checkpointer is not None:
            self._checkpointing = asyncio.get_running_loop().run_in_executor(
                self._checkpointer, self._checkpoint)

    def _checkpoint(self) -> None:
        if self._checkpoint_conn is None:
            self._checkpoint_conn = self._connect()
        self._checkpoint_conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

    # -- the portable query methods ----------------------------------------------

    @traced()
    async def execute(self, sql: str, *args: Any) -> int:
        async with self._writing():
            count = await self._in_writer(_execute, self._require_writer(), sql, args)
        self._maybe_checkpoint()
        return count

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        async with self.transaction() as tx:
            await tx.executemany(sql, rows)

    @traced()
    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        if _QUERY.match(sql):
            return await self._read(lambda conn: _fetch(conn, sql, args))
        async with self._writing():
            rows = await self._in_writer(_fetch, self._require_writer(), sql, args)
        self._maybe_checkpoint()
        return rows

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Session]:
        async with self._writing():
            conn = self._require_writer()
            try:
                await self._in_writer_to_the_end(_execute, conn, "BEGIN IMMEDIATE", ())
            except asyncio.CancelledError:  # BEGIN ran: end what it opened
                await self._in_writer_to_the_end(_rollback_if_open, conn)
                raise
            self._transaction_task = asyncio.current_task()
            try:
                yield _SqliteTransaction(self, conn)
            except BaseException:
                await self._in_writer_to_the_end(_rollback_if_open, conn)
                raise
            finally:
                self._transaction_task = None
            try:
                await self._in_writer_to_the_end(conn.execute, "COMMIT")
            except sqlite3.Error as exc:
                await self._in_writer_to_the_end(_rollback_if_open, conn)
                raise DatabaseError(f"cannot commit to {self.path}: {exc}") from exc
        self._maybe_checkpoint()

    async def describe(self) -> dict[str, TableShape]:
        return await self.read(_describe)


class _SqliteTransaction(Session):
    """The statements of one transaction, on the writer connection and thread."""

    dialect = "sqlite"

    def __init__(self, database: SqliteDatabase, conn: sqlite3.Connection) -> None:
        self._database, self._conn = database, conn

    @traced()
    async def execute(self, sql: str, *args: Any) -> int:
        return await self._database._in_writer(_execute, self._conn, sql, args)

    @traced()
    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        await self._database._in_writer(_executemany, self._conn, sql, [tuple(r) for r in rows])

    @traced()
    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        return await self._database._in_writer(_fetch, self._conn, sql, args)


def _execute(conn: sqlite3.Connection, sql: str, args: Sequence[Any]) -> int:
    try:
        return conn.execute(sql, args).rowcount
    except sqlite3.Error as exc:
        raise DatabaseError(f"{exc} in: {sql}") from exc


def _executemany(conn: sqlite3.Connection, sql: str, rows: list[tuple]) -> None:
    try:
        conn.executemany(sql, rows)
    except sqlite3.Error as exc:
        raise DatabaseError(f"{exc} in: {sql}") from exc


def _fetch(conn: sqlite3.Connection, sql: str, args: Sequence[Any]) -> list[Row]:
    try:
        cursor = conn.execute(sql, args)
        rows = cursor.fetchall()
    except sqlite3.Error as exc:
        raise DatabaseError(f"{exc} in: {sql}") from exc
    names = [d[0] for d in cursor.description or ()]
    return [dict(zip(names, row, strict=True)) for row in rows]


def _rollback_if_open(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        conn.execute("ROLLBACK")


def _describe(conn: sqlite3.Connection) -> dict[str, TableShape]:
    tables = [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
        "ORDER BY name")]
    shapes = {}
    for table in tables:
        columns = conn.execute("SELECT name, pk FROM pragma_table_info(?) ORDER BY cid",
                               (table,)).fetchall()
        primary = tuple(name for name, pk in sorted((c for c in columns if c[1]),
                                                     key=lambda c: c[1]))
        unique = []
        for index, origin in conn.execute(
                "SELECT name, origin FROM pragma_index_list(?) WHERE \"unique\" = 1",
                (table,)).fetchall():
            if origin == "pk":
                continue
            unique.append(tuple(r[0] or "(expression)" for r in conn.execute(
                "SELECT name FROM pragma_index_info(?) ORDER BY seqno", (index,))))
        shapes[table] = TableShape(table, tuple(c[0] for c in columns), primary,
                                   tuple(sorted(unique)))
    return shapes
