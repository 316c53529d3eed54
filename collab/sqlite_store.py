"""SQLite back-end of :class:`collab.store.Store` (the embedded default).

One connection lives in one worker thread; every call runs there, so the
event loop never blocks on disk.  WAL journal with ``synchronous=FULL``: a
returned :meth:`append` has been fsynced.  Automatic checkpoints are off on
that connection (they would run inside some unlucky append's commit and stall
every room); a second connection in its own thread checkpoints the WAL in the
background once it passes :data:`CHECKPOINT_BYTES`.
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
from .store import ProjectInfo, QuarantinedUpdate, Store, StoredDocument

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
        self.path = Path(path)
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        self._checkpointer: ThreadPoolExecutor | None = None
        self._checkpoint_conn: sqlite3.Connection | None = None
        self._checkpointing: asyncio.Future | None = None

    async def _start(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="collab-sqlite")
        self._checkpointer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="collab-ckpt")
        try:
            await self._run(self._open)
        except sqlite3.Error as exc:
            self._executor.shutdown(wait=False)
            self._checkpointer.shutdown(wait=False)
            raise StoreError(f"cannot open SQLite store {self.path}: {exc}") from None

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA wal_autocheckpoint=0")
        conn.executescript(SCHEMA)
        self._conn = conn

    async def _stop(self) -> None:
        if self._checkpointing is not None:
            await asyncio.gather(self._checkpointing, return_exceptions=True)
        await self._run(self._close)
        assert self._executor is not None and self._checkpointer is not None
        self._executor.shutdown(wait=True)
        self._checkpointer.shutdown(wait=True)

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
        if self._executor is None:
            raise StoreError("the SQLite store is not started")
        return await asyncio.get_running_loop().run_in_executor(self._executor, func, *args)

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
        def work() -> tuple | None:
            return self._conn.execute(  # type: ignore[union-attr]
                "SELECT project_id, name, created_at FROM projects WHERE project_id = ?",
                (project_id,)).fetchone()

        row = await self._run(work)
        return ProjectInfo(*row) if row else None

    async def list_projects(self) -> list[ProjectInfo]:
        def work() -> list[tuple]:
            return self._conn.execute(  # type: ignore[union-attr]
                "SELECT project_id, name, created_at FROM projects ORDER BY created_at").fetchall()

        return [ProjectInfo(*row) for row in await self._run(work)]

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
        return await self._run(self._tx, lambda conn: self._read(conn, project_id, None),
                               "BEGIN")

    async def load_since(self, project_id: str, after_seq: int) -> StoredDocument:
        return await self._run(self._tx, lambda conn: self._read(conn, project_id, after_seq),
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

    async def append(self, project_id: str, first_seq: int, updates: list[bytes]) -> None:
        rows = [(project_id, first_seq + i, u) for i, u in enumerate(updates)]

        def work(conn: sqlite3.Connection) -> None:
            folded = self._folded(conn, project_id)
            if folded is not None and first_seq <= folded:  # compacted away, still taken
                raise SeqConflict(f"cannot append to the log of {project_id!r}: a snapshot "
                                  f"holds it up to {folded}, past {first_seq}")
            conn.executemany("INSERT INTO updates VALUES (?, ?, ?)", rows)

        try:
            await self._run(self._tx, work)
        except sqlite3.IntegrityError as exc:
            raise SeqConflict(f"cannot append to the log of {project_id!r}: sequence numbers "
                              f"from {first_seq} are taken ({exc})") from None
        except sqlite3.Error as exc:
            raise StoreError(f"cannot append to the log of {project_id!r}: {exc}") from None
        self._maybe_checkpoint()

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
        def work() -> list[tuple]:
            return self._conn.execute(  # type: ignore[union-attr]
                "SELECT seq, data, reason FROM quarantined_updates WHERE project_id = ? "
                "ORDER BY seq", (project_id,)).fetchall()

        return [QuarantinedUpdate(*row) for row in await self._run(work)]

    async def revoke(self, project_id: str, user: str, at: float) -> None:
        def work(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT OR REPLACE INTO revocations VALUES (?, ?, ?)",
                         (project_id, user, at))

        await self._run(self._tx, work)

    async def revoked_at(self, project_id: str, user: str) -> float | None:
        def work() -> tuple | None:
            return self._conn.execute(  # type: ignore[union-attr]
                "SELECT revoked_at FROM revocations WHERE project_id = ? AND user_name = ?",
                (project_id, user)).fetchone()

        row = await self._run(work)
        return row[0] if row else None

    async def revocations(self, project_id: str) -> dict[str, float]:
        def work() -> list[tuple]:
            return self._conn.execute(  # type: ignore[union-attr]
                "SELECT user_name, revoked_at FROM revocations WHERE project_id = ?",
                (project_id,)).fetchall()

        return dict(await self._run(work))
