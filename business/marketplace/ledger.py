"""The marketplace's double-entry ledger: integer minor units per currency, balanced
postings, balances that never go below zero.

Each seller's books are kept under their ``account_id``. A :class:`Posting` is a set of
:class:`Entry` s (ledger account, currency, signed amount) that sum to zero in each
currency, or it is refused (:class:`UnbalancedPosting`): money moves from somewhere to
somewhere, and an account's balance is the sum of its entries. Accounts named
``external:...`` are the world outside (buyers, Stripe's fees, the bank) and go negative
as money comes in from them (they keep no running balance: theirs is the sum of
their entries, so they are no lock every posting waits on); every other account (``seller:balance``,
``platform:clearing``, ``platform:fees`` ...) is never taken below zero by a posting of
ours: it is refused with :class:`InsufficientFunds`, under any number of concurrent
postings. Only an *imposed* posting (a dispute Stripe has already debited) may take a
balance below zero, as it takes Stripe's; payouts are then refused until sales restore it.

How: a posting is one transaction that records the posting (its idempotency key
unique per account: posting the same key again returns the first posting), its entries,
and moves each touched balance row with a conditional ``UPDATE ... SET balance = balance
+ ? WHERE ... AND balance + ? >= 0``. On PostgreSQL the row lock that UPDATE takes
serialises concurrent postings to one balance and the condition is re-checked on the
newest row (READ COMMITTED's re-evaluation), rows are touched in one order so two
postings cannot deadlock; on SQLite the one writer's ``BEGIN IMMEDIATE`` transactions
run one at a time. Amounts are ``int`` only (a ``float`` or ``bool`` is refused);
:func:`format_amount` turns one into text through ``Decimal`` for display.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from business.marketplace.errors import InsufficientFunds, LedgerError, UnbalancedPosting
from dawserver.plugin_api import load_migrations

MIGRATIONS = load_migrations("marketplace", Path(__file__).with_name("migrations"))

#: Ledger account names: lower-case words separated by ``:``, ``_``, ``-`` or ``.``.
_NAME = re.compile(r"^[a-z][a-z0-9_.\-]*(:[a-z0-9_.\-]+)+$")
_CURRENCY = re.compile(r"^[a-z]{3}$")
#: Currencies whose minor unit is the unit itself (no decimals).
ZERO_DECIMAL = frozenset({"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg",
                          "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf"})
#: Largest amount one entry may carry (Stripe's own limit is 99 999 999).
MAX_AMOUNT = 10**15


def may_go_negative(ledger_account: str) -> bool:
    """Whether ``ledger_account`` is the world outside (``external:...``)."""
    return ledger_account.startswith("external:")


def format_amount(amount: int, currency: str) -> str:
    """``1234, "usd"`` -> ``"12.34 USD"`` (``Decimal``, never ``float``)."""
    exponent = 0 if currency.lower() in ZERO_DECIMAL else 2
    value = Decimal(amount).scaleb(-exponent)
    return f"{value:.{exponent}f} {currency.upper()}"


@dataclass(frozen=True)
class Entry:
    """One line of a posting: ``amount`` minor units into (positive) or out of (negative)
    ``account``."""

    account: str
    currency: str
    amount: int

    def __post_init__(self) -> None:
        if not _NAME.match(self.account):
            raise LedgerError(f"ledger account {self.account!r} is not a name like "
                              "'seller:balance' or 'external:buyers'")
        if not _CURRENCY.match(self.currency):
            raise LedgerError(f"currency {self.currency!r} is not a lower-case ISO 4217 code "
                              "such as 'usd'")
        if type(self.amount) is not int:
            raise LedgerError(f"amount {self.amount!r} of {self.account} must be an int of "
                              "minor units (cents), not a float, Decimal or bool")
        if self.amount == 0 or abs(self.amount) > MAX_AMOUNT:
            raise LedgerError(f"amount {self.amount} of {self.account} must be non-zero and "
                              f"at most {MAX_AMOUNT} in size")


@dataclass(frozen=True)
class Posting:
    """Balanced entries recorded together, once per ``key`` (the idempotency key: what
    caused it, e.g. ``"charge:ch_123"``); ``stripe_txn`` names the Stripe balance
    transaction it mirrors, for reconciliation."""

    key: str
    kind: str
    entries: tuple[Entry, ...]
    stripe_txn: str | None = None
    memo: str = ""
    #: A fact Stripe has already applied (a dispute and its fee): recorded even when it
    #: takes a balance below zero, as Stripe's own balance goes. Our own decisions
    #: (payouts, transfers, refunds we send) are never imposed.
    imposed: bool = False

    def __post_init__(self) -> None:
        if not self.key or len(self.key) > 255:
            raise LedgerError("a posting needs an idempotency key of 1 to 255 characters")
        if len(self.entries) < 2:
            raise UnbalancedPosting(f"posting {self.key!r} needs at least two entries")
        totals: dict[str, int] = {}
        for entry in self.entries:
            totals[entry.currency] = totals.get(entry.currency, 0) + entry.amount
        off = {c: t for c, t in sorted(totals.items()) if t}
        if off:
            shown = ", ".join(format_amount(t, c) for c, t in off.items())
            raise UnbalancedPosting(f"posting {self.key!r} does not balance: its entries sum "
                                    f"to {shown} (each currency must sum to zero)")

    @property
    def fingerprint(self) -> str:
        text = json.dumps([self.kind, self.stripe_txn, sorted(
            (e.account, e.currency, e.amount) for e in self.entries)])
        return hashlib.sha256(text.encode()).hexdigest()

    def deltas(self) -> list[tuple[str, str, int]]:
        """Net change per (account, currency), in the one order rows are locked."""
        net: dict[tuple[str, str], int] = {}
        for e in self.entries:
            net[(e.account, e.currency)] = net.get((e.account, e.currency), 0) + e.amount
        return [(a, c, d) for (a, c), d in sorted(net.items()) if d]


@dataclass(frozen=True)
class Posted:
    """The result of :meth:`Ledger.post`: the posting's id; ``duplicate`` when the key had
    been posted before (nothing was changed)."""

    posting_id: str
    duplicate: bool


class Ledger:
    """The ledger tables of one database (``db``: the server's database object)."""

    def __init__(self, db: Any) -> None:
        self.db = db

    async def post(self, account_id: str, posting: Posting) -> Posted:
        """Record ``posting`` in ``account_id``'s books, or refuse it whole."""
        async with self.db.transaction() as tx:
            return await self.record(tx, account_id, posting)

    async def record(self, tx: Any, account_id: str, posting: Posting) -> Posted:
        """Record ``posting`` inside the caller's transaction ``tx`` (so a posting and the
        change that causes it commit together); refused whole as :meth:`post` is."""
        if not account_id:
            raise LedgerError("a posting belongs to an account's books: give account_id")
        posting_id = uuid.uuid4().hex
        inserted = await tx.execute(
            "INSERT INTO mkt_ledger_postings (account_id, posting_id, idempotency_key, "
            "kind, stripe_txn, memo, fingerprint, posted_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (account_id, idempotency_key) DO NOTHING",
            account_id, posting_id, posting.key, posting.kind, posting.stripe_txn,
            posting.memo, posting.fingerprint, time.time())
        if not inserted:
            return await self._earlier(tx, account_id, posting)
        await tx.executemany(
            "INSERT INTO mkt_ledger_entries (account_id, posting_id, seq, ledger_account, "
            "currency, amount) VALUES (?, ?, ?, ?, ?, ?)",
            [(account_id, posting_id, seq, e.account, e.currency, e.amount)
             for seq, e in enumerate(posting.entries)])
        for account, currency, delta in posting.deltas():
            if not may_go_negative(account):  # the world outside has no row to lock
                await self._move(tx, account_id, account, currency, delta,
                                 posting.imposed)
        return Posted(posting_id, False)

    @staticmethod
    async def _earlier(tx: Any, account_id: str, posting: Posting) -> Posted:
        row = await tx.fetchrow(
            "SELECT posting_id, fingerprint FROM mkt_ledger_postings WHERE account_id = ? "
            "AND idempotency_key = ?", account_id, posting.key)
        assert row is not None
        if row["fingerprint"] != posting.fingerprint:
            raise LedgerError(f"posting key {posting.key!r} was used before for other "
                              "entries; derive the key from what the posting records")
        return Posted(row["posting_id"], True)

    @staticmethod
    async def _move(tx: Any, account_id: str, account: str, currency: str, delta: int,
                    imposed: bool) -> None:
        await tx.execute(
            "INSERT INTO mkt_ledger_balances (account_id, ledger_account, currency, balance, "
            "version) VALUES (?, ?, ?, 0, 0) "
            "ON CONFLICT (account_id, ledger_account, currency) DO NOTHING",
            account_id, account, currency)
        moved = await tx.execute(
            "UPDATE mkt_ledger_balances SET balance = balance + ?, version = version + 1 "
            "WHERE account_id = ? AND ledger_account = ? AND currency = ? "
            "AND (balance + ? >= 0 OR ? = 1)", delta, account_id, account, currency, delta,
            int(imposed))
        if not moved:
            balance = await tx.fetchval(
                "SELECT balance FROM mkt_ledger_balances WHERE account_id = ? AND "
                "ledger_account = ? AND currency = ?", account_id, account, currency)
            raise InsufficientFunds(
                f"{account} holds {format_amount(int(balance), currency)}; taking "
                f"{format_amount(-delta, currency)} would make it negative",
                account=account, currency=currency, balance=int(balance), change=delta)

    # -- reading ---------------------------------------------------------------------------

    async def balance(self, account_id: str, account: str, currency: str) -> int:
        """The balance of one ledger account (0 when it never moved)."""
        if may_go_negative(account):
            value = await self.db.fetchval(
                "SELECT SUM(amount) FROM mkt_ledger_entries WHERE account_id = ? AND "
                "ledger_account = ? AND currency = ?", account_id, account, currency)
        else:
            value = await self.db.fetchval(
                "SELECT balance FROM mkt_ledger_balances WHERE account_id = ? AND "
                "ledger_account = ? AND currency = ?", account_id, account, currency)
        return int(value or 0)

    async def balances(self, account_id: str) -> dict[tuple[str, str], int]:
        """Every ledger account's balance in ``account_id``'s books."""
        rows = await self.db.fetch(
            "SELECT ledger_account, currency, balance FROM mkt_ledger_balances "
            "WHERE account_id = ?", account_id)
        outside = await self.db.fetch(
            "SELECT ledger_account, currency, SUM(amount) AS balance FROM mkt_ledger_entries "
            "WHERE account_id = ? AND ledger_account LIKE 'external:%' "
            "GROUP BY ledger_account, currency", account_id)
        return {(r["ledger_account"], r["currency"]): int(r["balance"])
                for r in sorted(rows + outside,
                                key=lambda r: (r["ledger_account"], r["currency"]))}

    async def postings(self, account_id: str) -> list[dict[str, Any]]:
        """Every posting with its entries, oldest first."""
        rows = await self.db.fetch(
            "SELECT p.posting_id, p.idempotency_key, p.kind, p.stripe_txn, p.memo, "
            "p.posted_at, e.seq, e.ledger_account, e.currency, e.amount "
            "FROM mkt_ledger_postings p JOIN mkt_ledger_entries e "
            "ON e.account_id = p.account_id AND e.posting_id = p.posting_id "
            "WHERE p.account_id = ? ORDER BY p.posted_at, p.posting_id, e.seq", account_id)
        out: dict[str, dict[str, Any]] = {}
        for r in rows:
            posting = out.setdefault(r["posting_id"], {
                "posting_id": r["posting_id"], "key": r["idempotency_key"], "kind": r["kind"],
                "stripe_txn": r["stripe_txn"], "memo": r["memo"], "entries": []})
            posting["entries"].append(Entry(r["ledger_account"], r["currency"],
                                            int(r["amount"])))
        return list(out.values())

    async def audit(self, account_id: str) -> list[str]:
        """Problems in ``account_id``'s books (none when sound): a posting that does not
        balance, a stored balance that is not the sum of its entries. (A balance below zero
        is no problem of the books: only an imposed posting can make one.)"""
        problems = []
        unbalanced = await self.db.fetch(
            "SELECT posting_id, currency, SUM(amount) AS total FROM mkt_ledger_entries "
            "WHERE account_id = ? GROUP BY posting_id, currency HAVING SUM(amount) <> 0",
            account_id)
        problems += [f"posting {r['posting_id']} sums to {r['total']} {r['currency']}"
                     for r in unbalanced]
        sums = await self.db.fetch(
            "SELECT ledger_account, currency, SUM(amount) AS total FROM mkt_ledger_entries "
            "WHERE account_id = ? GROUP BY ledger_account, currency", account_id)
        stored = await self.balances(account_id)
        for r in sums:
            key = (r["ledger_account"], r["currency"])
            if not may_go_negative(key[0]) and stored.get(key, 0) != int(r["total"]):
                problems.append(f"{key[0]} {key[1]}: stored {stored.get(key, 0)}, "
                                f"entries sum to {r['total']}")
        return problems


def entries(*lines: tuple[str, int], currency: str) -> tuple[Entry, ...]:
    """Entries in one currency from ``(account, amount)`` pairs (zero amounts left out)."""
    return tuple(Entry(account, currency, amount) for account, amount in lines if amount)

