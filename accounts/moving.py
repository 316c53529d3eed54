"""Moving an account to another data region, resumable after a crash at any step.

:class:`AccountMover` moves an account's rows between the regions' databases of a
:class:`~accounts.regions.RegionalAccountStore`. A move is a row of ``account_moves``
in the main database (``accounts/move_migrations``) recording its step and what is
done, so :meth:`AccountMover.run` picks it up where a crash left it:

1. **begin** -- the row is written: from now on every write keyed by the account is
   refused with :class:`~accounts.errors.AccountMoving` (HTTP 409 with
   ``Retry-After``). :meth:`AccountMover.run` first fences the account in the source's
   own database (``account_fences``, under the account's advisory lock on PostgreSQL),
   which every such write reads inside its transaction (:func:`refuse_if_fenced`), so
   a write either commits before the copy or is refused; then it waits ``settle_s``
   for the writes that take no fence.
2. **copying** -- each table of the source region's database that also exists in the
   target's and names the account (its distribution key ``account_id``, else
   ``person_id`` or ``owner_id``; ``project_grants`` by the account's projects) is
   copied in one target transaction per table (the target's rows of the account are
   deleted first, so a copy repeated after a crash is exact); then each
   :class:`MoveHook` (plug-ins' rows elsewhere, stored files; the server registers
   ``dawserver.document_moves`` and ``dawserver.file_moves``) copies its part. Every
   table is then compared row for row and copied again if it differs.
3. **switch** -- one transaction on the main database records the account's new region
   (``account_regions``: its id still names the old one) and the step ``switched``;
   the store routes the account to the target from then on.
4. **clean** -- after ``propagate_s`` (longer than every server's :data:`REFRESH_S`,
   so each one routes the account to the target by then) the source's rows and the
   hooks' old copies are deleted, table by table, and the move's row with them: writes
   are accepted again.

One runner at a time carries a move: :meth:`AccountMover.run` claims the move's row
by a conditional UPDATE (a lease of :data:`LEASE_S`, renewed at every step and every
:data:`RENEW_S` while a hook works, given up when it stops; a crashed runner's lapses)
and records each step only while it holds it.

Every process learns of moves from the main database: its fence (awaited before each
write keyed by an account) reads both the move under way and where the account lives
now, so a write is refused during a move and routed to the new region after it, in
every process at once; reads follow :meth:`AccountMover.load`, which a server calls
every :data:`REFRESH_S` (:meth:`AccountMover.refresh`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from database import POSTGRESQL, Database, Session, load_migrations

from .errors import AccountMoving, Conflict, NotFound
from .models import DEFAULT_REGION
from .regions import RegionalAccountStore, RegionalSessions, region_of

log = logging.getLogger(__name__)

#: The moves' tables, in the main database.
MIGRATIONS = load_migrations("account_moves", Path(__file__).with_name("move_migrations"))
#: The columns that name an account, by preference.
OWNER_COLUMNS = ("account_id", "person_id", "owner_id")
#: Tables never moved: the moves' own, and counters keyed by a network address.
NOT_MOVED = frozenset({"account_moves", "account_regions", "account_fences",
                       "schema_migrations"})
#: Tables whose rows of an account are found by a query of their own (``?``: the id).
BY_QUERY = {
    "project_grants": "project_id IN (SELECT project_id FROM account_projects "
                      "WHERE account_id = ?)",
    # a person's failure counters: by their id and by each of their addresses
    "sign_in_failures": "lookup_key = 'account:' || ? OR lookup_key IN (SELECT 'email:' || "
                        "lookup_key FROM account_emails WHERE person_id = ?)",
}
COPYING, SWITCHED = "copying", "switched"
#: The PostgreSQL advisory lock class of an account's fence (the key: its id's hash).
FENCE_LOCK = 711003
#: Seconds a refused writer is told to wait.
RETRY_AFTER_S = 30.0
#: Seconds between a server's reloads of where moved accounts live.
REFRESH_S = 2.0
#: Seconds a runner holds a move without recording a step.
LEASE_S = 300.0
#: Seconds between renewals of the lease while a hook copies or drops (a long copy of
#: files records no step).
RENEW_S = LEASE_S / 3

Progress = Callable[[float, str], None]


class MoveHook(Protocol):
    """A part of an account kept outside the region databases' shared tables (a plug-in's
    rows, stored files): copied before the switch, the old copy dropped after it."""

    name: str

    async def check(self, account_id: str, source: str, target: str) -> None:
        """Raise :class:`Conflict` if the account's part cannot move from ``source`` to
        ``target``: asked before the move begins, so nothing is fenced for a move that
        could never end."""

    async def copy(self, account_id: str, source: str, target: str) -> None:
        """Copy the account's part from ``source`` to ``target`` (repeatable)."""

    async def drop(self, account_id: str, region: str) -> None:
        """Delete the account's part in ``region`` (repeatable)."""


@dataclass(frozen=True)
class Move:
    """One move under way, as stored."""

    account_id: str
    source: str
    target: str
    step: str
    tables: tuple[str, ...]
    copied: tuple[str, ...]
    dropped: tuple[str, ...]
    started_at: float

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Move:
        return cls(row["account_id"], row["source"], row["target"], row["step"],
                   tuple(json.loads(row["tables"])), tuple(json.loads(row["copied"])),
                   tuple(json.loads(row["dropped"])), row["started_at"])


class AccountMover:
    """Moves accounts between the regions of ``store`` (see the module)."""

    def __init__(self, store: RegionalAccountStore, databases: Mapping[str, Database], *,
                 sessions: RegionalSessions | None = None, hooks: Sequence[MoveHook] = (),
                 settle_s: float = 1.0, propagate_s: float = 2.5 * REFRESH_S,
                 clock: Callable[[], float] = time.time) -> None:
        if set(databases) != set(store.regions):
            raise ValueError(f"the databases {sorted(databases)} must be the store's "
                             f"regions {sorted(store.regions)}")
        self.store = store
        self.databases = dict(databases)
        self.main = databases[DEFAULT_REGION]
        self.hooks = list(hooks)
        self.settle_s = settle_s
        self.propagate_s = propagate_s
        self._clock = clock
        #: table → the column naming the account (read from the source database)
        self._owners: dict[str, str] = {}
        if sessions is not None:
            sessions.moved = store.moved
        store.fence = self.refuse_if_moving
        store.fence_in = refuse_if_fenced

    async def setup(self) -> None:
        """Create the moves' tables in the main database and load the moved accounts."""
        await self.main.migrate(MIGRATIONS)
        await self.load()

    async def load(self) -> None:
        """Read where moved accounts live now (at start, and to see other processes')."""
        rows = await self.main.fetch("SELECT account_id, region FROM account_regions")
        self.store.moved.clear()
        self.store.moved.update({r["account_id"]: r["region"] for r in rows
                                 if r["region"] in self.databases})

    async def refresh(self, every_s: float = REFRESH_S) -> None:
        """:meth:`load` every ``every_s`` seconds, for ever (a server's task)."""
        while True:
            await asyncio.sleep(every_s)
            try:
                await self.load()
            except Exception:  # the database away a moment: try again next time
                log.exception("could not reload the moved accounts")

    async def move_of(self, account_id: str) -> Move | None:
        """The move of ``account_id`` under way (None: none)."""
        row = await self.main.fetchrow("SELECT * FROM account_moves WHERE account_id = ?",
                                       account_id)
        return None if row is None else Move.from_row(row)

    async def refuse_if_moving(self, account_id: str) -> None:
        """:class:`AccountMoving` if ``account_id`` is being moved (the store's fence);
        else learn where it lives now (a move another process made)."""
        row = await self.main.fetchrow(
            "SELECT (SELECT COUNT(*) FROM account_moves WHERE account_id = ?) AS moving, "
            "(SELECT region FROM account_regions WHERE account_id = ?) AS region",
            account_id, account_id)
        region = row["region"] if row is not None else None
        if region in self.databases:
            self.store.moved[account_id] = region
        else:
            self.store.moved.pop(account_id, None)
        if row is not None and row["moving"]:
            raise _moving(account_id)

    # -- the steps -------------------------------------------------------------------

    async def begin(self, account_id: str, target: str) -> Move:
        """Start moving ``account_id`` to ``target`` (the move under way, if the same)."""
        self.store.in_region(target)
        await self.store.require_account(account_id)
        found = await self.move_of(account_id)
        if found is not None:
            if found.target != target:
                raise Conflict(f"account {account_id!r} is already moving to region "
                               f"{found.target!r}")
            return found
        await self.load()  # where it lives now, if another process moved it
        source = self.store.region_of(account_id)
        if source == target:
            raise Conflict(f"account {account_id!r} is in region {target!r} already")
        for hook in self.hooks:  # before the fence: a move that cannot end never starts
            await hook.check(account_id, source, target)
        tables = await self._tables(source, target)
        now = self._clock()
        async with self.main.transaction() as tx:
            await tx.execute(
                "INSERT INTO account_moves (account_id, source, target, step, tables, copied, "
                "dropped, started_at, updated_at) VALUES (?, ?, ?, ?, ?, '[]', '[]', ?, ?) "
                "ON CONFLICT (account_id) DO NOTHING", account_id, source, target, COPYING,
                json.dumps(tables), now, now)
        move = await self.move_of(account_id)
        if move is None or move.target != target:
            raise Conflict(f"account {account_id!r} is already moving")
        log.info("moving account %s from %s to %s: %d tables", account_id, source, target,
                 len(tables))
        return move

    async def run(self, account_id: str, progress: Progress | None = None) -> Move:
        """Carry the move of ``account_id`` to its end from its recorded step."""
        move = await self.move_of(account_id)
        if move is None:
            raise NotFound(f"account {account_id!r} is not being moved")
        report = progress or (lambda fraction, note: None)
        runner = await self._claim(move)
        try:
            return await self._carry(move, runner, report)
        finally:  # stopped (done, failed, cancelled): another runner may go on at once
            await self.main.execute("UPDATE account_moves SET runner = NULL, lease_until = 0 "
                                    "WHERE account_id = ? AND runner = ?", account_id, runner)

    async def _claim(self, move: Move) -> str:
        """Hold ``move`` for a new runner (its id); :class:`Conflict` if another holds it."""
        runner, now = uuid.uuid4().hex, self._clock()
        claimed = await self.main.execute(
            "UPDATE account_moves SET runner = ?, lease_until = ? WHERE account_id = ? "
            "AND (runner IS NULL OR lease_until < ?)", runner, now + LEASE_S,
            move.account_id, now)
        if not claimed:
            raise Conflict(f"the move of account {move.account_id!r} is being carried by "
                           f"another runner (a server's accounts.move job or a "
                           f"'dawserver accounts move'); it is resumed when that stops")
        return runner

    async def _carry(self, move: Move, runner: str, report: Progress) -> Move:
        """The steps of ``move`` from its recorded one, held by ``runner``."""
        account_id = move.account_id
        await self._tables(move.source, move.target)
        parts = len(move.tables) + len(self.hooks)
        if move.step == COPYING:
            # after this, every write of the account to the source committed or is refused
            await self._fence(move)
            if not move.copied:  # writes that skip the fence (key use, failed sign-ins)
                await asyncio.sleep(self.settle_s)
            for table in move.tables:
                if table not in move.copied:
                    await self._copy(account_id, table, move.source, move.target)
                    move = await self._mark(move, runner, "copied", table)
                report(0.8 * len(move.copied) / max(1, parts * 2), f"copied {table}")
            for hook in self.hooks:
                key = f"hook:{hook.name}"
                if key not in move.copied:
                    async with self._renewing(move, runner):
                        await hook.copy(account_id, move.source, move.target)
                    move = await self._mark(move, runner, "copied", key)
            await self._verify(account_id, move)
            report(0.45, "verified")
            move = await self._switch(move, runner)
        if not move.dropped:  # every server routes the account to the target before
            await asyncio.sleep(self.propagate_s)  # its old rows go
        # tables found through another table (BY_QUERY) go first, while it still answers
        for table in sorted(move.tables, key=lambda t: t not in BY_QUERY):
            if table not in move.dropped:
                await self._delete(self.databases[move.source], account_id, table)
                move = await self._mark(move, runner, "dropped", table)
        for hook in self.hooks:
            key = f"hook:{hook.name}"
            if key not in move.dropped:
                async with self._renewing(move, runner):
                    await hook.drop(account_id, move.source)
                move = await self._mark(move, runner, "dropped", key)
        await self.main.execute("DELETE FROM account_moves WHERE account_id = ? AND runner = ?",
                                account_id, runner)
        report(1.0, f"moved to {move.target}")
        log.info("moved account %s from %s to %s", account_id, move.source, move.target)
        return move

    async def move(self, account_id: str, target: str,
                   progress: Progress | None = None) -> Move:
        """Move ``account_id`` to ``target`` now (:meth:`begin`, then :meth:`run`)."""
        await self.begin(account_id, target)
        return await self.run(account_id, progress)

    # -- helpers ----------------------------------------------------------------------

    async def _tables(self, source: str, target: str) -> list[str]:
        """The tables of ``source`` naming an account that ``target`` also has."""
        theirs, ours = (await self.databases[source].tables(),
                        await self.databases[target].tables())
        for table, columns in theirs.items():
            column = _owner_column(columns)
            if column is not None:
                self._owners[table] = column
        return sorted(table for table, columns in theirs.items()
                      if table in ours and table not in NOT_MOVED
                      and (_owner_column(columns) or table in BY_QUERY))

    async def _rows(self, db: Session, account_id: str, table: str) -> list[dict[str, Any]]:
        if table in BY_QUERY:
            where = BY_QUERY[table]
            return await db.fetch(f"SELECT * FROM {table} WHERE {where}",
                                  *[account_id] * where.count("?"))
        column = self._owners[table]
        return await db.fetch(f"SELECT * FROM {table} WHERE {column} = ?", account_id)

    async def _delete(self, db: Database | Session, account_id: str, table: str) -> None:
        if table in BY_QUERY:
            where = BY_QUERY[table]
            await db.execute(f"DELETE FROM {table} WHERE {where}",
                             *[account_id] * where.count("?"))
            return
        column = self._owners[table]
        await db.execute(f"DELETE FROM {table} WHERE {column} = ?", account_id)

    async def _copy(self, account_id: str, table: str, source: str, target: str) -> None:
        rows = await self._rows(self.databases[source], account_id, table)
        async with self.databases[target].transaction() as tx:
            if table in BY_QUERY:
                # the rows the query finds may not be copied yet: delete by primary key
                key = "project_id" if table == "project_grants" else "lookup_key"
                for value in {r[key] for r in rows}:
                    await tx.execute(f"DELETE FROM {table} WHERE {key} = ?", value)
            else:
                await self._delete(tx, account_id, table)
            if rows:
                columns = list(rows[0])
                await tx.executemany(
                    f"INSERT INTO {table} ({', '.join(columns)}) "
                    f"VALUES ({', '.join('?' * len(columns))})",
                    [tuple(r[c] for c in columns) for r in rows])

    async def _verify(self, account_id: str, move: Move) -> None:
        """Copy again each table whose rows differ (a write that slipped past the fence)."""
        for table in move.tables:
            for _ in range(3):
                source = await self._rows(self.databases[move.source], account_id, table)
                target = await self._rows(self.databases[move.target], account_id, table)
                if _same(source, target):
                    break
                log.warning("account %s: table %s changed while moving; copying it again",
                            account_id, table)
                await self._copy(account_id, table, move.source, move.target)
            else:
                raise Conflict(f"table {table!r} of account {account_id!r} keeps changing "
                               f"while it moves; run the move again")

    async def _fence(self, move: Move) -> None:
        """Fence the account in the source's database (repeatable): taken under the
        account's exclusive lock on PostgreSQL, so writes holding the shared one commit
        first and later ones find the row."""
        async with self.databases[move.source].transaction() as tx:
            if tx.dialect == POSTGRESQL:
                await tx.execute(f"SELECT pg_advisory_xact_lock({FENCE_LOCK}, hashtext(?))",
                                 move.account_id)
            await tx.execute("DELETE FROM account_fences WHERE account_id = ?",
                             move.account_id)
            await tx.execute("INSERT INTO account_fences (account_id, target, fenced_at) "
                             "VALUES (?, ?, ?)", move.account_id, move.target, self._clock())

    async def _switch(self, move: Move, runner: str) -> Move:
        """Point the account at the target, atomically with the move's step."""
        target_db = self.databases[move.target]
        # a fence left there when the account moved out before: its writes go there now
        await target_db.execute("DELETE FROM account_fences WHERE account_id = ?",
                                move.account_id)
        if "accounts" in move.tables:
            await target_db.execute("UPDATE accounts SET region = ? WHERE account_id = ?",
                                    move.target, move.account_id)
        named = region_of(move.account_id, self.databases)
        now = self._clock()
        async with self.main.transaction() as tx:
            await tx.execute("DELETE FROM account_regions WHERE account_id = ?",
                             move.account_id)
            if named != move.target:
                await tx.execute("INSERT INTO account_regions (account_id, region, moved_at) "
                                 "VALUES (?, ?, ?)", move.account_id, move.target, now)
            held = await tx.execute(
                "UPDATE account_moves SET step = ?, updated_at = ?, lease_until = ? "
                "WHERE account_id = ? AND runner = ?", SWITCHED, now, now + LEASE_S,
                move.account_id, runner)
            if not held:
                raise _lost(move)
        if named != move.target:
            self.store.moved[move.account_id] = move.target
        else:
            self.store.moved.pop(move.account_id, None)
        found = await self.move_of(move.account_id)
        assert found is not None
        return found

    @contextlib.asynccontextmanager
    async def _renewing(self, move: Move, runner: str) -> AsyncIterator[None]:
        """Renew ``runner``'s lease every :data:`RENEW_S` inside the block (a hook's
        copy may outlast :data:`LEASE_S`); if another runner took the move meanwhile,
        the block is cancelled and :class:`Conflict` raised."""
        work = asyncio.current_task()
        assert work is not None
        lost = False

        async def renew() -> None:
            nonlocal lost
            while True:
                await asyncio.sleep(RENEW_S)
                now = self._clock()
                try:
                    held = await self.main.execute(
                        "UPDATE account_moves SET lease_until = ? WHERE account_id = ? "
                        "AND runner = ?", now + LEASE_S, move.account_id, runner)
                except Exception:  # the database away a moment: try again next time
                    log.exception("could not renew the lease of the move of account %s",
                                  move.account_id)
                    continue
                if not held:
                    lost = True
                    work.cancel()
                    return

        renewer = asyncio.create_task(renew())
        try:
            yield
        except asyncio.CancelledError:
            if lost and work.uncancel() == 0:  # cancelled by the renewal alone
                raise _lost(move) from None
            raise
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer

    async def _mark(self, move: Move, runner: str, field: str, part: str) -> Move:
        """Record ``part`` done (in ``field``) and renew the lease, in one transaction
        that reads the stored list; :class:`Conflict` if ``runner`` lost the move."""
        async with self.main.transaction() as tx:
            row = await tx.fetchrow(f"SELECT {field} FROM account_moves WHERE account_id = ? "
                                    f"AND runner = ?", move.account_id, runner)
            if row is None:
                raise _lost(move)
            done = [*json.loads(row[field])]
            if part not in done:
                done.append(part)
            now = self._clock()
            await tx.execute(f"UPDATE account_moves SET {field} = ?, updated_at = ?, "
                             f"lease_until = ? WHERE account_id = ? AND runner = ?",
                             json.dumps(done), now, now + LEASE_S, move.account_id, runner)
        return Move(**{**move.__dict__, field: tuple(done)})


async def refuse_if_fenced(tx: Session, account_id: str) -> None:
    """:class:`AccountMoving` if ``tx``'s database fences ``account_id`` (the account
    moves, or moved, out of it); read under the account's shared lock on PostgreSQL."""
    if tx.dialect == POSTGRESQL:
        await tx.execute(f"SELECT pg_advisory_xact_lock_shared({FENCE_LOCK}, hashtext(?))",
                         account_id)
    if await tx.fetchval("SELECT 1 FROM account_fences WHERE account_id = ?", account_id):
        raise _moving(account_id)


def _moving(account_id: str) -> AccountMoving:
    return AccountMoving(f"account {account_id!r} is being moved to another data region; "
                         f"nothing was changed, try again shortly", RETRY_AFTER_S)


def _lost(move: Move) -> Conflict:
    return Conflict(f"the move of account {move.account_id!r} was taken over by another "
                    f"runner (this one held it past its lease); nothing more was done here")


def _owner_column(columns: Sequence[str]) -> str | None:
    return next((c for c in OWNER_COLUMNS if c in columns), None)


def _same(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> bool:
    def key(row: dict[str, Any]) -> str:
        return json.dumps(row, sort_keys=True, default=str)
    return sorted(map(key, a)) == sorted(map(key, b))
