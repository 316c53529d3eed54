"""Royalty persistence: splits with audit history, payees, statements and the ledger.

``db`` is the server's database object (``execute``/``fetch``/``transaction`` with
``?`` placeholders), handed over by the plug-in context.

Every write of an account's royalties (a split, a join, a statement import) first
takes that account's row in ``dist_royalty_locks``, so concurrent imports can never
both spend the same recoupment (PostgreSQL row lock; SQLite's write lock already
serialises). Payee changes (added, renamed, joined with the held money released)
and held money allocated when a track's split is set are logged in ``dist_audit``;
split revisions in ``dist_split_history``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import uuid
from decimal import Decimal
from typing import Any

from business.distribution.errors import NotFoundError, SplitError
from business.distribution.identifiers import IdentifierError, normalize_isrc
from business.distribution.splits import Payee, Split, split_from_dict
from business.distribution.statements import (
    REVERSAL,
    UNALLOCATED,
    HeldAmount,
    LedgerEntry,
    allocate_held,
    allocate_statement,
    legacy_statement_fingerprint,
    parse_statement,
    statement_fingerprint,
)

#: Ledger kinds of the money held for ``unallocated`` (and taken back from it).
_UNALLOCATED_KINDS = f"kind IN ('{UNALLOCATED}', '{REVERSAL}')"


def _isrc(value: str) -> str:
    try:
        return normalize_isrc(value)
    except IdentifierError as exc:
        raise SplitError(str(exc)) from exc


class Royalties:
    """Splits, payees and the ledger of one database."""

    def __init__(self, db: Any) -> None:
        self.db = db

    @staticmethod
    async def _lock(tx: Any, account_id: str) -> None:
        """Hold the account's royalty lock until ``tx`` ends."""
        await tx.execute(
            "INSERT INTO dist_royalty_locks (account_id, version) VALUES (?, 0) "
            "ON CONFLICT (account_id) DO NOTHING", account_id)
        await tx.execute(
            "UPDATE dist_royalty_locks SET version = version + 1 WHERE account_id = ?",
            account_id)

    @staticmethod
    async def _audit(tx: Any, account_id: str, changed_by: str, subject: str, event: str,
                     detail: dict[str, Any], at: float) -> None:
        seq = await tx.fetchval(
            "SELECT COALESCE(MAX(seq), 0) + 1 FROM dist_audit WHERE account_id = ?", account_id)
        await tx.execute(
            "INSERT INTO dist_audit (account_id, seq, at, changed_by, subject, event, detail) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)", account_id, int(seq), at, changed_by, subject,
            event, json.dumps(detail))

    async def _upsert_payee(self, tx: Any, account_id: str, payee: Payee, changed_by: str,
                            now: float) -> None:
        """Add a payee, or take a later split's name and join (a joined payee stays joined)."""
        subject = f"payee:{payee.payee_id}"
        row = await tx.fetchrow(
            "SELECT name, joined FROM dist_payees WHERE account_id = ? AND payee_id = ?",
            account_id, payee.payee_id)
        if row is None:
            await tx.execute(
                "INSERT INTO dist_payees (account_id, payee_id, name, joined, joined_at) "
                "VALUES (?, ?, ?, ?, ?)", account_id, payee.payee_id, payee.name,
                int(payee.joined), now if payee.joined else None)
            await self._audit(tx, account_id, changed_by, subject, "payee.added",
                              {"name": payee.name, "joined": payee.joined}, now)
            return
        if payee.name and payee.name != row["name"]:
            await tx.execute(
                "UPDATE dist_payees SET name = ? WHERE account_id = ? AND payee_id = ?",
                payee.name, account_id, payee.payee_id)
            await self._audit(tx, account_id, changed_by, subject, "payee.renamed",
                              {"from": row["name"], "to": payee.name}, now)
        if payee.joined and not row["joined"]:
            await self._join(tx, account_id, payee.payee_id, changed_by, now)

    async def _join(self, tx: Any, account_id: str, payee_id: str, changed_by: str,
                    now: float) -> int:
        """Mark a payee joined and release their held entries; how many.

        Audited as ``payee.joined`` when something changed; joining a payee who
        had already joined and had nothing held writes no audit entry.
        """
        joined_now = await tx.execute(
            "UPDATE dist_payees SET joined = 1, joined_at = ? WHERE account_id = ? AND "
            "payee_id = ? AND joined = 0", now, account_id, payee_id)
        held = await tx.fetch(
            "SELECT currency, SUM(amount_cents) AS units, COUNT(*) AS entries FROM dist_ledger "
            "WHERE account_id = ? AND payee_id = ? AND status = 'held' GROUP BY currency "
            "ORDER BY currency", account_id, payee_id)
        released = await tx.execute(
            "UPDATE dist_ledger SET status = 'available' WHERE account_id = ? AND "
            "payee_id = ? AND status = 'held'", account_id, payee_id)
        if joined_now or released:
            await self._audit(tx, account_id, changed_by, f"payee:{payee_id}", "payee.joined", {
                "released_entries": released,
                "released": {r["currency"]: int(r["units"]) for r in held}}, now)
        return released

    async def set_split(self, account_id: str, isrc: str, raw: dict[str, Any],
                        changed_by: str = "") -> Split:
        """Validate and store the split of a track, recording the change in its history.

        New payees are added (joined unless the split says ``joined: false``); a known
        payee takes the split's name (when given) and keeps their state unless the split
        says ``joined: true``: then they join now and are paid what was held for them.
        Money of this track held for ``unallocated`` (imported before it had a split)
        is then allocated by the new split (see :meth:`_allocate_unallocated`).
        """
        isrc = _isrc(isrc)
        raw = {**raw, "isrc": isrc, "recouped_cents": 0}
        split_from_dict(raw)  # refuse a bad split before taking the lock
        now = time.time()
        async with self.db.transaction() as tx:
            await self._lock(tx, account_id)
            known = {r["payee_id"]: bool(r["joined"]) for r in await tx.fetch(
                "SELECT payee_id, joined FROM dist_payees WHERE account_id = ?", account_id)}
            split = split_from_dict(raw, known)
            old = await tx.fetchrow(
                "SELECT revision, recouped_cents FROM dist_splits WHERE account_id = ? AND "
                "isrc = ?", account_id, isrc)
            revision = (old["revision"] + 1) if old else 1
            split.recouped_cents = old["recouped_cents"] if old else 0
            for payee in split.payees:
                await self._upsert_payee(tx, account_id, payee, changed_by, now)
            data = json.dumps(split.to_dict())
            if old:
                await tx.execute(
                    "UPDATE dist_splits SET data = ?, revision = ?, updated_at = ? "
                    "WHERE account_id = ? AND isrc = ?", data, revision, now, account_id, isrc)
            else:
                await tx.execute(
                    "INSERT INTO dist_splits (account_id, isrc, data, revision, recouped_cents, "
                    "updated_at) VALUES (?, ?, ?, ?, 0, ?)", account_id, isrc, data, revision,
                    now)
            await tx.execute(
                "INSERT INTO dist_split_history (account_id, isrc, revision, changed_at, "
                "changed_by, data) VALUES (?, ?, ?, ?, ?, ?)",
                account_id, isrc, revision, now, changed_by, data)
            await self._allocate_unallocated(tx, account_id, isrc, revision, changed_by, now)
        return split

    async def _allocate_unallocated(self, tx: Any, account_id: str, isrc: str, revision: int,
                                    changed_by: str, now: float) -> dict[str, int]:
        """Move the track's money held for ``unallocated`` to its split's payees; cents moved.

        Each statement's net held amount (per currency, in import order) is split as
        that import would have split it: recoupment first, largest remainder, held for
        payees who have not joined. A reversing ``unallocated`` entry in the same
        statement brings the held amount to zero, so a second call finds nothing and
        every statement still reconciles. Runs under the caller's royalty lock.
        """
        rows = await tx.fetch(
            "SELECT l.statement_id, l.currency, SUM(l.amount_cents) AS cents, "
            "MIN(s.imported_at) AS imported_at FROM dist_ledger l JOIN dist_statements s "
            "ON s.account_id = l.account_id AND s.statement_id = l.statement_id "
            f"WHERE l.account_id = ? AND l.payee_id = ? AND l.isrc = ? AND l.{_UNALLOCATED_KINDS} "
            "GROUP BY l.statement_id, l.currency HAVING SUM(l.amount_cents) <> 0 "
            "ORDER BY imported_at, l.statement_id, l.currency", account_id, UNALLOCATED, isrc)
        if not rows:
            return {}
        split = (await self._splits(tx, account_id, [isrc]))[isrc]
        held = [HeldAmount(r["statement_id"], r["currency"], int(r["cents"])) for r in rows]
        result = await asyncio.to_thread(allocate_held, held, split)
        await _insert_entries(tx, account_id, result.entries, now)
        if result.recouped:
            await tx.execute(
                "UPDATE dist_splits SET recouped_cents = recouped_cents + ? "
                "WHERE account_id = ? AND isrc = ?", result.recouped, account_id, isrc)
        payees: dict[str, dict[str, int]] = {}
        for _, entry in result.entries:
            if entry.kind != REVERSAL:
                per = payees.setdefault(entry.payee_id, {})
                per[entry.currency] = per.get(entry.currency, 0) + entry.cents
        allocated = result.allocated()
        await self._audit(tx, account_id, changed_by, f"split:{isrc}", "unallocated.allocated", {
            "revision": revision, "allocated": allocated,
            "statements": len({r["statement_id"] for r in rows}),
            "entries": len(result.entries), "recouped": result.recouped,
            "payees": payees}, now)
        return allocated

    async def unallocated(self, account_id: str, isrc: str | None = None
                          ) -> list[dict[str, Any]]:
        """Money still held for ``unallocated``: cents and statements per ISRC and currency."""
        where, args = ("AND isrc = ?", (_isrc(isrc),)) if isrc else ("", ())
        rows = await self.db.fetch(
            "SELECT isrc, currency, statement_id, SUM(amount_cents) AS cents FROM dist_ledger "
            f"WHERE account_id = ? AND payee_id = ? AND {_UNALLOCATED_KINDS} {where} "
            "GROUP BY isrc, currency, statement_id HAVING SUM(amount_cents) <> 0 "
            "ORDER BY isrc, currency, statement_id", account_id, UNALLOCATED, *args)
        out: dict[tuple[str, str], dict[str, Any]] = {}
        for row in rows:
            item = out.setdefault((row["isrc"], row["currency"]), {
                "isrc": row["isrc"], "currency": row["currency"], "cents": 0,
                "statements": 0})
            item["cents"] += int(row["cents"])
            item["statements"] += 1
        return list(out.values())

    async def _splits(self, session: Any, account_id: str,
                      isrcs: list[str] | None = None) -> dict[str, Split]:
        rows = await session.fetch(
            "SELECT isrc, data, recouped_cents FROM dist_splits WHERE account_id = ?",
            account_id)
        joined = {r["payee_id"]: bool(r["joined"]) for r in await session.fetch(
            "SELECT payee_id, joined FROM dist_payees WHERE account_id = ?", account_id)}
        out = {}
        for row in rows:
            if isrcs is not None and row["isrc"] not in isrcs:
                continue
            data = json.loads(row["data"])
            payees = [Payee(p["payee_id"], Decimal(p["share"]), p.get("name", ""),
                            joined.get(p["payee_id"], bool(p.get("joined", True))))
                      for p in data["payees"]]
            out[row["isrc"]] = Split(row["isrc"], payees, data["recoup_cents"],
                                     data["recoup_payee"], data["recoup_currency"],
                                     row["recouped_cents"])
        return out

    async def get_split(self, account_id: str, isrc: str) -> Split:
        """The current split of a track; NotFoundError when none was set."""
        split = (await self._splits(self.db, account_id, [_isrc(isrc)])).get(_isrc(isrc))
        if split is None:
            raise NotFoundError(f"track {isrc} has no split yet; set one first")
        return split

    async def history(self, account_id: str, isrc: str) -> list[dict[str, Any]]:
        """Every revision of a track's split, oldest first."""
        rows = await self.db.fetch(
            "SELECT revision, changed_at, changed_by, data FROM dist_split_history "
            "WHERE account_id = ? AND isrc = ? ORDER BY revision", account_id, _isrc(isrc))
        return [{**r, "data": json.loads(r["data"])} for r in rows]

    async def join_payee(self, account_id: str, payee_id: str, changed_by: str = "") -> int:
        """Mark a payee as joined and release their held entries; how many were released.

        Joining again changes nothing and is not audited (0 released).
        """
        now = time.time()
        async with self.db.transaction() as tx:
            await self._lock(tx, account_id)
            row = await tx.fetchrow(
                "SELECT joined FROM dist_payees WHERE account_id = ? AND payee_id = ?",
                account_id, payee_id)
            if row is None:
                raise NotFoundError(f"payee {payee_id!r} is not in any split of this account")
            return await self._join(tx, account_id, payee_id, changed_by, now)

    async def audit(self, account_id: str, subject: str | None = None
                    ) -> list[dict[str, Any]]:
        """Payee events of the account (or of one subject, e.g. ``payee:ada``), oldest first."""
        where, args = ("AND subject = ?", (subject,)) if subject else ("", ())
        rows = await self.db.fetch(
            f"SELECT seq, at, changed_by, subject, event, detail FROM dist_audit "
            f"WHERE account_id = ? {where} ORDER BY seq", account_id, *args)
        return [{**r, "detail": json.loads(r["detail"])} for r in rows]

    async def import_statement(self, account_id: str, text: str, source: str = ""
                               ) -> dict[str, Any]:
        """Import a statement CSV once: the same statement again (its rows, however the CSV
        writes them: :func:`statement_fingerprint`) returns the first import.

        Imports made before are found too: by the fingerprint of the six standard
        columns (before extra columns counted) and by the CSV's bytes (before
        fingerprints). ``source`` is a label only: it does not tell statements apart.
        """
        lines = await asyncio.to_thread(parse_statement, text)
        checksum = statement_fingerprint(lines)
        legacy = legacy_statement_fingerprint(lines)  # imports before extra columns counted
        as_written = hashlib.sha256(text.encode()).hexdigest()  # imports before fingerprints
        now = time.time()
        async with self.db.transaction() as tx:
            await self._lock(tx, account_id)
            existing = await tx.fetchrow(
                "SELECT statement_id, totals FROM dist_statements WHERE account_id = ? AND "
                "checksum IN (?, ?, ?)", account_id, checksum, legacy, as_written)
            if existing:
                return {"statement_id": existing["statement_id"], "duplicate": True,
                        "totals": json.loads(existing["totals"])}
            splits = await self._splits(tx, account_id)
            allocation = await asyncio.to_thread(allocate_statement, lines, splits)
            statement_id = uuid.uuid4().hex
            await tx.execute(
                "INSERT INTO dist_statements (account_id, statement_id, checksum, source, "
                "imported_at, line_count, totals) VALUES (?, ?, ?, ?, ?, ?, ?)",
                account_id, statement_id, checksum, source, now, len(lines),
                json.dumps(allocation.totals))
            await _insert_entries(tx, account_id,
                                  [(statement_id, e) for e in allocation.entries], now)
            for isrc, cents in allocation.recouped.items():
                await tx.execute(
                    "UPDATE dist_splits SET recouped_cents = recouped_cents + ? "
                    "WHERE account_id = ? AND isrc = ?", cents, account_id, isrc)
        return {"statement_id": statement_id, "duplicate": False, "lines": len(lines),
                "entries": len(allocation.entries), "totals": allocation.totals}

    async def reconcile(self, account_id: str, statement_id: str) -> dict[str, dict[str, int]]:
        """Statement totals against ledger sums per currency, in cents."""
        row = await self.db.fetchrow(
            "SELECT totals FROM dist_statements WHERE account_id = ? AND statement_id = ?",
            account_id, statement_id)
        if row is None:
            raise NotFoundError(f"statement {statement_id!r} was not imported for this account")
        sums = await self.db.fetch(
            "SELECT currency, SUM(amount_cents) AS cents FROM dist_ledger WHERE account_id = ? "
            "AND statement_id = ? GROUP BY currency", account_id, statement_id)
        ledger = {r["currency"]: int(r["cents"]) for r in sums}
        return {c: {"statement": t, "ledger": ledger.get(c, 0)}
                for c, t in json.loads(row["totals"]).items()}

    async def statements(self, account_id: str, statement_id: str | None = None
                         ) -> list[dict[str, Any]]:
        """The account's imported statements (or the one ``statement_id``), oldest first."""
        where, args = ("AND statement_id = ? ", [statement_id]) if statement_id else ("", [])
        rows = await self.db.fetch(
            "SELECT statement_id, source, imported_at, line_count, totals FROM dist_statements "
            f"WHERE account_id = ? {where}ORDER BY imported_at, statement_id",
            account_id, *args)
        return [{**r, "totals": json.loads(r["totals"])} for r in rows]

    async def balances(self, account_id: str) -> list[dict[str, Any]]:
        """Cents per payee, currency and status (available or held)."""
        rows = await self.db.fetch(
            "SELECT payee_id, currency, status, SUM(amount_cents) AS cents FROM dist_ledger "
            "WHERE account_id = ? GROUP BY payee_id, currency, status "
            "ORDER BY payee_id, currency, status", account_id)
        return [{**r, "cents": int(r["cents"])} for r in rows]


async def _insert_entries(tx: Any, account_id: str, entries: list[tuple[str, LedgerEntry]],
                          now: float) -> None:
    """Write ledger ``entries`` (pairs of statement id and entry) of ``account_id``."""
    await tx.executemany(
        "INSERT INTO dist_ledger (account_id, entry_id, statement_id, isrc, payee_id, "
        "currency, amount_cents, kind, status, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(account_id, uuid.uuid4().hex, statement_id, e.isrc, e.payee_id, e.currency,
          e.cents, e.kind, "held" if e.held else "available", now)
         for statement_id, e in entries])
