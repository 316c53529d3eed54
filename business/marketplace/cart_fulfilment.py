"""A cart checkout's Stripe events: every line fulfilled once, a line sold meanwhile
refunded alone.

``checkout.session.completed`` of a cart (its metadata names ``cart_id``) is handled in
one transaction, as a single order's is (:mod:`.fulfilment`): the event recorded once, the
sale posted once for the whole payment (key ``sale:cart:<cart_id>``; the lines' discovery
fees, summed in the metadata's ``discovery_fee``, to ``platform:fees``), and each line's
order paid and licensed, unless its beat was sold exclusively meanwhile: that order
becomes ``refunding`` and the ``marketplace.refund`` job refunds its amount alone (a free
line has nothing to refund and is closed as refunded). ``charge.refunded`` of a cart's
charge reads the charge's refunds from Stripe and books each one naming an order of the
cart (key ``refund:<order_id>``), revoking that line's licence only.

A cart paid by a **separate charge** on the platform's account (it holds a split beat:
its orders carry a ``transfer_group``) books the sale to ``platform:clearing`` and, in
the same transaction, queues each paid line's transfers to its payees; a refund of a
line books it to ``platform:clearing`` and queues the reversal of that line's transfers
in proportion (:mod:`.split_sales`).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from business.marketplace import bookings, customers, split_sales
from business.marketplace.models import EXPIRED, FAILED, OPEN, PAID, REFUNDED, REFUNDING, Order
from business.marketplace.schemas import SaleEvent
from business.marketplace.store import ORDER_COLUMNS, order_from
from business.marketplace.webhooks import Outcome, StripeEvent

if TYPE_CHECKING:
    from business.marketplace.fulfilment import Fulfilment

logger = logging.getLogger(__name__)
CART_TYPES = ("checkout.session.completed", "checkout.session.expired", "charge.refunded")


def cart_metadata_of(obj: dict[str, Any]) -> dict[str, str]:
    """The metadata of a cart checkout's Stripe object (empty when it is not one)."""
    meta = obj.get("metadata") or {}
    return meta if meta.get("cart_id") and meta.get("seller") else {}


class CartEvents:
    """The cart half of :class:`~business.marketplace.fulfilment.Fulfilment`."""

    def __init__(self, fulfilment: Fulfilment) -> None:
        self.f = fulfilment
        self.store = fulfilment.store

    async def orders(self, seller: str, cart_id: str, tx: Any = None) -> list[Order]:
        on = tx or self.store.db
        rows = await on.fetch(f"SELECT {ORDER_COLUMNS} FROM mkt_orders WHERE account_id = ? "
                              "AND cart_id = ? ORDER BY order_id", seller, cart_id)
        return [order_from(r) for r in rows]

    async def handle(self, event: StripeEvent, meta: dict[str, str]) -> Outcome:
        from business.marketplace.fulfilment import _from_sellers_account, _Retry

        orders = await self.orders(meta["seller"], meta["cart_id"])
        if not orders:
            raise _Retry(f"cart checkout {meta['cart_id']!r} is not stored (yet)")
        if not _from_sellers_account(event, orders[0]):
            return await self.f._record_only(event, orders[0].account_id)
        if event.type == "checkout.session.completed":
            return await self._paid(event, meta, orders)
        if event.type == "checkout.session.expired":
            return await self._expired(event, orders)
        return await self._refunded(event, meta, orders)

    async def _paid(self, event: StripeEvent, meta: dict[str, str],
                    orders: list[Order]) -> Outcome:
        seller, cart_id = orders[0].account_id, meta["cart_id"]
        if await self.store.event_outcome(seller, event.id):
            return Outcome.DUPLICATE
        session = event.object
        fee, txn, charge = await self.f.payment(orders[0], session)
        separate = self.f.split_sales if orders[0].transfer_group else None
        if separate is not None and self.f.gateway is not None and charge is None \
                and session.get("payment_intent"):
            from business.marketplace.fulfilment import _Retry
            # the transfers are made from this charge (source_transaction): without it the
            # payees would never be paid, so the event is not taken until Stripe shows it
            raise _Retry(f"cart {meta['cart_id']!r}: its payment's charge cannot be read "
                         "yet; its collaborators' transfers need it")
        amount = int(session.get("amount_total") or 0)
        currency = str(session.get("currency") or orders[0].currency)
        intent = session.get("payment_intent")
        now = time.time()
        async with self.store.db.transaction() as tx:
            if not await self.store.record_event(tx, seller, event.id, event.type,
                                                 Outcome.PROCESSED, now):
                return Outcome.DUPLICATE
            orders = await self.orders(seller, cart_id, tx)
            waiting = [o for o in orders if o.status in (OPEN, EXPIRED, FAILED)]
            if not waiting:
                return Outcome.PROCESSED
            # the lines' discovery fees, summed (.cart_checkout): the platform's; Stripe's
            # balance transaction counts it in its fee, as for a single order
            platform_fee = min(int(meta.get("discovery_fee") or 0), amount)
            if separate is not None:
                # on the platform's account: Stripe's fee is its own (no application
                # fee); the platform keeps its fee and transfers the rest
                await self.f.ledger.record(tx, seller, bookings.sale(
                    f"sale:cart:{cart_id}", currency, gross=amount,
                    stripe_fee=min(fee, amount - platform_fee), platform_fee=platform_fee,
                    stripe_txn=txn, mirror=bookings.CLEARING))
                nets = split_sales.line_nets(orders, await separate.fees(tx, seller, cart_id),
                                             fee)
            else:
                await self.f.ledger.record(tx, seller, bookings.sale(
                    f"sale:cart:{cart_id}", currency, gross=amount,
                    stripe_fee=max(0, fee - platform_fee), platform_fee=platform_fee,
                    stripe_txn=txn))
            expected = sum(o.amount for o in orders)
            mismatch = amount != expected or currency != orders[0].currency
            if mismatch:
                logger.warning("cart %s: Stripe charged %d %s, the orders said %d %s", cart_id,
                               amount, currency, expected, orders[0].currency)
            paid: list[str] = []
            for order in waiting:
                if mismatch:
                    sold = False
                    note = (f"Stripe charged {amount} {currency}, not the cart's {expected} "
                            f"{order.currency}: every line is refunded")
                elif order.exclusive:
                    sold = await self.store.sell_exclusive(tx, seller, order.beat_id,
                                                           order.order_id, now)
                    note = "the exclusive was sold to another buyer first: this line is refunded"
                else:
                    sold = await self.store.sell_lease(tx, seller, order.beat_id)
                    note = ("the beat was sold with exclusive rights before this payment "
                            "arrived: this line is refunded")
                line = Order(**{**order.__dict__, "payment_intent": intent})
                if separate is not None:  # its payees' transfers, or none to make
                    await separate.queue_payment(
                        tx, line, net=nets[order.order_id] if sold and not mismatch else 0,
                        charge=charge, currency=currency, now=now)
                if not sold:
                    if order.amount > 0:
                        await self.store.set_order(tx, seller, order.order_id,
                                                   status=REFUNDING, payment_intent=intent,
                                                   paid_at=now, note=f"{order.note}; {note}")
                        await self.f.enqueue_refund(tx, line)
                    else:
                        await self.store.set_order(tx, seller, order.order_id,
                                                   status=REFUNDED, payment_intent=intent,
                                                   paid_at=now, refunded_at=now,
                                                   note=f"{order.note}; {note}")
                    continue
                await self.store.set_order(tx, seller, order.order_id, status=PAID,
                                           payment_intent=intent, paid_at=now)
                await self.f._grant(tx, order, now)
                paid.append(order.beat_id)
                if self.f.publish is not None:
                    await self.f.publish(tx, "marketplace.sale", SaleEvent(
                        account_id=seller, order_id=order.order_id, beat_id=order.beat_id,
                        tier=order.tier, amount_cents=order.amount, currency=currency,
                        at=now).model_dump(), seller)
            await self.f.carts_take(tx, order.buyer_account, seller, paid)
            await customers.record(tx, seller, [o.order_id for o in waiting
                                                if o.beat_id in paid],
                                   orders[0].buyer_account, session, now)
        return Outcome.PROCESSED

    async def _expired(self, event: StripeEvent, orders: list[Order]) -> Outcome:
        from business.marketplace.checkout import close_order

        seller = orders[0].account_id
        async with self.store.db.transaction() as tx:
            if not await self.store.record_event(tx, seller, event.id, event.type,
                                                 Outcome.PROCESSED, time.time()):
                return Outcome.DUPLICATE
            for order in orders:
                await close_order(tx, self.store, order, EXPIRED)
        return Outcome.PROCESSED

    async def _refunded(self, event: StripeEvent, meta: dict[str, str],
                        orders: list[Order]) -> Outcome:
        from business.marketplace.fulfilment import _Retry

        seller = orders[0].account_id
        by_id = {o.order_id: o for o in orders}
        intent = event.object.get("payment_intent")
        if not intent or self.f.gateway is None:
            return await self.f._record_only(event, seller)
        if not any(o.status in (PAID, REFUNDING, REFUNDED) for o in orders):
            raise _Retry(f"cart {meta['cart_id']!r} is not paid yet")
        refunds = await self.f.gateway.list_refunds(payment_intent=str(intent),
                                                    account=orders[0].charged_on)
        separate = self.f.split_sales if orders[0].transfer_group else None
        now = time.time()
        async with self.store.db.transaction() as tx:
            if not await self.store.record_event(tx, seller, event.id, event.type,
                                                 Outcome.PROCESSED, now):
                return Outcome.DUPLICATE
            for refund in refunds:
                order = by_id.get(str((refund.get("metadata") or {}).get("order_id", "")))
                if order is None or refund.get("status") not in ("succeeded", "pending"):
                    if order is None:
                        logger.warning("refund %s of cart %s names no order of it: not "
                                       "booked", refund.get("id"), meta["cart_id"])
                    continue
                posted = await self.f.ledger.record(tx, seller, bookings.refund(
                    f"refund:{order.order_id}", str(refund["currency"]),
                    amount=int(refund["amount"]), imposed=True,
                    mirror=bookings.SELLER if separate is None else bookings.CLEARING))
                if separate is not None and not posted.duplicate:
                    await separate.queue_reversal(tx, order, refund_id=str(refund["id"]),
                                                  amount=int(refund["amount"]))
                await self.store.set_order(tx, seller, order.order_id, status=REFUNDED,
                                           refunded_at=now, expect=(PAID, REFUNDING))
                await self.store.revoke_licence(tx, seller, order.order_id)
        return Outcome.PROCESSED
