"""Test mode: the objects made with test-mode API keys, a per-account sandbox.

A key made with ``test: true`` (``mbk_test_...``) reaches only objects made with a
test-mode key; a live key (``mbk_live_...``) never reaches them. Either way the other
mode's objects answer 404, exactly like missing ones, and are left out of lists.
Sessions and project tokens are not keys: they see both (the owner's own view).
Table ``api_sandbox`` (migration ``public_api/4``), one row per sandbox object under
the account that owns it.

An object's mode is fixed when it is made (its row is written before anyone holds a
role on it), so what :meth:`Sandbox.sandboxed` found is kept in a bounded cache.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from database import Database, Session

#: How many objects' modes are kept in memory per process.
CACHE_SIZE = 10_000
#: Ids asked in one query (SQLite and asyncpg take at most 32,766 and 32,767 parameters).
MARKS_PER_QUERY = 1_000


class Sandbox:
    """Which objects are sandbox objects; reads cached (an object's mode never changes)."""

    def __init__(self, db: Database, *, cache_size: int = CACHE_SIZE) -> None:
        self.db, self.cache_size = db, cache_size
        self._known: OrderedDict[str, bool] = OrderedDict()

    async def add(self, account_id: str, object_id: str, kind: str, *,
                  tx: Session | None = None) -> None:
        """Mark ``object_id`` (of ``account_id``, a ``kind``) as a sandbox object."""
        await (tx or self.db).execute(
            "INSERT INTO api_sandbox (account_id, object_id, kind, created_at) VALUES "
            "(?, ?, ?, ?) ON CONFLICT DO NOTHING", account_id, object_id, kind, time.time())
        self._remember(object_id, True)

    async def add_object(self, account_id: str, plugin: str, object_id: str, *,
                         tx: Session | None = None) -> None:
        """Mark plug-in ``plugin``'s object ``object_id`` of ``account_id`` a sandbox one."""
        await self.add(account_id, f"{plugin}:{object_id}", plugin, tx=tx)

    async def marks(self, account_id: str, plugin: str) -> frozenset[str]:
        """The ids of ``account_id``'s sandbox objects of plug-in ``plugin``."""
        rows = await self.db.fetch("SELECT object_id FROM api_sandbox WHERE account_id = ? "
                                   "AND kind = ?", account_id, plugin)
        return frozenset(r["object_id"].removeprefix(f"{plugin}:") for r in rows)

    async def marked(self, account_id: str, object_ids: Iterable[str], *,
                     tx: Any = None) -> set[str]:
        """Those of ``object_ids`` marked sandbox objects under ``account_id`` (a query per
        :data:`MARKS_PER_QUERY`;
        by account, as a plug-in's ids are only unique within it; in ``tx`` if given)."""
        return await self._present(list(dict.fromkeys(object_ids)), account_id, tx=tx)

    async def _present(self, ids: list[str], account_id: str | None = None, *,
                       tx: Any = None) -> set[str]:
        """Those of ``ids`` in the table (of ``account_id`` if given), a query per
        :data:`MARKS_PER_QUERY` of them."""
        where, first = (("account_id = ? AND ", [account_id]) if account_id is not None
                        else ("", []))
        found: set[str] = set()
        for at in range(0, len(ids), MARKS_PER_QUERY):
            part = ids[at:at + MARKS_PER_QUERY]
            marks = ", ".join("?" * len(part))
            rows = await (tx or self.db).fetch(
                f"SELECT object_id FROM api_sandbox WHERE {where}"  # noqa: S608
                f"object_id IN ({marks})", *first, *part)
            found.update(r["object_id"] for r in rows)
        return found

    async def made(self, principal: Any, account_id: str, project_id: str) -> None:
        """Mark a project ``principal`` just made a sandbox one if it is a test-mode key
        (call it before anyone holds a role on the project)."""
        if getattr(principal, "via", "") == "key" and principal.test:
            await self.add(account_id, project_id, "project")

    async def sandboxed(self, object_ids: Iterable[str]) -> set[str]:
        """Those of ``object_ids`` that are sandbox objects (a query per
        :data:`MARKS_PER_QUERY` unknown ones)."""
        ids = list(dict.fromkeys(object_ids))
        unknown = [i for i in ids if i not in self._known]
        marked = {i for i in ids if self._known.get(i)}
        found = await self._present(unknown)
        marked |= found  # not from the cache: more ids than it holds may be asked
        for object_id in unknown:
            self._remember(object_id, object_id in found)
        return marked

    async def visible(self, principal: Any, object_id: str) -> bool:
        """Whether ``principal`` may reach ``object_id`` in its mode (keys only)."""
        if getattr(principal, "via", "") != "key":
            return True
        return (object_id in await self.sandboxed([object_id])) == bool(principal.test)

    async def filter(self, principal: Any, object_ids: Iterable[str]) -> list[str]:
        """Those of ``object_ids`` ``principal`` may reach in its mode."""
        ids = list(object_ids)
        if getattr(principal, "via", "") != "key":
            return ids
        sandbox = await self.sandboxed(ids)
        return [i for i in ids if (i in sandbox) == bool(principal.test)]

    async def forget(self, account_id: str, object_id: str) -> None:
        """Drop the mark of a deleted object (a no-op for a live one)."""
        await self.db.execute("DELETE FROM api_sandbox WHERE account_id = ? AND "
                              "object_id = ?", account_id, object_id)
        self._known.pop(object_id, None)

    async def forget_account(self, account_id: str) -> None:
        """Delete the account's sandbox marks (an erased person)."""
        await self.db.execute("DELETE FROM api_sandbox WHERE account_id = ?", account_id)

    def _remember(self, object_id: str, sandboxed: bool) -> None:
        self._known[object_id] = sandboxed
        self._known.move_to_end(object_id)
        while len(self._known) > self.cache_size:
            self._known.popitem(last=False)
