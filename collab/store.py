"""The durable store: per-project update log, snapshots, projects and revocations.

Every document update is appended (and committed) before the room applies
or relays it; :meth:`Store.compact` later folds the log into one snapshot.

The store lives in the process's one database (:mod:`database`), shared with
transcription and the plug-ins; its tables (``collab_projects``,
``collab_updates``, ``collab_snapshots``, ``collab_quarantined_updates``,
``collab_revocations``, the same names on both dialects) are created by the
migrations in ``collab/migrations/``.  Two back-ends write the same tables
with SQL of their own where a dialect's strength matters on the hot path:
SQLite (the embedded default, :mod:`collab.sqlite_store`: a whole group commit
in one hop to the database's writer thread) and PostgreSQL
(:mod:`collab.postgres_store`: ``COPY`` and advisory locks on the shared
pool).  Every table is keyed by ``project_id`` first, its distribution column.

**Deleting a project** (:meth:`Store.delete_project`) removes its rows from every
table in one transaction.  A log belongs to a project: an append (or a
compaction, or a catch-up read) of a project the store does not hold fails with
:class:`~collab.errors.ProjectDeleted` and writes nothing, so an append racing a
deletion either lands before it (and is deleted with the rest) or fails, never
bringing the project back.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, Self

from database import Database, DatabaseError, load_migrations, open_database

from .errors import StoreError

#: The collaboration tables, in the shared database.
MIGRATIONS = load_migrations("collab", Path(__file__).with_name("migrations"))
#: Every table that holds rows of a project (all keyed by ``project_id``), the project's
#: own row first.
PROJECT_TABLES = ("collab_projects", "collab_updates", "collab_snapshots",
                  "collab_quarantined_updates", "collab_revocations")


@dataclass(frozen=True)
class ProjectInfo:
    """A project known to the store."""

    project_id: str
    name: str
    created_at: float


@dataclass(frozen=True)
class QuarantinedUpdate:
    """A logged update that could not be applied on load, kept aside for inspection."""

    seq: int
    update: bytes
    reason: str


@dataclass
class StoredDocument:
    """What is needed to rebuild a document: a snapshot plus the updates after it."""

    snapshot: bytes | None
    snapshot_seq: int
    updates: list[bytes] = field(default_factory=list)
    last_seq: int = 0


def stored_documents(heads: Iterable[tuple[str, int | None, bytes | None]],
                     updates: Iterable[tuple[str, int, bytes]]) -> dict[str, StoredDocument]:
    """Documents from the rows a back-end's :meth:`Store.load_many` read.

    ``heads`` holds ``(project_id, snapshot's upto_seq, snapshot)`` per held project
    (None, None without a snapshot); ``updates`` the ``(project_id, seq, update)``
    logged after each snapshot, in ``seq`` order per project.
    """
    found = {project_id: StoredDocument(None if data is None else bytes(data), upto or 0,
                                        last_seq=upto or 0)
             for project_id, upto, data in heads}
    for project_id, seq, data in updates:
        document = found.get(project_id)
        if document is not None:
            document.updates.append(bytes(data))
            document.last_seq = seq
    return found


class PendingAppend(NamedTuple):
    """An append waiting for the next group commit."""

    project_id: str
    first_seq: int
    updates: list[bytes]
    done: asyncio.Future[None]


class Store(abc.ABC):
    """Async interface of a durable collaboration store (an async context manager).

    **Group commit**: :meth:`append` calls that arrive while a commit is under
    way, from any number of rooms, are written together in the next transaction
    (one fsync for all of them); a back-end puts each in its own savepoint, so a
    sequence-number conflict fails only that room's append.  ``group_commit =
    False`` commits each append on its own (the baseline of the store
    benchmark); :attr:`commits` counts append transactions.
    """

    _started = False
    group_commit = True

    def __init__(self, database: Database, *, owns_database: bool = False) -> None:
        self.database = database
        self._owns_database = owns_database
        self.commits = 0
        self._appends: list[PendingAppend] = []
        self._committer: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Apply the collaboration migrations (opening the database if the store owns it).

        Starting twice is an error.
        """
        if self._started:
            raise StoreError(f"{type(self).__name__} is already started")
        try:
            if self._owns_database:
                await self.database.start()
            await self.database.migrate(MIGRATIONS)
        except DatabaseError as exc:
            if self._owns_database:
                await self.database.stop()
            raise StoreError(str(exc)) from None
        self._started = True

    async def stop(self) -> None:
        """Stop (idempotent) once the appends under way are committed; close an owned database."""
        if self._started:
            self._started = False
            if self._committer is not None:
                await asyncio.gather(self._committer, return_exceptions=True)
            if self._owns_database:
                await self.database.stop()

    @abc.abstractmethod
    async def create_project(self, project_id: str, name: str, initial_update: bytes | None
                             ) -> ProjectInfo:
        """Register a project, optionally with its initial document as the first snapshot."""

    @abc.abstractmethod
    async def get_project(self, project_id: str) -> ProjectInfo | None:
        """The project with this id, or None."""

    async def get_projects(self, project_ids: list[str]) -> dict[str, ProjectInfo]:
        """The projects with these ids that exist, by id (one query where the store can)."""
        found = {}
        for project_id in dict.fromkeys(project_ids):
            info = await self.get_project(project_id)
            if info is not None:
                found[project_id] = info
        return found

    @abc.abstractmethod
    async def list_projects(self) -> list[ProjectInfo]:
        """Every project, oldest first."""

    @abc.abstractmethod
    async def rename_project(self, project_id: str, name: str, *,
                             expected: str | None = None) -> ProjectInfo:
        """Set a project's name; raises :class:`ProjectNotFound` for an unknown id.

        With ``expected``, only while its name is still ``expected`` (one conditional
        update): else :class:`~collab.errors.ProjectChanged` and nothing is written.
        """

    @abc.abstractmethod
    async def delete_project(self, project_id: str) -> bool:
        """Delete the project and every row of it (:data:`PROJECT_TABLES`) in one
        transaction; whether the project was there.

        Appends, compactions and :meth:`load_since` of it from then on raise
        :class:`~collab.errors.ProjectDeleted` and write nothing.  A live room of it
        is the caller's to close (:meth:`collab.registry.RoomRegistry.close_deleted`).
        """

    @abc.abstractmethod
    async def load(self, project_id: str) -> StoredDocument:
        """The latest snapshot and every update logged after it, in order."""

    async def load_many(self, project_ids: list[str]) -> dict[str, StoredDocument]:
        """:meth:`load` of many projects, by id (one read where the store can).

        Projects the store does not hold are left out.  Each document is read as
        :meth:`load` reads it, all of them at one point in time where the back-end
        can (one read transaction); nothing is quarantined or written.
        """
        held = await self.get_projects(project_ids)
        return {project_id: await self.load(project_id) for project_id in held}

    @abc.abstractmethod
    async def load_since(self, project_id: str, after_seq: int) -> StoredDocument:
        """What was logged after ``after_seq``: the updates ``after_seq+1 ...``, in order.

        When a snapshot has folded in updates past ``after_seq`` (another server
        process compacted), it comes too and ``updates`` start after it.  Raises
        :class:`~collab.errors.ProjectDeleted` when the store does not hold the project
        (another server process deleted it).
        """

    async def append(self, project_id: str, first_seq: int, updates: list[bytes]) -> None:
        """Durably append ``updates`` with sequence numbers ``first_seq, first_seq+1, ...``.

        Raises :class:`SeqConflict` when one of those numbers is already written
        (another server process appended first), :class:`~collab.errors.ProjectDeleted`
        when the store does not hold the project (deleted), and writes nothing then.
        """
        done = asyncio.get_running_loop().create_future()
        self._appends.append(PendingAppend(project_id, first_seq, updates, done))
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit_appends(),
                                                  name=f"{type(self).__name__} group commit")
        await done

    async def _commit_appends(self) -> None:
        """Commit the waiting appends, a group per transaction, until none wait."""
        while self._appends:
            if self.group_commit:
                group, self._appends = self._appends, []
            else:
                group, self._appends = self._appends[:1], self._appends[1:]
            try:
                failures = await self._append_group(group)
            except StoreError as exc:
                failures = [exc] * len(group)
            self.commits += 1
            for entry, failure in zip(group, failures, strict=True):
                if entry.done.done():  # its room gave up waiting
                    continue
                if failure is None:
                    entry.done.set_result(None)
                else:
                    entry.done.set_exception(failure)

    @abc.abstractmethod
    async def _append_group(self, group: list[PendingAppend]) -> list[StoreError | None]:
        """Write every append of ``group`` in one committed transaction.

        Returns, per append, None or the error that failed it alone (its own
        writes undone); raises :class:`StoreError` when the whole group failed.
        """

    @abc.abstractmethod
    async def compact(self, project_id: str, snapshot: bytes, upto_seq: int) -> bool:
        """Replace the log up to ``upto_seq`` (inclusive) by ``snapshot``, atomically.

        A snapshot older than the stored one (a lower ``upto_seq``, from a slower
        server process) changes nothing; returns whether this one was written.  Raises
        :class:`~collab.errors.ProjectDeleted` (writing nothing) for a deleted project.
        """

    @abc.abstractmethod
    async def quarantine(self, project_id: str, entries: list[QuarantinedUpdate]) -> None:
        """Keep ``entries`` aside (idempotent); the next compaction drops them from the log."""

    @abc.abstractmethod
    async def quarantined(self, project_id: str) -> list[QuarantinedUpdate]:
        """Every update of ``project_id`` put in quarantine, by sequence number."""

    @abc.abstractmethod
    async def revoke(self, project_id: str, user: str, at: float) -> None:
        """Refuse every token of ``user`` on ``project_id`` issued at or before ``at``."""

    @abc.abstractmethod
    async def revoked_at(self, project_id: str, user: str) -> float | None:
        """When ``user`` was last revoked on ``project_id`` (None if never)."""

    @abc.abstractmethod
    async def revocations(self, project_id: str) -> dict[str, float]:
        """Every user revoked on ``project_id`` and when they were last revoked."""


def store_for(database: Database, *, owns_database: bool = False) -> Store:
    """The store in ``database`` (the back-end of its dialect); not started yet.

    A server passes its one shared database, which it starts before and stops after
    the store; ``owns_database=True`` makes the store start and stop it.
    """
    if database.dialect == "postgresql":
        from .postgres_store import PostgresStore

        return PostgresStore(database, owns_database=owns_database)
    from .sqlite_store import SqliteStore

    return SqliteStore(database, owns_database=owns_database)


def open_store(database_url: str | None, data_dir: Path) -> Store:
    """A store with a database of its own, for ``database_url`` (:func:`database.parse_url`).

    For tools and tests that need only the store; ``None`` or ``sqlite:///PATH`` gives
    SQLite (default file ``DATA/collab.sqlite3``), ``postgresql://...`` PostgreSQL.
    """
    try:
        database = open_database(database_url, data_dir)
    except DatabaseError as exc:
        raise StoreError(str(exc)) from None
    return store_for(database, owns_database=True)
