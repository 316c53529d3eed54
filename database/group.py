"""Group commit: many small write transactions of one process share one commit (SQLite).

On SQLite every commit is an fsync (a few milliseconds) and the single writer runs one
transaction at a time, so a process that makes hundreds of small state changes a second
(the job queue's claims and completions, dispatch's state changes) spends its time
waiting for commits. :meth:`GroupCommit.run` queues a unit of work (``async def
work(tx) -> result``); one flusher task runs every unit queued meanwhile in **one**
transaction, each inside a savepoint of its own, and commits once:

- a unit that raises is rolled back to its savepoint (its statements undone, the
  others' kept) and its caller gets the exception, as from a transaction of its own;
- a caller gets its result only after the commit; a failed commit (or ``BEGIN``)
  fails every unit of that group;
- a unit whose caller was cancelled before the group started is skipped;
- no delay is added: a unit queued while nothing is flushing starts a flush at once,
  the units queued while one runs go together in the next.

A unit must use only the session it is given (never the database itself, which would
wait for the group's own transaction) and must not wait for another unit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from .errors import DatabaseError
from .session import Database, Session

T = TypeVar("T")
Work = Callable[[Session], Awaitable[Any]]
#: Most units one commit takes (the rest go in the next group).
MAX_UNITS = 256


class GroupCommit:
    """Runs units of work of one database in shared transactions (one flush at a time)."""

    def __init__(self, db: Database, *, max_units: int = MAX_UNITS,
                 shared: bool | None = None) -> None:
        self.db = db
        self.max_units = max_units
        #: Whether units share transactions: by default on SQLite only (one writer, an
        #: fsync per commit); PostgreSQL runs many transactions side by side and its WAL
        #: writer already flushes concurrent commits together, so there each unit runs
        #: in a transaction of its own, in parallel.
        self.shared = db.dialect == "sqlite" if shared is None else shared
        self._pending: list[tuple[Work, asyncio.Future]] = []
        self._flusher: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        #: Commits made and units run (for tests and figures).
        self.commits = 0
        self.units = 0

    async def run(self, work: Callable[[Session], Awaitable[T]]) -> T:
        """Run ``work(tx)`` in the next group's transaction; its result once committed."""
        if getattr(self.db, "_transaction_task", None) is asyncio.current_task():
            raise DatabaseError("a group commit inside this task's own transaction would "
                                "wait for itself; run the work on that transaction instead")
        if not self.shared:
            async with self.db.transaction() as tx:
                result = await work(tx)
            self.commits += 1
            self.units += 1
            return result
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a new event loop (tests): nothing of the old one lives
            self._loop, self._pending, self._flusher = loop, [], None
        future: asyncio.Future = loop.create_future()
        self._pending.append((work, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = loop.create_task(self._flush_all(), name="group-commit")
        return await future

    async def _flush_all(self) -> None:
        while self._pending:
            group = self._pending[:self.max_units]
            del self._pending[:self.max_units]
            group = [(work, future) for work, future in group if not future.cancelled()]
            if group:
                await self._flush(group)

    async def _flush(self, group: list[tuple[Work, asyncio.Future]]) -> None:
        outcomes: list[tuple[asyncio.Future, bool, Any]] = []
        try:
            async with self.db.transaction() as tx:
                if len(group) == 1:  # a lone unit: the transaction is its own
                    work, future = group[0]
                    outcomes.append((future, True, await work(tx)))
                else:
                    for n, (work, future) in enumerate(group):
                        outcomes.append((future, *await self._unit(tx, n, work)))
        except Exception as exc:  # BEGIN or COMMIT failed (or the lone unit raised)
            for _, future in group:
                if not future.done():
                    future.set_exception(exc)
            return
        except BaseException:  # the flusher is cancelled (the loop is closing)
            for _, future in group:
                future.cancel()
            raise
        self.commits += 1
        self.units += len(group)
        for future, ok, value in outcomes:
            if future.done():
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)

    @staticmethod
    async def _unit(tx: Session, n: int, work: Work) -> tuple[bool, Any]:
        """Run one unit under savepoint ``g<n>``: (True, result) or (False, exception)."""
        await tx.execute(f"SAVEPOINT g{n}")
        try:
            result = await work(tx)
        except Exception as exc:
            await tx.execute(f"ROLLBACK TO SAVEPOINT g{n}")
            await tx.execute(f"RELEASE SAVEPOINT g{n}")
            return False, exc
        await tx.execute(f"RELEASE SAVEPOINT g{n}")
        return True, result


def group_commit(db: Database) -> GroupCommit:
    """The one :class:`GroupCommit` of ``db`` (made on first use), shared by every caller
    in the process so that their writes share commits."""
    found = getattr(db, "_group_commit", None)
    if found is None:
        found = GroupCommit(db)
        db._group_commit = found  # noqa: SLF001 - the database's own companion object
    return found
