"""Disputes: a buyer's bank takes a sale's money back, and may give it back.

``charge.dispute.created``: the disputed amount and Stripe's dispute fee are booked
(:func:`~business.marketplace.bookings.dispute_opened`, imposed: Stripe already took
them), the order's licence is ``disputed`` (its downloads refused while the dispute is
open) and the collaborators' shares of a split sale are reversed in proportion.
``charge.dispute.closed``: ``won`` gives the amount back
(:func:`~business.marketplace.bookings.dispute_won`; the fee stays with Stripe) and
re-enables the licence; ``lost`` revokes it. Each runs in the event's transaction.

A split cart's separate charge (:mod:`.split_sales`) is disputed on the platform's own
account (the event names no ``account``): :meth:`Disputes.cart_of` finds its lines by
the payment, the money is booked against ``platform:clearing`` (the seller's books hold
the platform's balance of the charge there), every line's licence is blocked, and a lost
dispute has :mod:`.money_events` queue the reversal of the lines' transfers.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from business.marketplace import bookings
from business.marketplace.ledger import Ledger
from business.marketplace.models import Order
from business.marketplace.store import ORDER_COLUMNS, order_from
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


def shares_taken(amount: int, orders: list[dict[str, Any]]) -> list[tuple[str, int, int]]:
    """``(order_id, taken, of)`` for each paid line of a disputed charge: the disputed
    ``amount`` spread over the lines in proportion to what each cost (a free line of a
    bulk deal takes nothing), each at most its own amount."""
    total = sum(int(o["amount"]) for o in orders)
    shares = []
    for order in orders:
        of = int(order["amount"])
        taken = min(of, amount * of // total) if total > 0 else 0
        if taken > 0:
            shares.append((str(order["order_id"]), taken, of))
    return shares


class Disputes:
    """Applies dispute events to orders, licences and the books."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    async def orders_of(self, db: Any, seller: str, dispute: dict[str, Any]
                        ) -> list[dict[str, Any]]:
        """The seller's orders the disputed payment paid: a single sale's, or every line
        of a cart paid with one charge on the seller's account (empty: not ours)."""
        intent = dispute.get("payment_intent")
        if not intent:
            return []
        rows = await db.fetch(
            "SELECT order_id, amount, currency FROM mkt_orders WHERE account_id = ? AND "
            "payment_intent = ? ORDER BY order_id", seller, str(intent))
        return [dict(r) for r in rows]

    async def cart_of(self, db: Any, dispute: dict[str, Any]) -> list[Order]:
        """The lines of the split cart whose separate charge (on the platform's account)
        is disputed, all of one seller (empty: not a split cart's charge)."""
        intent = dispute.get("payment_intent")
        if not intent:
            return []
        rows = await db.fetch(
            f"SELECT {ORDER_COLUMNS} FROM mkt_orders WHERE payment_intent = ? AND "
            "transfer_group IS NOT NULL ORDER BY account_id, order_id", str(intent))
        lines = [order_from(r) for r in rows]
        return [o for o in lines if o.account_id == lines[0].account_id] if lines else []

    async def apply(self, tx: Any, seller: str, order_ids: list[str], event: StripeEvent,
                    mirror: str = bookings.SELLER) -> Outcome:
        """Book the dispute event against ``mirror`` and block or re-enable the licences
        of ``order_ids`` (a single sale's order, or a split cart's lines), in ``tx``."""
        dispute = event.object
        did, amount = str(dispute["id"]), int(dispute["amount"])
        currency = str(dispute["currency"])
        marks = ", ".join("?" for _ in order_ids)
        licences = (f"UPDATE mkt_licences SET status = ? WHERE account_id = ? AND "
                    f"order_id IN ({marks}) AND status = ?")
        if event.type == "charge.dispute.created":
            fee, txn = dispute_fee(dispute)
            await self.ledger.record(tx, seller, bookings.dispute_opened(
                f"dispute:{did}", currency, amount=amount, fee=fee, stripe_txn=txn,
                mirror=mirror))
            await tx.execute(
                "INSERT INTO mkt_disputes (account_id, dispute_id, order_id, amount, currency, "
                "status) VALUES (?, ?, ?, ?, ?, 'open') "
                "ON CONFLICT (account_id, dispute_id) DO NOTHING",
                seller, did, order_ids[0], amount, currency)
            await tx.execute(licences, DISPUTED, seller, *order_ids, "active")
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
            # imposed: Stripe has given it back, even to a clearing balance the dispute's
            # fee and a split cart's transfers hold below zero
            await self.ledger.record(tx, seller, dataclasses.replace(bookings.dispute_won(
                f"dispute-won:{did}", currency, amount=amount,
                stripe_txn=back[0].get("id") if back else None, mirror=mirror),
                imposed=True))
        await tx.execute(licences, "active" if status == "won" else "revoked", seller,
                         *order_ids, DISPUTED)
        await tx.execute(
            "UPDATE mkt_disputes SET status = ? WHERE account_id = ? AND dispute_id = ?",
            status, seller, did)
        return Outcome.PROCESSED
