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

A dispute can reach us before the payment it disputes (Stripe's order of delivery is not
guaranteed, and a payment event we answered with an error is sent again later): its
order or cart is then stored but not paid, or not stored yet. :meth:`MoneyEvents.awaited`
asks Stripe for the disputed PaymentIntent, and when its metadata names an order or cart
of ours charged on the dispute's account that has no payment stored yet, the dispute is
:attr:`~business.marketplace.webhooks.Outcome.RETRY`: nothing is recorded, Stripe sends
it again, and it is applied once the payment has landed (so a lost dispute reverses the
transfers the payment queued, exactly once).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from business.marketplace import bookings
from business.marketplace.disputes import TYPES as DISPUTE_TYPES
from business.marketplace.disputes import Disputes, NotOpenedYet, shares_taken
from business.marketplace.ledger import Ledger
from business.marketplace.models import Order
from business.marketplace.payouts import Payouts
from business.marketplace.split_sales import SplitSales
from business.marketplace.splits import Splits
from business.marketplace.store import ORDER_COLUMNS, MarketStore, order_from
from business.marketplace.stripe_gateway import StripeGateway
from business.marketplace.webhooks import Outcome, StripeEvent

logger = logging.getLogger(__name__)

PAYOUT_TYPES = ("payout.paid", "payout.failed")
TYPES = frozenset((*DISPUTE_TYPES, *PAYOUT_TYPES))


class MoneyEvents:
    """Handles :data:`TYPES` for :class:`~business.marketplace.fulfilment.Fulfilment`."""

    def __init__(self, store: MarketStore, ledger: Ledger, payouts: Payouts | None,
                 splits: Splits | None, gateway: StripeGateway | None = None) -> None:
        self.store = store
        #: reads a disputed PaymentIntent's metadata (:meth:`awaited`)
        self.gateway = gateway
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
            if await self.awaited(event):
                return Outcome.RETRY
        seller = await self.seller_of(event.account)
        orders: list[dict[str, Any]] = []
        if seller is not None and event.type in DISPUTE_TYPES:
            # a single sale, or every line of a cart its one charge paid
            orders = await self.disputes.orders_of(self.store.db, seller, event.object)
            if not orders and await self.awaited(event):
                return Outcome.RETRY
        known = seller is not None and (bool(orders) or event.type in PAYOUT_TYPES)
        try:
            outcome = await self._apply(event, seller, [o["order_id"] for o in orders],
                                        known)
        except NotOpenedYet:
            return Outcome.RETRY  # nothing recorded: Stripe sends it again
        if (orders and seller is not None and self.splits is not None
                and event.type == "charge.dispute.created"):
            for order_id, taken, of in shares_taken(int(event.object["amount"]), orders):
                await self.splits.reverse(seller, order_id, taken=taken, of=of,
                                          cause=f"dispute:{event.object['id']}")
        return outcome

    async def awaited(self, event: StripeEvent) -> bool:
        """Whether the dispute in ``event`` is of a payment of ours we have not stored
        yet, or stored only since the caller's lookup by payment found nothing: the
        disputed PaymentIntent's metadata names an order or cart of a seller, charged on
        the event's account, whose orders have no payment stored or are paid by this
        very PaymentIntent. False when the named order or cart has no rows here (logged
        as a warning; the dispute is recorded as not ours) or was paid by another
        payment."""
        intent_id = event.object.get("payment_intent")
        if self.gateway is None or not intent_id:
            return False
        intent = await self.gateway.retrieve_payment_intent(str(intent_id),
                                                            account=event.account)
        meta = dict(intent.to_dict().get("metadata") or {})
        seller = meta.get("seller")
        key = ("cart_id", meta.get("cart_id")) if meta.get("cart_id") else (
            "order_id", meta.get("order_id"))
        if not seller or not key[1]:
            return False  # not a marketplace payment: nothing will ever store it
        rows = await self.store.db.fetch(
            f"SELECT {ORDER_COLUMNS} FROM mkt_orders WHERE account_id = ? AND {key[0]} = ?",
            str(seller), str(key[1]))
        orders = [order_from(r) for r in rows]
        if not orders:
            # Named but not here (deleted, or another deployment's): no payment will
            # ever be stored, so waiting only loses the dispute after Stripe gives up.
            logger.warning("dispute %s (%s) names %s %s of seller %s, which is not "
                           "stored: recorded as not ours", event.object.get("id"),
                           event.type, key[0], key[1], seller)
            return False
        if any(o.charged_on != (event.account or None) for o in orders):
            return False  # copied metadata on another account's payment
        if any(o.payment_intent == str(intent_id) for o in orders):
            # Paid by this very payment after the caller's lookup by payment found
            # nothing: the lookup raced the payment's commit; the next delivery finds it.
            logger.info("dispute %s (%s) of %s %s raced its payment's commit: Stripe "
                        "sends it again", event.object.get("id"), event.type, key[0],
                        key[1])
            return True
        if any(o.payment_intent for o in orders):
            return False  # paid by another payment: this dispute is not of our sale
        logger.info("dispute %s (%s) of %s %s came before its payment: Stripe sends it "
                    "again", event.object.get("id"), event.type, key[0], key[1])
        return True

    async def _apply(self, event: StripeEvent, seller: str | None, order_ids: list[str],
                     known: bool) -> Outcome:
        async with self.store.db.transaction() as tx:
            if not known:
                new = await self.store.record_event(tx, seller or "", event.id, event.type,
                                                    Outcome.IGNORED, time.time())
                return Outcome.IGNORED if new else Outcome.DUPLICATE
            assert seller is not None
            if not await self.store.record_event(tx, seller, event.id, event.type,
                                                 Outcome.PROCESSED, time.time()):
                return Outcome.DUPLICATE
            if order_ids:
                outcome = await self.disputes.apply(tx, seller, order_ids, event)
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
