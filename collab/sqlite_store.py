"""SQLite back-end of :class:`collab.store.Store` (the embedded default).

Every call runs in a worker thread, so the event loop never blocks on disk.
Writes go through one connection in one thread; reads (loading a document,
checking a revocation when a client connects) through a second connection in
its own thread, so they never wait behind a write's fsync (WAL lets readers
run beside the writer).  WAL journal with ``synchronous=FULL``: a returned
:meth:`append` has been fsynced.

Appends are group-committed (:class:`collab.store.Store`): one transaction
and one fsync for every room's appends that arrived together.

Automatic checkpoints are off on the writing connection (they would run
inside some unlucky append's commit and stall every room); a third connection
in its own thread checkpoints the WAL in the background once it passes
:data:`CHECKPOINT_BYTES`.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from .errors import ProjectNotFound, SeqConflict, StoreError
from .store import PendingAppend, ProjectInfo, QuarantinedUpdate, Store, StoredDocument

T = TypeVar("T")
CHECKPOINT_BYTES = 8 * 1024 * 1024

SCHEMA = """
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


class SqliteStore(Store):
    """A store in one SQLite file."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = Path(path)
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        self._reader: ThreadPoolExecutor | None = None
        self._reader_conn: sqlite3.Connection | None = None
        self._checkpointer: ThreadPoolExecutor | None = None
        self._checkpoint_conn: sqlite3.Connection | None = None
        self._checkpointing: asyncio.Future | None = None

    async def _start(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="collab-sqlite")
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="collab-read")
        self._checkpointer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="collab-ckpt")
        try:
            await self._run(self._open)
            await asyncio.get_running_loop().run_in_executor(self._reader, self._open_reader)
        except sqlite3.Error as exc:
            for pool in (self._executor, self._reader, self._checkpointer):
                pool.shutdown(wait=False)
            raise StoreError(f"cannot open SQLite store {self.path}: {exc}") from None

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA wal_autocheckpoint=0")
        conn.executescript(SCHEMA)
        self._conn = conn

    def _open_reader(self) -> None:
        self._reader_conn = sqlite3.connect(self.path, isolation_level=None,
                                            check_same_thread=False)

    async def _stop(self) -> None:
        if self._checkpointing is not None:
            await asyncio.gather(self._checkpointing, return_exceptions=True)
        assert self._reader is not None
        await asyncio.get_running_loop().run_in_executor(self._reader, self._close_reader)
        await self._run(self._close)
        assert self._executor is not None and self._checkpointer is not None
        for pool in (self._executor, self._reader, self._checkpointer):
            pool.shutdown(wait=True)

    def _close_reader(self) -> None:
        if self._reader_conn is not None:
            self._reader_conn.close()
            self._reader_conn = None

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._conn.close()
            self._conn = None
        if self._checkpoint_conn is not None:
            self._checkpoint_conn.close()
            self._checkpoint_conn = None

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
            self._checkpoint_conn = sqlite3.connect(self.path, isolation_level=None,
                                                    check_same_thread=False)
        self._checkpoint_conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

    async def _run(self, func: Callable[..., T], *args: Any) -> T:
        """Run ``func`` in the writer's thread."""
        if self._executor is None:
            raise StoreError("the SQLite store is not started")
        return await asyncio.get_running_loop().run_in_executor(self._executor, func, *args)

    async def _read_with(self, func: Callable[[sqlite3.Connection], T],
                         begin: str | None = None) -> T:
        """Run ``func(reader connection)`` in the reader's thread (in a read transaction
        when ``begin`` is given), never behind a write."""
        if self._reader is None:
            raise StoreError("the SQLite store is not started")

        def work() -> T:
            conn = self._reader_conn
            assert conn is not None
            if begin is None:
                return func(conn)
            conn.execute(begin)
            try:
                return func(conn)
            finally:
                conn.execute("COMMIT")

        return await asyncio.get_running_loop().run_in_executor(self._reader, work)

    def _tx(self, func: Callable[[sqlite3.Connection], T], begin: str = "BEGIN IMMEDIATE") -> T:
        conn = self._conn
        assert conn is not None
        conn.execute(begin)
        try:
            result = func(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    async def create_project(self, project_id: str, name: str, initial_update: bytes | None
                             ) -> ProjectInfo:
        now = time.time()

        def work(conn: sqlite3.Connection) -> None:
            try:
                conn.execute("INSERT INTO projects VALUES (?, ?, ?)", (project_id, name, now))
            except sqlite3.IntegrityError:
                raise StoreError(f"project {project_id!r} already exists") from None
            if initial_update is not None:
                conn.execute("INSERT INTO snapshots VALUES (?, 0, ?, ?)",
                             (project_id, initial_update, now))

        await self._run(self._tx, work)
        return ProjectInfo(project_id, name, now)

    async def get_project(self, project_id: str) -> ProjectInfo | None:
        def work(conn: sqlite3.Connection) -> tuple | None:
            return conn.execute(
                "SELECT project_id, name, created_at FROM projects WHERE project_id = ?",
                (project_id,)).fetchone()

        row = await self._read_with(work)
        return ProjectInfo(*row) if row else None

    async def list_projects(self) -> list[ProjectInfo]:
        def work(conn: sqlite3.Connection) -> list[tuple]:
            return conn.execute(
                "SELECT project_id, name, created_at FROM projects ORDER BY created_at").fetchall()

        return [ProjectInfo(*row) for row in await self._read_with(work)]

    async def rename_project(self, project_id: str, name: str) -> ProjectInfo:
        def work(conn: sqlite3.Connection) -> tuple | None:
            conn.execute("UPDATE projects SET name = ? WHERE project_id = ?", (name, project_id))
            return conn.execute("SELECT project_id, name, created_at FROM projects "
                                "WHERE project_id = ?", (project_id,)).fetchone()

        row = await self._run(self._tx, work)
        if row is None:
            raise ProjectNotFound(f"no project {project_id!r} in the store")
        return ProjectInfo(*row)

    async def load(self, project_id: str) -> StoredDocument:
        return await self._read_with(lambda conn: self._read(conn, project_id, None), "BEGIN")

    async def load_since(self, project_id: str, after_seq: int) -> StoredDocument:
        return await self._read_with(lambda conn: self._read(conn, project_id, after_seq),
                                     "BEGIN")

    @staticmethod
    def _folded(conn: sqlite3.Connection, project_id: str) -> int | None:
        """How far the project's snapshot reaches into the log (None: no snapshot)."""
        row = conn.execute("SELECT upto_seq FROM snapshots WHERE project_id = ?",
                           (project_id,)).fetchone()
        return row[0] if row else None

    @classmethod
    def _read(cls, conn: sqlite3.Connection, project_id: str, after: int | None
              ) -> StoredDocument:
        """The snapshot (always, or only past ``after``) and the updates logged after it."""
        upto, data = cls._folded(conn, project_id) or 0, None
        if after is not None and upto <= after:
            upto = after
        else:
            data = conn.execute("SELECT data FROM snapshots WHERE project_id = ?",
                                (project_id,)).fetchone()
            data = data[0] if data else None
        rows = conn.execute(
            "SELECT seq, data FROM updates WHERE project_id = ? AND seq > ? ORDER BY seq",
            (project_id, upto)).fetchall()
        last = rows[-1][0] if rows else upto
        return StoredDocument(data, upto, [r[1] for r in rows], last)

    async def _append_group(self, group: list[PendingAppend]) -> list[StoreError | None]:
        def work(conn: sqlite3.Connection) -> list[StoreError | None]:
            return [self._append_one(conn, a.project_id, a.first_seq, a.updates) for a in group]

        try:
            failures = await self._run(self._tx, work)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot append to the logs of {len(group)} projects: {exc}"
                             ) from None
        self._maybe_checkpoint()
        return failures

    def _append_one(self, conn: sqlite3.Connection, project_id: str, first_seq: int,
                    updates: list[bytes]) -> SeqConflict | None:
        """Append one room's updates inside the group's transaction, in a savepoint."""
        conn.execute("SAVEPOINT one_append")
        try:
            folded = self._folded(conn, project_id)
            if folded is not None and first_seq <= folded:  # compacted away, still taken
                return SeqConflict(f"cannot append to the log of {project_id!r}: a snapshot "
                                   f"holds it up to {folded}, past {first_seq}")
            conn.executemany("INSERT INTO updates VALUES (?, ?, ?)",
                             [(project_id, first_seq + i, u) for i, u in enumerate(updates)])
        except sqlite3.IntegrityError as exc:
            conn.execute("ROLLBACK TO one_append")
            return SeqConflict(f"cannot append to the log of {project_id!r}: sequence numbers "
                               f"from {first_seq} are taken ({exc})")
        finally:
            conn.execute("RELEASE one_append")
        return None

    async def compact(self, project_id: str, snapshot: bytes, upto_seq: int) -> bool:
        now = time.time()

        def work(conn: sqlite3.Connection) -> bool:
            folded = self._folded(conn, project_id)
            if folded is not None and folded > upto_seq:
                return False  # a newer snapshot is already there
            conn.execute("INSERT OR REPLACE INTO snapshots VALUES (?, ?, ?, ?)",
                         (project_id, upto_seq, snapshot, now))
            conn.execute("DELETE FROM updates WHERE project_id = ? AND seq <= ?",
                         (project_id, upto_seq))
            return True

        written = await self._run(self._tx, work)
        self._maybe_checkpoint()
        return written

    async def quarantine(self, project_id: str, entries: list[QuarantinedUpdate]) -> None:
        rows = [(project_id, e.seq, e.update, e.reason, time.time()) for e in entries]

        def work(conn: sqlite3.Connection) -> None:
            conn.executemany("INSERT OR IGNORE INTO quarantined_updates VALUES (?, ?, ?, ?, ?)",
                             rows)

        await self._run(self._tx, work)

    async def quarantined(self, project_id: str) -> list[QuarantinedUpdate]:
        def work(conn: sqlite3.Connection) -> list[tuple]:
            return conn.execute(
                "SELECT seq, data, reason FROM quarantined_updates WHERE project_id = ? "
                "ORDER BY seq", (project_id,)).fetchall()

        return [QuarantinedUpdate(*row) for row in await self._read_with(work)]

    async def revoke(self, project_id: str, user: str, at: float) -> None:
        def work(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT OR REPLACE INTO revocations VALUES (?, ?, ?)",
                         (project_id, user, at))

        await self._run(self._tx, work)

    async def revoked_at(self, project_id: str, user: str) -> float | None:
        def work(conn: sqlite3.Connection) -> tuple | None:
            return conn.execute(
                "SELECT revoked_at FROM revocations WHERE project_id = ? AND user_name = ?",
                (project_id, user)).fetchone()

        row = await self._read_with(work)
        return row[0] if row else None

    async def revocations(self, project_id: str) -> dict[str, float]:
        def work(conn: sqlite3.Connection) -> list[tuple]:
            return conn.execute(
                "SELECT user_name, revoked_at FROM revocations WHERE project_id = ?",
                (project_id,)).fetchall()

        return dict(await self._read_with(work))
