"""Disputes: a buyer's bank takes a sale's money back, and may give it back.

``charge.dispute.created``: the disputed amount and Stripe's dispute fee are booked
(:func:`~business.marketplace.bookings.dispute_opened`, imposed: Stripe already took
them), the order's licence is ``disputed`` (its downloads refused while the dispute is
open) and the collaborators' shares of a split sale are reversed in proportion.
``charge.dispute.closed``: ``won`` gives the amount back
(:func:`~business.marketplace.bookings.dispute_won`; the fee stays with Stripe) and
re-enables the licence; ``lost`` revokes it. Each runs in the event's transaction.
"""

from __future__ import annotations

import logging
from typing import Any

from business.marketplace import bookings
from business.marketplace.ledger import Ledger
from business.marketplace.webhooks import Outcome, StripeEvent

logger = logging.getLogger(__name__)

TYPES = ("charge.dispute.created", "charge.dispute.closed")


class NotOpenedYet(Exception):
    """A dispute's ``closed`` event came before its ``created``: Stripe sends it again."""
DISPUTED = "disputed"


def dispute_fee(dispute: dict[str, Any]) -> tuple[int, str | None]:
    """Stripe's fee on the dispute and the balance transaction that took it."""
    for txn in dispute.get("balance_transactions") or []:
        if isinstance(txn, dict) and int(txn.get("amount") or 0) < 0:
            return int(txn.get("fee") or 0), txn.get("id")
    return 0, None


class Disputes:
    """Applies dispute events to orders, licences and the books."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    async def order_of(self, db: Any, seller: str, dispute: dict[str, Any]
                       ) -> dict[str, Any] | None:
        """The seller's order the disputed payment paid (None: not one of ours)."""
        intent = dispute.get("payment_intent")
        if not intent:
            return None
        row = await db.fetchrow(
            "SELECT order_id, amount, currency FROM mkt_orders WHERE account_id = ? AND "
            "payment_intent = ?", seller, str(intent))
        return dict(row) if row is not None else None

    async def apply(self, tx: Any, seller: str, order: dict[str, Any], event: StripeEvent
                    ) -> Outcome:
        """Book the dispute event and block or re-enable the licence, in ``tx``."""
        dispute = event.object
        did, amount = str(dispute["id"]), int(dispute["amount"])
        currency, order_id = str(dispute["currency"]), order["order_id"]
        if event.type == "charge.dispute.created":
            fee, txn = dispute_fee(dispute)
            await self.ledger.record(tx, seller, bookings.dispute_opened(
                f"dispute:{did}", currency, amount=amount, fee=fee, stripe_txn=txn))
            await tx.execute(
                "INSERT INTO mkt_disputes (account_id, dispute_id, order_id, amount, currency, "
                "status) VALUES (?, ?, ?, ?, ?, 'open') "
                "ON CONFLICT (account_id, dispute_id) DO NOTHING",
                seller, did, order_id, amount, currency)
            await tx.execute(
                "UPDATE mkt_licences SET status = ? WHERE account_id = ? AND order_id = ? "
                "AND status = 'active'", DISPUTED, seller, order_id)
            return Outcome.PROCESSED
        opened = await tx.fetchval(
            "SELECT status FROM mkt_disputes WHERE account_id = ? AND dispute_id = ?",
            seller, did)
        if opened is None:
            raise NotOpenedYet(f"dispute {did} closed before we saw it opened")
        status = str(dispute.get("status"))
        if status not in ("won", "lost"):
            return Outcome.IGNORED  # warning_closed and the like: no money moved
        if status == "won":
            back = [t for t in dispute.get("balance_transactions") or []
                    if isinstance(t, dict) and int(t.get("amount") or 0) > 0]
            await self.ledger.record(tx, seller, bookings.dispute_won(
                f"dispute-won:{did}", currency, amount=amount,
                stripe_txn=back[0].get("id") if back else None))
        await tx.execute(
            "UPDATE mkt_licences SET status = ? WHERE account_id = ? AND order_id = ? "
            "AND status = ?", "active" if status == "won" else "revoked", seller, order_id,
            DISPUTED)
        await tx.execute(
            "UPDATE mkt_disputes SET status = ? WHERE account_id = ? AND dispute_id = ?",
            status, seller, did)
        return Outcome.PROCESSED
