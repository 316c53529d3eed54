"""PostgreSQL back-end of :class:`collab.store.Store` (asyncpg).

The store uses the shared database's one pool
(:attr:`database.postgres.PostgresDatabase.pool`) directly, for ``COPY`` and
advisory locks.  A returned :meth:`append` has been committed (durable with
the server's ``fsync``/``synchronous_commit``).
"""

from __future__ import annotations

import time

import asyncpg

from database import DatabaseError
from database.postgres import PostgresDatabase

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

#: Serialises a project's appends with its compactions and its deletion: a compaction
#: deletes log rows, so the primary key alone cannot tell that their sequence numbers are
#: taken, and a deletion must see every row an append wrote.  Run on its own, before
#: reading: a statement reads what was committed when it started, so a read in the locking
#: statement could predate the compaction (or deletion) it waited for.
_LOCK = "SELECT pg_advisory_xact_lock(711002, hashtext($1))"
_FOLDED = "SELECT upto_seq FROM collab_snapshots WHERE project_id = $1"
_HELD = "SELECT EXISTS (SELECT 1 FROM collab_projects WHERE project_id = $1)"


class PostgresStore(Store):
    """A store in the process's PostgreSQL database, on its asyncpg pool."""

    database: PostgresDatabase

    def __init__(self, database: PostgresDatabase, *, owns_database: bool = False) -> None:
        super().__init__(database, owns_database=owns_database)

    @property
    def pool(self) -> asyncpg.Pool:
        """The shared pool; an error before the database is started."""
        try:
            return self.database.pool
        except DatabaseError:
            raise StoreError("the PostgreSQL store is not started") from None

    async def create_project(self, project_id: str, name: str, initial_update: bytes | None
                             ) -> ProjectInfo:
        now = time.time()
        async with self.pool.acquire() as conn, conn.transaction():
            try:
                await conn.execute("INSERT INTO collab_projects VALUES ($1, $2, $3)",
                                   project_id, name, now)
            except asyncpg.UniqueViolationError:
                raise StoreError(f"project {project_id!r} already exists") from None
            if initial_update is not None:
                await conn.execute("INSERT INTO collab_snapshots VALUES ($1, 0, $2, $3)",
                                   project_id, initial_update, now)
        return ProjectInfo(project_id, name, now)

    async def get_project(self, project_id: str) -> ProjectInfo | None:
        row = await self.pool.fetchrow(
            "SELECT project_id, name, created_at FROM collab_projects WHERE project_id = $1",
            project_id)
        return ProjectInfo(*row) if row else None

    async def get_projects(self, project_ids: list[str]) -> dict[str, ProjectInfo]:
        ids = list(dict.fromkeys(project_ids))
        if not ids:
            return {}
        rows = await self.pool.fetch(
            "SELECT project_id, name, created_at FROM collab_projects "
            "WHERE project_id = ANY($1::text[])", ids)
        return {row[0]: ProjectInfo(*row) for row in rows}

    async def list_projects(self) -> list[ProjectInfo]:
        rows = await self.pool.fetch(
            "SELECT project_id, name, created_at FROM collab_projects ORDER BY created_at")
        return [ProjectInfo(*row) for row in rows]

    async def rename_project(self, project_id: str, name: str, *,
                             expected: str | None = None) -> ProjectInfo:
        row = await self.pool.fetchrow(
            "UPDATE collab_projects SET name = $2 WHERE project_id = $1 AND "
            "($3::text IS NULL OR name = $3) RETURNING project_id, name, created_at",
            project_id, name, expected)
        if row is None:
            if await self.pool.fetchval("SELECT 1 FROM collab_projects WHERE project_id = $1",
                                        project_id):
                raise ProjectChanged(f"project {project_id!r} was renamed meanwhile")
            raise ProjectNotFound(f"no project {project_id!r} in the store")
        return ProjectInfo(*row)

    async def delete_project(self, project_id: str) -> bool:
        async with self.pool.acquire() as conn, conn.transaction():
            # after the lock: an append holding it has committed, and its rows are seen
            await conn.execute(_LOCK, project_id)
            found = await conn.execute(f"DELETE FROM {PROJECT_TABLES[0]} WHERE project_id = $1",
                                       project_id)
            for table in PROJECT_TABLES[1:]:
                await conn.execute(f"DELETE FROM {table} WHERE project_id = $1", project_id)
        return found != "DELETE 0"

    async def load(self, project_id: str) -> StoredDocument:
        return await self._read(project_id, None)

    async def load_since(self, project_id: str, after_seq: int) -> StoredDocument:
        return await self._read(project_id, after_seq)

    async def load_many(self, project_ids: list[str]) -> dict[str, StoredDocument]:
        ids = list(dict.fromkeys(project_ids))
        if not ids:
            return {}
        async with self.pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
            heads = await conn.fetch(
                "SELECT p.project_id, s.upto_seq, s.data FROM collab_projects p "
                "LEFT JOIN collab_snapshots s ON s.project_id = p.project_id "
                "WHERE p.project_id = ANY($1::text[])", ids)
            updates = await conn.fetch(
                "SELECT u.project_id, u.seq, u.data FROM collab_updates u "
                "LEFT JOIN collab_snapshots s ON s.project_id = u.project_id "
                "WHERE u.project_id = ANY($1::text[]) AND u.seq > COALESCE(s.upto_seq, 0) "
                "ORDER BY u.project_id, u.seq", ids)
        return stored_documents(((r[0], r[1], r[2]) for r in heads),
                                ((r[0], r[1], r[2]) for r in updates))

    async def _read(self, project_id: str, after: int | None) -> StoredDocument:
        """The snapshot (always, or only past ``after``) and the updates logged after it."""
        async with self.pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
            if after is not None and not await conn.fetchval(_HELD, project_id):
                raise ProjectDeleted(f"project {project_id!r} is not in the store (deleted)")
            upto, data = await conn.fetchval(_FOLDED, project_id) or 0, None
            if after is not None and upto <= after:
                upto = after
            else:
                data = await conn.fetchval(
                    "SELECT data FROM collab_snapshots WHERE project_id = $1", project_id)
                data = bytes(data) if data is not None else None
            rows = await conn.fetch(
                "SELECT seq, data FROM collab_updates WHERE project_id = $1 AND seq > $2 "
                "ORDER BY seq", project_id, upto)
        last = rows[-1]["seq"] if rows else upto
        return StoredDocument(data, upto, [bytes(r["data"]) for r in rows], last)

    async def _append_group(self, group: list[PendingAppend]) -> list[StoreError | None]:
        failures: list[StoreError | None] = []
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                for entry in group:
                    failures.append(await self._append_one(conn, *entry[:3]))
        except (OSError, asyncpg.PostgresError) as exc:
            raise StoreError(f"cannot append to the logs of {len(group)} projects: {exc}"
                             ) from None
        return failures

    @staticmethod
    async def _append_one(conn: asyncpg.Connection, project_id: str, first_seq: int,
                          updates: list[bytes]) -> StoreError | None:
        """Append one room's updates inside the group's transaction, in a savepoint."""
        rows = [(project_id, first_seq + i, u) for i, u in enumerate(updates)]
        try:
            async with conn.transaction():  # a savepoint
                await conn.execute(_LOCK, project_id)
                if not await conn.fetchval(_HELD, project_id):
                    return ProjectDeleted(f"cannot append to the log of {project_id!r}: the "
                                          "project is not in the store (deleted)")
                folded = await conn.fetchval(_FOLDED, project_id)
                if folded is not None and first_seq <= folded:  # compacted away, still taken
                    return SeqConflict(f"cannot append to the log of {project_id!r}: a "
                                       f"snapshot holds it up to {folded}, past {first_seq}")
                await conn.copy_records_to_table("collab_updates", records=rows,
                                                 columns=["project_id", "seq", "data"])
        except asyncpg.UniqueViolationError as exc:
            return SeqConflict(f"cannot append to the log of {project_id!r}: sequence numbers "
                               f"from {first_seq} are taken ({exc})")
        return None

    async def compact(self, project_id: str, snapshot: bytes, upto_seq: int) -> bool:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(_LOCK, project_id)
            if not await conn.fetchval(_HELD, project_id):
                raise ProjectDeleted(f"cannot compact {project_id!r}: the project is not in "
                                     "the store (deleted)")
            written = await conn.fetchval(
                "INSERT INTO collab_snapshots VALUES ($1, $2, $3, $4) ON CONFLICT (project_id) "
                "DO UPDATE SET upto_seq = EXCLUDED.upto_seq, data = EXCLUDED.data, "
                "created_at = EXCLUDED.created_at "
                "WHERE collab_snapshots.upto_seq <= EXCLUDED.upto_seq RETURNING upto_seq",
                project_id, upto_seq, snapshot, time.time())
            if written is None:
                return False  # a newer snapshot is already there
            await conn.execute("DELETE FROM collab_updates WHERE project_id = $1 AND seq <= $2",
                               project_id, upto_seq)
        return True

    async def quarantine(self, project_id: str, entries: list[QuarantinedUpdate]) -> None:
        now = time.time()
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(_LOCK, project_id)
            if not await conn.fetchval(_HELD, project_id):
                raise ProjectDeleted(f"cannot quarantine updates of {project_id!r}: the "
                                     "project is not in the store (deleted)")
            await conn.executemany(
                "INSERT INTO collab_quarantined_updates VALUES ($1, $2, $3, $4, $5) "
                "ON CONFLICT (project_id, seq) DO NOTHING",
                [(project_id, e.seq, e.update, e.reason, now) for e in entries])

    async def quarantined(self, project_id: str) -> list[QuarantinedUpdate]:
        rows = await self.pool.fetch(
            "SELECT seq, data, reason FROM collab_quarantined_updates WHERE project_id = $1 "
            "ORDER BY seq", project_id)
        return [QuarantinedUpdate(r["seq"], bytes(r["data"]), r["reason"]) for r in rows]

    async def revoke(self, project_id: str, user: str, at: float) -> None:
        await self.pool.execute(
            "INSERT INTO collab_revocations VALUES ($1, $2, $3) ON CONFLICT (project_id, "
            "user_name) DO UPDATE SET revoked_at = EXCLUDED.revoked_at", project_id, user, at)

    async def revoked_at(self, project_id: str, user: str) -> float | None:
        return await self.pool.fetchval(
            "SELECT revoked_at FROM collab_revocations WHERE project_id = $1 AND user_name = $2",
            project_id, user)

    async def revocations(self, project_id: str) -> dict[str, float]:
        rows = await self.pool.fetch(
            "SELECT user_name, revoked_at FROM collab_revocations WHERE project_id = $1",
            project_id)
        return {row["user_name"]: row["revoked_at"] for row in rows}
