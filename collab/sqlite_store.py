"""SQLite back-end of :class:`collab.store.Store` (the embedded default).

The store writes through the shared database's one writer connection and
thread (:meth:`database.sqlite.SqliteDatabase.write`) and reads (loading a
document, checking a revocation when a client connects) through its reader
connection and thread, so reads never wait behind a write's fsync.  WAL
journal with ``synchronous=FULL``: a returned :meth:`append` has been fsynced;
the database checkpoints the WAL in the background.

Appends are group-committed (:class:`collab.store.Store`): one transaction,
one thread hop and one fsync for every room's appends that arrived together.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import TypeVar

from database import DatabaseError
from database.sqlite import SqliteDatabase

from .errors import ProjectChanged, ProjectDeleted, ProjectNotFound, SeqConflict, StoreError
from .store import (
    PROJECT_TABLES,
    PendingAppend,
    ProjectInfo,
    QuarantinedUpdate,
    Store,
    StoredDocument,
    stored_documents,
)

T = TypeVar("T")


class SqliteStore(Store):
    """A store in the process's SQLite database."""

    database: SqliteDatabase

    def __init__(self, database: SqliteDatabase, *, owns_database: bool = False) -> None:
        super().__init__(database, owns_database=owns_database)

    async def _run(self, func: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``func(writer connection)`` in one committed transaction."""
        try:
            return await self.database.write(func)
        except DatabaseError as exc:  # not started
            raise StoreError(f"the SQLite store cannot write: {exc}") from None

    async def _read_with(self, func: Callable[[sqlite3.Connection], T],
                         begin: str | None = None) -> T:
        """Run ``func(reader connection)`` (in a read transaction when ``begin`` is given)."""
        try:
            return await self.database.read(func, begin=begin)
        except DatabaseError as exc:  # not started
            raise StoreError(f"the SQLite store cannot read: {exc}") from None

    async def create_project(self, project_id: str, name: str, initial_update: bytes | None
                             ) -> ProjectInfo:
        now = time.time()

        def work(conn: sqlite3.Connection) -> None:
            try:
                conn.execute("INSERT INTO collab_projects VALUES (?, ?, ?)",
                             (project_id, name, now))
            except sqlite3.IntegrityError:
                raise StoreError(f"project {project_id!r} already exists") from None
            if initial_update is not None:
                conn.execute("INSERT INTO collab_snapshots VALUES (?, 0, ?, ?)",
                             (project_id, initial_update, now))

        await self._run(work)
        return ProjectInfo(project_id, name, now)

    async def get_project(self, project_id: str) -> ProjectInfo | None:
        def work(conn: sqlite3.Connection) -> tuple | None:
            return conn.execute(
                "SELECT project_id, name, created_at FROM collab_projects WHERE project_id = ?",
                (project_id,)).fetchone()

        row = await self._read_with(work)
        return ProjectInfo(*row) if row else None

    async def get_projects(self, project_ids: list[str]) -> dict[str, ProjectInfo]:
        ids = list(dict.fromkeys(project_ids))
        if not ids:
            return {}

        def work(conn: sqlite3.Connection) -> list[tuple]:
            marks = ", ".join("?" * len(ids))
            return conn.execute("SELECT project_id, name, created_at FROM collab_projects "
                                f"WHERE project_id IN ({marks})", ids).fetchall()

        return {row[0]: ProjectInfo(*row) for row in await self._read_with(work)}

    async def list_projects(self) -> list[ProjectInfo]:
        def work(conn: sqlite3.Connection) -> list[tuple]:
            return conn.execute("SELECT project_id, name, created_at FROM collab_projects "
                                "ORDER BY created_at").fetchall()

        return [ProjectInfo(*row) for row in await self._read_with(work)]

    async def rename_project(self, project_id: str, name: str, *,
                             expected: str | None = None) -> ProjectInfo:
        def work(conn: sqlite3.Connection) -> tuple[int, tuple | None]:
            changed = conn.execute(
                "UPDATE collab_projects SET name = ? WHERE project_id = ? AND "
                "(? IS NULL OR name = ?)", (name, project_id, expected, expected)).rowcount
            return changed, conn.execute(
                "SELECT project_id, name, created_at FROM collab_projects "
                "WHERE project_id = ?", (project_id,)).fetchone()

        changed, row = await self._run(work)
        if row is None:
            raise ProjectNotFound(f"no project {project_id!r} in the store")
        if not changed:
            raise ProjectChanged(f"project {project_id!r} was renamed meanwhile")
        return ProjectInfo(*row)

    async def delete_project(self, project_id: str) -> bool:
        def work(conn: sqlite3.Connection) -> bool:
            deleted = [conn.execute(f"DELETE FROM {table} WHERE project_id = ?",
                                    (project_id,)).rowcount for table in PROJECT_TABLES]
            return deleted[0] > 0

        # the one writer thread orders it with every append: one before it is deleted
        # with the rest, one after it finds no project (ProjectDeleted)
        return await self._run(work)

    @staticmethod
    def _held(conn: sqlite3.Connection, project_id: str) -> bool:
        """Whether the store holds ``project_id`` (its row in ``collab_projects``)."""
        return conn.execute("SELECT 1 FROM collab_projects WHERE project_id = ?",
                            (project_id,)).fetchone() is not None

    async def load(self, project_id: str) -> StoredDocument:
        return await self._read_with(lambda conn: self._read(conn, project_id, None), "BEGIN")

    async def load_since(self, project_id: str, after_seq: int) -> StoredDocument:
        return await self._read_with(lambda conn: self._read(conn, project_id, after_seq),
                                     "BEGIN")

    async def load_many(self, project_ids: list[str]) -> dict[str, StoredDocument]:
        ids = list(dict.fromkeys(project_ids))
        if not ids:
            return {}
        marks = ", ".join("?" * len(ids))

        def work(conn: sqlite3.Connection) -> dict[str, StoredDocument]:
            heads = conn.execute(
                "SELECT p.project_id, s.upto_seq, s.data FROM collab_projects p "
                "LEFT JOIN collab_snapshots s ON s.project_id = p.project_id "
                f"WHERE p.project_id IN ({marks})", ids).fetchall()
            updates = conn.execute(
                "SELECT u.project_id, u.seq, u.data FROM collab_updates u "
                "LEFT JOIN collab_snapshots s ON s.project_id = u.project_id "
                f"WHERE u.project_id IN ({marks}) AND u.seq > COALESCE(s.upto_seq, 0) "
                "ORDER BY u.project_id, u.seq", ids).fetchall()
            return stored_documents(heads, updates)

        return await self._read_with(work, "BEGIN")  # one read transaction, one hop

    @staticmethod
    def _folded(conn: sqlite3.Connection, project_id: str) -> int | None:
        """How far the project's snapshot reaches into the log (None: no snapshot)."""
        row = conn.execute("SELECT upto_seq FROM collab_snapshots WHERE project_id = ?",
                           (project_id,)).fetchone()
        return row[0] if row else None

    @classmethod
    def _read(cls, conn: sqlite3.Connection, project_id: str, after: int | None
              ) -> StoredDocument:
        """The snapshot (always, or only past ``after``) and the updates logged after it."""
        if after is not None and not cls._held(conn, project_id):
            raise ProjectDeleted(f"project {project_id!r} is not in the store (deleted)")
        upto, data = cls._folded(conn, project_id) or 0, None
        if after is not None and upto <= after:
            upto = after
        else:
            data = conn.execute("SELECT data FROM collab_snapshots WHERE project_id = ?",
                                (project_id,)).fetchone()
            data = data[0] if data else None
        rows = conn.execute(
            "SELECT seq, data FROM collab_updates WHERE project_id = ? AND seq > ? ORDER BY seq",
            (project_id, upto)).fetchall()
        last = rows[-1][0] if rows else upto
        return StoredDocument(data, upto, [r[1] for r in rows], last)

    async def _append_group(self, group: list[PendingAppend]) -> list[StoreError | None]:
        def work(conn: sqlite3.Connection) -> list[StoreError | None]:
            return [self._append_one(conn, a.project_id, a.first_seq, a.updates) for a in group]

        try:
            return await self._run(work)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot append to the logs of {len(group)} projects: {exc}"
                             ) from None

    def _append_one(self, conn: sqlite3.Connection, project_id: str, first_seq: int,
                    updates: list[bytes]) -> StoreError | None:
        """Append one room's updates inside the group's transaction, in a savepoint."""
        conn.execute("SAVEPOINT one_append")
        try:
            if not self._held(conn, project_id):
                return ProjectDeleted(f"cannot append to the log of {project_id!r}: the "
                                      "project is not in the store (deleted)")
            folded = self._folded(conn, project_id)
            if folded is not None and first_seq <= folded:  # compacted away, still taken
                return SeqConflict(f"cannot append to the log of {project_id!r}: a snapshot "
                                   f"holds it up to {folded}, past {first_seq}")
            conn.executemany("INSERT INTO collab_updates VALUES (?, ?, ?)",
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
            if not self._held(conn, project_id):
                raise ProjectDeleted(f"cannot compact {project_id!r}: the project is not in "
                                     "the store (deleted)")
            folded = self._folded(conn, project_id)
            if folded is not None and folded > upto_seq:
                return False  # a newer snapshot is already there
            conn.execute("INSERT OR REPLACE INTO collab_snapshots VALUES (?, ?, ?, ?)",
                         (project_id, upto_seq, snapshot, now))
            conn.execute("DELETE FROM collab_updates WHERE project_id = ? AND seq <= ?",
                         (project_id, upto_seq))
            return True

        return await self._run(work)

    async def quarantine(self, project_id: str, entries: list[QuarantinedUpdate]) -> None:
        rows = [(project_id, e.seq, e.update, e.reason, time.time()) for e in entries]

        def work(conn: sqlite3.Connection) -> None:
            if not self._held(conn, project_id):
                raise ProjectDeleted(f"cannot quarantine updates of {project_id!r}: the "
                                     "project is not in the store (deleted)")
            conn.executemany("INSERT OR IGNORE INTO collab_quarantined_updates "
                             "VALUES (?, ?, ?, ?, ?)", rows)

        await self._run(work)

    async def quarantined(self, project_id: str) -> list[QuarantinedUpdate]:
        def work(conn: sqlite3.Connection) -> list[tuple]:
            return conn.execute(
                "SELECT seq, data, reason FROM collab_quarantined_updates WHERE project_id = ? "
                "ORDER BY seq", (project_id,)).fetchall()

        return [QuarantinedUpdate(*row) for row in await self._read_with(work)]

    async def revoke(self, project_id: str, user: str, at: float) -> None:
        def work(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT OR REPLACE INTO collab_revocations VALUES (?, ?, ?)",
                         (project_id, user, at))

        await self._run(work)

    async def revoked_at(self, project_id: str, user: str) -> float | None:
        def work(conn: sqlite3.Connection) -> tuple | None:
            return conn.execute(
                "SELECT revoked_at FROM collab_revocations WHERE project_id = ? AND user_name = ?",
                (project_id, user)).fetchone()

        row = await self._read_with(work)
        return row[0] if row else None

    async def revocations(self, project_id: str) -> dict[str, float]:
        def work(conn: sqlite3.Connection) -> list[tuple]:
            return conn.execute(
                "SELECT user_name, revoked_at FROM collab_revocations WHERE project_id = ?",
                (project_id,)).fetchall()

        return dict(await self._read_with(work))
