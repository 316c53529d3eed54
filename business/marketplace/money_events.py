"""The money webhooks of a seller's connected account: disputes and payouts.

Stripe sends them from the seller's connected account (``event.account``), which names
the seller (``mkt_sellers``); each is recorded in ``mkt_webhook_events`` in the one
transaction of its effects, so a replay is a duplicate. A dispute's reversal of the
collaborators' shares is a Stripe call, made after that transaction with a key of the
dispute (a retried delivery reverses nothing twice).

A dispute of a split cart's separate charge comes from the platform's own account (no
``event.account``); its lines are found by the payment (:meth:`Disputes.cart_of`) and
the event is handled in one transaction under their seller: booked against
``platform:clearing``, the lines' licences blocked, and, when it is lost, one
``marketplace.split_reversal`` job per paid line queued in that same transaction
(:meth:`~business.marketplace.split_sales.SplitSales.queue_dispute_reversals`), so the
collaborators' transfers are taken back in proportion exactly once; a won one restores
the licences and reverses nothing.
"""

from __future__ import annotations

import time
from typing import Any

from business.marketplace import bookings
from business.marketplace.disputes import TYPES as DISPUTE_TYPES
from business.marketplace.disputes import Disputes, NotOpenedYet
from business.marketplace.ledger import Ledger
from business.marketplace.models import Order
from business.marketplace.payouts import Payouts
from business.marketplace.split_sales import SplitSales
from business.marketplace.splits import Splits
from business.marketplace.store import MarketStore
from business.marketplace.webhooks import Outcome, StripeEvent

PAYOUT_TYPES = ("payout.paid", "payout.failed")
TYPES = frozenset((*DISPUTE_TYPES, *PAYOUT_TYPES))


class MoneyEvents:
    """Handles :data:`TYPES` for :class:`~business.marketplace.fulfilment.Fulfilment`."""

    def __init__(self, store: MarketStore, ledger: Ledger, payouts: Payouts | None,
                 splits: Splits | None) -> None:
        self.store = store
        self.disputes = Disputes(ledger)
        self.payouts = payouts
        self.splits = splits
        #: the split carts' transfers, whose reversal a lost dispute queues
        self.split_sales: SplitSales | None = None

    async def seller_of(self, stripe_account: str | None) -> str | None:
        if not stripe_account:
            return None
        return await self.store.db.fetchval(
            "SELECT account_id FROM mkt_sellers WHERE stripe_account = ?", stripe_account)

    async def handle(self, event: StripeEvent) -> Outcome:
        if event.type in DISPUTE_TYPES and not event.account:
            lines = await self.disputes.cart_of(self.store.db, event.object)
            if lines:
                try:
                    return await self._cart_dispute(event, lines)
                except NotOpenedYet:
                    return Outcome.RETRY  # nothing recorded: Stripe sends it again
        seller = await self.seller_of(event.account)
        order: dict[str, Any] | None = None
        if seller is not None and event.type in DISPUTE_TYPES:
            order = await self.disputes.order_of(self.store.db, seller, event.object)
        known = seller is not None and (order is not None or event.type in PAYOUT_TYPES)
        try:
            outcome = await self._apply(event, seller, order, known)
        except NotOpenedYet:
            return Outcome.RETRY  # nothing recorded: Stripe sends it again
        if (order is not None and seller is not None and self.splits is not None
                and event.type == "charge.dispute.created"):
            await self.splits.reverse(seller, order["order_id"], taken=min(
                int(event.object["amount"]), int(order["amount"])), of=int(order["amount"]),
                cause=f"dispute:{event.object['id']}")
        return outcome

    async def _apply(self, event: StripeEvent, seller: str | None,
                     order: dict[str, Any] | None, known: bool) -> Outcome:
        async with self.store.db.transaction() as tx:
            if not known:
                new = await self.store.record_event(tx, seller or "", event.id, event.type,
                                                    Outcome.IGNORED, time.time())
                return Outcome.IGNORED if new else Outcome.DUPLICATE
            assert seller is not None
            if not await self.store.record_event(tx, seller, event.id, event.type,
                                                 Outcome.PROCESSED, time.time()):
                return Outcome.DUPLICATE
            if order is not None:
                outcome = await self.disputes.apply(tx, seller, [order["order_id"]], event)
            elif self.payouts is not None:
                outcome = await self.payouts.on_event(tx, seller, event)
            else:
                outcome = Outcome.IGNORED
        return outcome

    async def _cart_dispute(self, event: StripeEvent, lines: list[Order]) -> Outcome:
        """A dispute of a split cart's separate charge, in one transaction."""
        seller, dispute = lines[0].account_id, event.object
        async with self.store.db.transaction() as tx:
            if not await self.store.record_event(tx, seller, event.id, event.type,
                                                 Outcome.PROCESSED, time.time()):
                return Outcome.DUPLICATE
            outcome = await self.disputes.apply(tx, seller, [o.order_id for o in lines],
                                                event, mirror=bookings.CLEARING)
            lost = (event.type == "charge.dispute.closed" and outcome is Outcome.PROCESSED
                    and dispute.get("status") == "lost")
            if lost and self.split_sales is not None:
                await self.split_sales.queue_dispute_reversals(
                    tx, lines, dispute_id=str(dispute["id"]), amount=int(dispute["amount"]))
        return outcome
