"""The reconciliation report: our ledger against Stripe's balance transactions.

Every Stripe balance transaction of one Stripe account should be mirrored by exactly one
posting (``stripe_txn``) whose entry on the mirror ledger account (``seller:balance`` for
a connected account) equals the transaction's ``net``. The report lists every
difference: a transaction we never posted, a posting naming a transaction Stripe does
not have, and amounts or currencies that disagree; and the totals on both sides.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from business.marketplace.ledger import Ledger


@dataclass(frozen=True)
class Difference:
    """One disagreement: ``kind`` is ``missing_in_ledger``, ``missing_at_stripe`` or
    ``amount``."""

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


async def reconcile(ledger: Ledger, account_id: str,
                    transactions: Iterable[Mapping[str, Any]] | AsyncIterable[Any], *,
                    mirror: str = "seller:balance") -> Reconciliation:
    """Compare ``account_id``'s postings on ``mirror`` with ``transactions`` (Stripe's
    balance transactions of the matching Stripe account, e.g. from
    :meth:`StripeGateway.balance_transactions`)."""
    stripe: dict[str, Mapping[str, Any]] = {}
    if isinstance(transactions, AsyncIterable):
        async for txn in transactions:
            stripe[txn["id"]] = txn
    else:
        stripe = {txn["id"]: txn for txn in transactions}
    rows = await ledger.db.fetch(
        "SELECT p.stripe_txn, e.currency, SUM(e.amount) AS amount FROM mkt_ledger_postings p "
        "JOIN mkt_ledger_entries e ON e.account_id = p.account_id "
        "AND e.posting_id = p.posting_id WHERE p.account_id = ? AND e.ledger_account = ? "
        "AND p.stripe_txn IS NOT NULL GROUP BY p.stripe_txn, e.currency", account_id, mirror)
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
