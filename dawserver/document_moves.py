"""Moving an account's project documents with it: the :class:`DocumentMoveHook`.

The collaboration tables (``collab_projects``, ``collab_updates``, ...) are keyed by
project, not by account, so :class:`accounts.moving.AccountMover`'s table copy does not
see them. This :class:`~accounts.moving.MoveHook` moves the documents of the projects
the account owns (``account_projects``) between the regions' databases:

- **copy** (before the switch, repeatable): for each project and table, the target's
  rows of the project are deleted and the source's inserted in one target transaction,
  then both sides are compared row for row (bytes and all); a difference is copied
  again, three times at most, then :class:`DocumentsChanging`.
- **drop** (after the switch, repeatable): for each project, its room is held closed in
  this process (:meth:`~collab.registry.RoomRegistry.held`: stored and unloaded, its
  queued updates and final snapshot landing in the source, and opening it answers
  "busy, try again" until the project is routed to the target, so no reconnecting peer
  or API call reloads it from the source meanwhile), any difference is copied again,
  the collaboration store is pointed at the target
  (:meth:`~collab.regional_store.RegionalCollabStore.relocate`), and only then are the
  source's rows deleted. A project the target does not hold is never deleted, and one
  the source no longer holds (dropped by an earlier, interrupted run) is only routed to
  its copy: the copy is never compared with, nor emptied after, a missing original.

docs/accounts.md ("Moving an account") says what moves and what does not.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any

from accounts.errors import Conflict
from collab.regional_store import RegionalCollabStore
from database import Database

log = logging.getLogger(__name__)

#: The collaboration tables, each keyed by ``project_id``.
COLLAB_TABLES = (
    "collab_projects",
    "collab_updates",
    "collab_snapshots",
    "collab_quarantined_updates",
    "collab_revocations",
)

#: ``async with hold(project_id):`` keeps this process's room of the project closed.
Hold = Callable[[str], AbstractAsyncContextManager[object]]


class DocumentsChanging(Conflict):
    """A project's document kept changing while it was copied; run the move again."""


class DocumentNotInSource(Conflict):
    """A project's document is not in the region it would be copied from."""


class DocumentMoveHook:
    """Copies the documents of an account's projects to the target region, and drops
    the source's after the switch (see the module).

    Parameters
    ----------
    store:
        The server's regional collaboration store (routed to the target on drop).
    databases:
        Every region's database, the main one as ``default``.
    hold:
        ``async with hold(project_id):`` stores and closes this process's room of the
        project and keeps it from opening while the block runs (none: no rooms).
    """

    name = "documents"

    def __init__(
        self,
        store: RegionalCollabStore,
        databases: Mapping[str, Database],
        *,
        hold: Hold | None = None,
    ) -> None:
        self.store = store
        self.databases = dict(databases)
        self.hold = hold

    async def projects_of(self, account_id: str) -> list[str]:
        """The ids of the projects ``account_id`` owns, as any region records them."""
        found: dict[str, None] = {}
        for database in self.databases.values():
            rows = await database.fetch(
                "SELECT project_id FROM account_projects WHERE account_id = ?", account_id
            )
            for row in rows:
                found.setdefault(row["project_id"], None)
        return sorted(found)

    async def check(self, account_id: str, source: str, target: str) -> None:
        """Nothing to refuse: documents can always be copied."""

    async def copy(self, account_id: str, source: str, target: str) -> None:
        """Copy the documents of ``account_id``'s projects from ``source`` to ``target``."""
        projects = await self.projects_of(account_id)
        for project_id in projects:
            if not await self._holds(source, project_id):
                log.warning("project %s has no document in %s; not copied", project_id, source)
                continue
            await self._copy_exactly(project_id, source, target)
        log.info(
            "account %s: copied %d documents from %s to %s",
            account_id,
            len(projects),
            source,
            target,
        )

    async def drop(self, account_id: str, region: str) -> None:
        """Route the account's projects to where they were copied and delete them in
        ``region`` (after copying again what changed there since)."""
        for project_id in await self.projects_of(account_id):
            target = await self._copy_of(project_id, region)
            if target is None:
                if await self._holds(region, project_id):
                    log.warning(
                        "project %s of account %s has no copy outside %s; kept",
                        project_id,
                        account_id,
                        region,
                    )
                continue
            if not await self._holds(region, project_id):
                # dropped here already (a resumed clean step): the copy is the document
                self.store.relocate(project_id, target)
                continue
            held = self.hold(project_id) if self.hold is not None else contextlib.nullcontext()
            async with held:
                await self._copy_exactly(project_id, region, target)
                self.store.relocate(project_id, target)
                async with self.databases[region].transaction() as tx:
                    for table in COLLAB_TABLES:
                        await tx.execute(f"DELETE FROM {table} WHERE project_id = ?",
                                         project_id)
            log.info("project %s now lives in %s only", project_id, target)

    # -- helpers ----------------------------------------------------------------------

    async def _holds(self, region: str, project_id: str) -> bool:
        return bool(
            await self.databases[region].fetchval(
                "SELECT 1 FROM collab_projects WHERE project_id = ?", project_id
            )
        )

    async def _copy_of(self, project_id: str, region: str) -> str | None:
        """The region other than ``region`` that holds ``project_id``, if one does."""
        for other in self.databases:
            if other != region and await self._holds(other, project_id):
                return other
        return None

    async def _rows(self, region: str, table: str, project_id: str) -> list[dict[str, Any]]:
        return await self.databases[region].fetch(
            f"SELECT * FROM {table} WHERE project_id = ?", project_id
        )

    async def _copy_exactly(self, project_id: str, source: str, target: str) -> None:
        """Make ``target``'s rows of ``project_id`` those of ``source``, table by table.

        Raises :class:`DocumentNotInSource` if ``source`` holds no such project: an
        absent original must never empty the target's copy."""
        if not await self._holds(source, project_id):
            raise DocumentNotInSource(
                f"project {project_id!r} has no document in region {source!r}; "
                f"nothing copied to {target!r}"
            )
        for table in COLLAB_TABLES:
            for _ in range(3):
                rows = await self._rows(source, table, project_id)
                if same_rows(rows, await self._rows(target, table, project_id)):
                    break
                async with self.databases[target].transaction() as tx:
                    await tx.execute(f"DELETE FROM {table} WHERE project_id = ?", project_id)
                    if rows:
                        columns = list(rows[0])
                        await tx.executemany(
                            f"INSERT INTO {table} ({', '.join(columns)}) "
                            f"VALUES ({', '.join('?' * len(columns))})",
                            [tuple(row[c] for c in columns) for row in rows],
                        )
            else:
                raise DocumentsChanging(
                    f"the document of project {project_id!r} ({table}) kept changing while "
                    f"it was copied to region {target!r}; run the move again"
                )


def same_rows(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> bool:
    """Whether ``a`` and ``b`` hold the same rows in any order (bytes compared exactly)."""

    def key(row: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
        return tuple(
            sorted(
                (name, bytes(value) if isinstance(value, memoryview) else value)
                for name, value in row.items()
            )
        )

    return sorted(map(key, a), key=repr) == sorted(map(key, b), key=repr)
