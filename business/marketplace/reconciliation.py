"""The reconciliation report: our ledger against Stripe's balance transactions.

Every Stripe balance transaction of one Stripe account should be mirrored by exactly one
posting (``stripe_txn``) whose entry on the mirror ledger account (``seller:balance`` for
a connected account) equals the transaction's ``net``. The report lists every
difference: a transaction we never posted, a posting naming a transaction Stripe does
not have, and amounts or currencies that disagree; and the totals on both sides.

:func:`reconcile_transfers` does the same for a seller's split transfers (:mod:`.splits`),
made from the platform's own account: each transfer's ``transfer_out`` posting and each
reversal's ``transfer_reversal`` posting on ``platform:clearing`` against the platform's
``transfer`` and ``transfer_refund`` balance transactions of that seller's transfers
(``metadata.seller``), and our ``mkt_transfers`` (amount, amount taken back) against
Stripe's transfers (``amount``, ``amount_reversed``), each disagreement one
:class:`Difference` (``transfer_amount``, ``transfer_reversed``, or a transfer
``missing_in_ledger`` / ``missing_at_stripe``).
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from business.marketplace import bookings
from business.marketplace.ledger import Ledger

Source = Iterable[Mapping[str, Any]] | AsyncIterable[Any]


@dataclass(frozen=True)
class Difference:
    """One disagreement: ``kind`` is ``missing_in_ledger``, ``missing_at_stripe`` or
    ``amount`` (a balance transaction), or ``transfer_amount`` or ``transfer_reversed``
    (a split transfer, ``stripe_txn`` its id)."""

    kind: str
    stripe_txn: str
    currency: str
    stripe_net: int | None
    ledger_amount: int | None
    stripe_type: str | None = None


@dataclass
class Reconciliation:
    """The report: matched transactions, differences, totals per currency on each side."""

    matched: int = 0
    differences: list[Difference] = field(default_factory=list)
    stripe_totals: dict[str, int] = field(default_factory=dict)
    ledger_totals: dict[str, int] = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        return not self.differences


async def _listed(items: Source) -> list[Mapping[str, Any]]:
    if isinstance(items, AsyncIterable):
        return [item async for item in items]
    return list(items)


async def reconcile(ledger: Ledger, account_id: str, transactions: Source, *,
                    mirror: str = "seller:balance",
                    kinds: tuple[str, ...] | None = None) -> Reconciliation:
    """Compare ``account_id``'s postings on ``mirror`` (of ``kinds`` only, when given)
    with ``transactions`` (Stripe's balance transactions of the matching Stripe account,
    e.g. from :meth:`StripeGateway.balance_transactions`)."""
    stripe = {txn["id"]: txn for txn in await _listed(transactions)}
    only = f" AND p.kind IN ({', '.join('?' for _ in kinds)})" if kinds else ""
    rows = await ledger.db.fetch(
        "SELECT p.stripe_txn, e.currency, SUM(e.amount) AS amount FROM mkt_ledger_postings p "
        "JOIN mkt_ledger_entries e ON e.account_id = p.account_id "
        "AND e.posting_id = p.posting_id WHERE p.account_id = ? AND e.ledger_account = ? "
        f"AND p.stripe_txn IS NOT NULL{only} GROUP BY p.stripe_txn, e.currency",
        account_id, mirror, *(kinds or ()))
    ours = {(r["stripe_txn"], r["currency"]): int(r["amount"]) for r in rows}
    report = Reconciliation()
    for txn in stripe.values():
        cur, net = str(txn["currency"]), int(txn["net"])
        report.stripe_totals[cur] = report.stripe_totals.get(cur, 0) + net
        amount = ours.pop((txn["id"], cur), None)
        if amount is None:
            kind = ("amount" if any(k[0] == txn["id"] for k in ours) else "missing_in_ledger")
            report.differences.append(Difference(kind, txn["id"], cur, net, None,
                                                 _type(txn)))
        elif amount != net:
            report.differences.append(Difference("amount", txn["id"], cur, net, amount,
                                                 _type(txn)))
        else:
            report.matched += 1
    for (txn_id, cur), amount in sorted(ours.items()):
        kind = "amount" if txn_id in stripe else "missing_at_stripe"
        report.differences.append(Difference(kind, txn_id, cur, None, amount))
    for r in rows:
        cur = r["currency"]
        report.ledger_totals[cur] = report.ledger_totals.get(cur, 0) + int(r["amount"])
    return report


def _type(txn: Mapping[str, Any]) -> str | None:
    return str(txn["type"]) if "type" in txn else None  # stripe objects have no .get


def _reversals(transfer: Mapping[str, Any]) -> list[Any]:
    """The reversals a transfer object embeds (a dict's list, or stripe-python's)."""
    found = transfer["reversals"] if "reversals" in transfer else None  # noqa: SIM401
    if not found:
        return []
    return list(found.data if hasattr(found, "data") else found["data"])


def _seller(transfer: Mapping[str, Any]) -> str | None:
    """The seller a transfer's metadata names (split transfers carry it)."""
    meta = transfer["metadata"] if "metadata" in transfer else None  # noqa: SIM401 - no .get
    return str(meta["seller"]) if meta and "seller" in meta else None


#: The seller's postings that mirror the platform's balance transactions of transfers.
TRANSFER_KINDS = ("transfer_out", "transfer_reversal")


async def reconcile_transfers(ledger: Ledger, seller: str, transfers: Source,
                              transactions: Source) -> Reconciliation:
    """Compare ``seller``'s split transfers and their reversals with Stripe's:
    ``transfers`` are the platform's transfers (e.g. from
    :meth:`StripeGateway.transfers`; those whose ``metadata.seller`` is ``seller`` are
    theirs, each with its ``reversals``), ``transactions`` the platform's balance
    transactions (:meth:`StripeGateway.balance_transactions` without an account)."""
    mine = {t["id"]: t for t in await _listed(transfers) if _seller(t) == seller}
    reversals = {r["id"] for t in mine.values() for r in _reversals(t)}
    picked = [txn for txn in await _listed(transactions)
              if (_type(txn) == "transfer" and txn["source"] in mine)
              or (_type(txn) == "transfer_refund" and txn["source"] in reversals)]
    report = await reconcile(ledger, seller, picked, mirror=bookings.CLEARING,
                             kinds=TRANSFER_KINDS)
    rows = await ledger.db.fetch("SELECT transfer_id, amount, reversed, currency FROM "
                                 "mkt_transfers WHERE account_id = ? ORDER BY transfer_id",
                                 seller)
    ours = {r["transfer_id"]: r for r in rows}
    for tid, t in sorted(mine.items()):
        row = ours.pop(tid, None)
        cur = str(t["currency"])
        if row is None:
            report.differences.append(Difference("missing_in_ledger", tid, cur,
                                                 int(t["amount"]), None, "transfer"))
            continue
        if int(row["amount"]) != int(t["amount"]) or row["currency"] != cur:
            report.differences.append(Difference("transfer_amount", tid, cur,
                                                 int(t["amount"]), int(row["amount"]),
                                                 "transfer"))
        elif int(row["reversed"]) != int(t["amount_reversed"]):
            report.differences.append(Difference("transfer_reversed", tid, cur,
                                                 int(t["amount_reversed"]),
                                                 int(row["reversed"]), "transfer"))
        else:
            report.matched += 1
    for tid, row in sorted(ours.items()):
        report.differences.append(Difference("missing_at_stripe", tid, str(row["currency"]),
                                             None, int(row["amount"]), "transfer"))
    return report
