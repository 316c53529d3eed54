"""A cart checkout's Stripe events: every line fulfilled once, a line sold meanwhile
refunded alone.

``checkout.session.completed`` of a cart (its metadata names ``cart_id``) is handled in
one transaction, as a single order's is (:mod:`.fulfilment`): the event recorded once, the
sale posted once for the whole payment (key ``sale:cart:<cart_id>``; the lines' discovery
fees, summed in the metadata's ``discovery_fee``, to ``platform:fees``), and each line's
order paid and licensed, unless its beat was sold exclusively meanwhile: that order
becomes ``refunding`` and the ``marketplace.refund`` job refunds its amount alone (a free
line has nothing to refund and is closed as refunded). A session paid by a delayed method
(``payment_status`` ``unpaid``) is fulfilled on ``checkout.session.async_payment_succeeded``
instead, and ``async_payment_failed`` fails its orders as an expiry closes them.
``charge.refunded`` of a cart's
charge reads the charge's refunds from Stripe: a line's refunds (their metadata names its
order) book what their total grew by (key ``refund:<order_id>:<total>``, as a single
sale's) and revoke that line's licence only; a refund naming no line (made in Stripe's
dashboard) is booked against the cart (key ``refund:cart:<cart_id>:<refund_id>``), so the
books follow Stripe's balance, and once the whole charge is refunded every line's licence goes.

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
from business.marketplace.models import (
    EXPIRED,
    FAILED,
    PAID,
    REFUNDED,
    REFUNDING,
    UNPAID,
    WAITING,
    Order,
)
from business.marketplace.schemas import SaleEvent
from business.marketplace.store import ORDER_COLUMNS, order_from
from business.marketplace.webhooks import Outcome, StripeEvent

if TYPE_CHECKING:
    from business.marketplace.fulfilment import Fulfilment

logger = logging.getLogger(__name__)
CART_TYPES = ("checkout.session.completed", "checkout.session.expired", "charge.refunded",
              "checkout.session.async_payment_succeeded",
              "checkout.session.async_payment_failed")


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
        from business.marketplace.fulfilment import (
            ASYNC_FAILED,
            ASYNC_PAID,
            _from_sellers_account,
            _Retry,
            awaits_payment,
        )

        orders = await self.orders(meta["seller"], meta["cart_id"])
        if not orders:
            raise _Retry(f"cart checkout {meta['cart_id']!r} is not stored (yet)")
        if not _from_sellers_account(event, orders[0]):
            return await self.f._record_only(event, orders[0].account_id)
        if event.type == "checkout.session.completed" and awaits_payment(event.object):
            return await self.f.processing(event, orders)  # not paid yet
        if event.type in ("checkout.session.completed", ASYNC_PAID):
            return await self._paid(event, meta, orders)
        if event.type in ("checkout.session.expired", ASYNC_FAILED):
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
            waiting = [o for o in orders if o.status in UNPAID]
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
            if paid:  # paid after the sweep or the expired event gave its coupon's use
                await _recount_closed(tx, waiting)  # back: it counts again
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
            failed = event.type == "checkout.session.async_payment_failed"
            for order in orders:
                await close_order(tx, self.store, order, FAILED if failed else EXPIRED,
                                  note="the delayed payment failed" if failed else None)
        return Outcome.PROCESSED

    async def _refunded(self, event: StripeEvent, meta: dict[str, str],
                        orders: list[Order]) -> Outcome:
        from business.marketplace.fulfilment import _Retry

        seller, cart_id, charge = orders[0].account_id, meta["cart_id"], event.object
        intent = charge.get("payment_intent")
        if not intent or self.f.gateway is None:
            return await self.f._record_only(event, seller)
        if not any(o.status in (PAID, REFUNDING, REFUNDED) for o in orders):
            raise _Retry(f"cart {cart_id!r} is not paid yet")
        refunds = [r for r in await self.f.gateway.list_refunds(
            payment_intent=str(intent), account=orders[0].charged_on)
            if r.get("status") in ("succeeded", "pending")]
        by_line = refunds_by_line(refunds, {o.order_id for o in orders})
        separate = self.f.split_sales if orders[0].transfer_group else None
        mirror = bookings.SELLER if separate is None else bookings.CLEARING
        currency = str(charge.get("currency") or orders[0].currency)
        now = time.time()
        async with self.store.db.transaction() as tx:
            if not await self.store.record_event(tx, seller, event.id, event.type,
                                                 Outcome.PROCESSED, now):
                return Outcome.DUPLICATE
            for order in orders:
                if order.order_id not in by_line:
                    continue
                # a line's refunds add up to a running total: book what it grew by
                total = sum(int(r["amount"]) for r in by_line[order.order_id])
                grew = await self.store.refund_growth(tx, seller, order.order_id, total)
                if grew is None:
                    raise _Retry(f"another refund of order {order.order_id!r} was booked "
                                 "meanwhile")
                if grew:
                    cause = f"refund:{order.order_id}:{total}"
                    await self.f.ledger.record(tx, seller, bookings.refund(
                        cause, currency, amount=grew, imposed=True, mirror=mirror))
                    if separate is not None:
                        await separate.queue_reversal(tx, order, cause=cause, amount=grew)
                await self._close_refunded(tx, order, now)
            for refund in by_line.get(None, []):
                # made in Stripe's dashboard, naming no line: the books follow the charge
                cause = f"refund:cart:{cart_id}:{refund['id']}"
                posted = await self.f.ledger.record(tx, seller, bookings.refund(
                    cause, currency, amount=int(refund["amount"]), imposed=True,
                    mirror=mirror))
                if separate is not None and not posted.duplicate:
                    await separate.queue_shared_reversals(
                        tx, await self.orders(seller, cart_id, tx), cause=cause,
                        amount=int(refund["amount"]))
            if 0 < int(charge.get("amount") or 0) <= int(charge.get("amount_refunded") or 0):
                for order in orders:  # the whole charge went back: so did every line
                    await self._close_refunded(tx, order, now)
        return Outcome.PROCESSED

    async def _close_refunded(self, tx: Any, order: Order, now: float) -> None:
        await self.store.set_order(tx, order.account_id, order.order_id, status=REFUNDED,
                                   refunded_at=now, expect=(PAID, REFUNDING))
        await self.store.revoke_licence(tx, order.account_id, order.order_id)


def refunds_by_line(refunds: list[dict[str, Any]],
                    lines: set[str]) -> dict[str | None, list[dict[str, Any]]]:
    """A cart charge's ``refunds`` by the line (order id) each names in its metadata; a
    refund naming none of ``lines`` (one made in Stripe's dashboard) under None."""
    found: dict[str | None, list[dict[str, Any]]] = {}
    for refund in refunds:
        named = str((refund.get("metadata") or {}).get("order_id", ""))
        found.setdefault(named if named in lines else None, []).append(refund)
    return found


async def _recount_closed(tx: Any, lines: list[Order]) -> None:
    """Count again the coupon use a cart's closed lines gave back (only the line that
    carries the coupon has one), as a single checkout paid late does."""
    from business.marketplace.checkout import recount_coupon

    for line in lines:
        if line.status not in WAITING:
            await recount_coupon(tx, line)
