"""Fulfilment: Stripe's webhooks turn paid orders into licences, exactly once.

The endpoint verifies ``Stripe-Signature`` (:func:`~business.marketplace.webhooks.verify`)
and handles each event in **one database transaction** with its effects: the event id is
recorded in ``mkt_webhook_events`` (a second delivery finds it and is a duplicate), the
order marked paid, the sale posted to the ledger (:func:`~business.marketplace.bookings.sale`,
key ``sale:<order>``), the beat taken off sale (exclusive) or its lease counted, and the
licence granted (one per order: a unique key). A worker killed anywhere in between commits
nothing, answers Stripe no 2xx, and the redelivered event does it all once.

=============================  ==============================================================
event                          effect
=============================  ==============================================================
checkout.session.completed     the order is paid; a licence is granted, or (the beat was
                               sold exclusively meanwhile) the order is refunded by the
                               ``marketplace.refund`` job
checkout.session.expired       the order expires; an exclusive hold is released
checkout.session.async_payment_succeeded, _failed
                               a delayed payment (a bank debit) settled: as completed; or
                               failed: the order fails, its hold and coupon use released
                               (completed with ``payment_status`` ``unpaid`` waits for it)
charge.refunded                the refund booked; once the whole payment is refunded the
                               order is refunded and its licence revoked (a partial refund
                               leaves it paid)
charge.dispute.*, payout.*     disputes and payouts: :mod:`.money_events`
subscription, invoice events   memberships (and a refund of a membership invoice):
                               :mod:`.membership_events`, asked first
other types                    recorded, ignored
=============================  ==============================================================

An event about an order not stored yet (or a refund of one not paid yet) answers
:data:`~business.marketplace.webhooks.RETRY_STATUS`, so Stripe sends it again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from business.marketplace import bookings, customers, metrics
from business.marketplace.cart_fulfilment import CART_TYPES, CartEvents, cart_metadata_of
from business.marketplace.checkout import (
    PROCESSING_S,
    REFERRAL,
    close_order,
    metadata_of,
    recount_coupon,
)
from business.marketplace.errors import NotForSale, NotFoundHere
from business.marketplace.ledger import Ledger
from business.marketplace.membership_events import MembershipEvents
from business.marketplace.models import (
    EXPIRED,
    FAILED,
    OPEN,
    PAID,
    PROCESSING,
    REFUNDED,
    REFUNDING,
    UNPAID,
    WAITING,
    Licence,
    Order,
)
from business.marketplace.money_events import TYPES as MONEY_TYPES
from business.marketplace.money_events import MoneyEvents
from business.marketplace.schemas import SaleEvent
from business.marketplace.split_sales import SplitSales
from business.marketplace.store import MarketStore, new_id
from business.marketplace.stripe_gateway import StripeGateway, idempotency_key
from business.marketplace.webhooks import Outcome, StripeEvent, verify

logger = logging.getLogger(__name__)

#: ``await enqueue_refund(tx, order)``: queue the refund of ``order`` in ``tx``.
RefundQueue = Callable[[Any, Order], Awaitable[None]]
#: ``await on_licence(tx, licence)``: more work for a granted licence, queued in ``tx``
#: (its contract: :mod:`.contracts`).
LicenceHook = Callable[[Any, Licence], Awaitable[None]]
#: ``publish(tx, name, payload, account_id)``: an event on the platform's bus, in ``tx``.
Publish = Callable[[Any, str, dict[str, Any], str], Awaitable[Any]]
#: Published when an order is paid: social attributes it to a post, analytics counts it.
SALE_EVENT = "marketplace.sale"


def _from_sellers_account(event: StripeEvent, order: Order) -> bool:
    """Whether ``event`` came from the Stripe account the order was charged through (the
    seller's connected account, or the platform's own for a separate charge: no
    ``account``). Metadata alone names the order: another account's event carrying
    copied metadata must not fulfil or refund it."""
    if (event.account or None) == order.charged_on:
        return True
    logger.warning("Stripe event %s (%s) came from account %r, but order %s was charged "
                   "through %r: ignored", event.id, event.type, event.account, order.order_id,
                   order.charged_on)
    return False


async def _nothing(*_: Any) -> None:
    return None


#: Stripe's events of a Checkout Session paid by a delayed method (a bank debit).
ASYNC_PAID, ASYNC_FAILED = ("checkout.session.async_payment_succeeded",
                            "checkout.session.async_payment_failed")


def awaits_payment(session: dict[str, Any]) -> bool:
    """Whether a completed Checkout Session's money has not arrived yet (a delayed
    method: ``payment_status`` ``unpaid`` until ``async_payment_succeeded``), so nothing
    may be granted for it."""
    return session.get("payment_status") == "unpaid"


def _nothing_paid(order: Order) -> bool:
    """Whether no money was paid for ``order`` (free, or without a payment)."""
    return order.amount == 0 or not order.payment_intent


def refunded_in_full(order: Order, charge: dict[str, Any]) -> bool:
    """Whether a ``charge.refunded`` event ends ``order``: the whole charge went back (as
    our own refunds always take it) or at least the order's amount did. A partial refund
    made elsewhere (Stripe's dashboard) is booked but leaves the order paid and its
    licence active."""
    refunded = int(charge.get("amount_refunded") or 0)
    return 0 < int(charge.get("amount") or 0) <= refunded or refunded >= order.amount


class _Retry(Exception):
    """Roll the event's transaction back and have Stripe send it again."""


class Fulfilment:
    """Handles the marketplace's Stripe events."""

    def __init__(self, store: MarketStore, ledger: Ledger, gateway: StripeGateway | None,
                 secrets: str | Sequence[str], enqueue_refund: RefundQueue,
                 publish: Publish | None = None, on_licence: LicenceHook | None = None
                 ) -> None:
        self.store = store
        self.on_licence = on_licence
        #: ``await carts_take(tx, buyer, seller, beat_ids)``: paid lines off the cart.
        self.carts_take: Callable[[Any, str, str, list[str]], Awaitable[None]] = _nothing
        #: disputes and payouts of the connected accounts (:mod:`.money_events`)
        self.money: MoneyEvents | None = None
        self.cart = CartEvents(self)
        #: memberships' subscriptions and invoices (:mod:`.membership_events`)
        self.memberships: MembershipEvents | None = None
        #: ``await publish(tx, name, payload, account_id)``: an event in ``tx``
        self.publish = publish
        self.ledger = ledger
        self.gateway = gateway
        self.secrets = secrets
        self.enqueue_refund = enqueue_refund
        #: the transfers of split lines paid by a separate charge (:mod:`.split_sales`)
        self.split_sales: SplitSales | None = None

    async def receive(self, payload: bytes, signature: str | None) -> Outcome:
        """Verify and handle one delivery; its outcome (``http_status`` answers Stripe).
        A forged, stale or malformed one raises ``WebhookRejected``."""
        event = verify(payload, signature, self.secrets)
        return await metrics.counted(event.created, self._handle(event))

    async def _handle(self, event: StripeEvent) -> Outcome:
        meta = metadata_of(event.object)
        seller = meta.get("seller", "")
        handler = {"checkout.session.completed": self._paid, ASYNC_PAID: self._paid,
                   "checkout.session.expired": self._expired, ASYNC_FAILED: self._expired,
                   "charge.refunded": self._refunded}.get(event.type)
        cart = cart_metadata_of(event.object) if not meta else {}
        try:
            if self.memberships is not None:
                handled = await self.memberships.handle(event)
                if handled is not None:
                    return handled
            if self.money is not None and event.type in MONEY_TYPES:
                return await self.money.handle(event)
            if cart and event.type in CART_TYPES:
                return await self.cart.handle(event, cart)
            if handler is None or not meta:
                return await self._record_only(event, seller or cart.get("seller", ""))
            return await handler(event, meta)
        except _Retry as exc:
            logger.info("Stripe event %s (%s) retried later: %s", event.id, event.type, exc)
            return Outcome.RETRY

    async def _record_only(self, event: StripeEvent, seller: str) -> Outcome:
        async with self.store.db.transaction() as tx:
            new = await self.store.record_event(tx, seller, event.id, event.type,
                                                Outcome.IGNORED, time.time())
        return Outcome.IGNORED if new else Outcome.DUPLICATE

    async def processing(self, event: StripeEvent, orders: list[Order]) -> Outcome:
        """A session completed by a delayed method whose money has not arrived: its open
        orders wait as ``processing`` for :data:`~.checkout.PROCESSING_S`, their
        exclusives held that long (not freed with the session's life, to be sold to
        someone else and the debit refunded), until ``async_payment_succeeded`` fulfils or
        ``async_payment_failed`` fails them."""
        seller, now = orders[0].account_id, time.time()
        until = now + PROCESSING_S
        async with self.store.db.transaction() as tx:
            if not await self.store.record_event(tx, seller, event.id, event.type,
                                                 Outcome.PROCESSED, now):
                return Outcome.DUPLICATE
            for order in orders:
                if await self.store.set_order(tx, seller, order.order_id, expect=(OPEN,),
                                              status=PROCESSING, expires_at=until):
                    await self.store.hold_until(tx, seller, order.beat_id, order.order_id,
                                                until)
        return Outcome.PROCESSED

    async def _order(self, meta: dict[str, str], tx: Any = None) -> Order:
        order = await self.store.order(meta["seller"], meta["order_id"], tx=tx)
        if order is None:
            raise _Retry(f"order {meta['order_id']!r} is not stored (yet)")
        return order

    async def _fee(self, order: Order, session: dict[str, Any]) -> tuple[int, str | None]:
        """Stripe's fee on the payment and its balance transaction's id."""
        fee, txn, _ = await self.payment(order, session)
        return fee, txn

    async def payment(self, order: Order, session: dict[str, Any]
                      ) -> tuple[int, str | None, str | None]:
        """Stripe's fee on a session's payment, its balance transaction's id and the
        charge's id (the ``source_transaction`` of a split sale's transfers)."""
        if self.gateway is None or not session.get("payment_intent"):
            return 0, None, None
        intent = await self.gateway.retrieve_payment_intent(
            str(session["payment_intent"]), expand=["latest_charge.balance_transaction"],
            account=order.charged_on)
        charge = intent.to_dict().get("latest_charge") or {}
        if not isinstance(charge, dict):
            return 0, None, None
        txn = charge.get("balance_transaction")
        if not isinstance(txn, dict):
            return 0, None, charge.get("id")
        return int(txn.get("fee") or 0), str(txn.get("id")), charge.get("id")

    async def _paid(self, event: StripeEvent, meta: dict[str, str]) -> Outcome:
        session = event.object
        order = await self._order(meta)
        if not _from_sellers_account(event, order):
            return await self._record_only(event, order.account_id)
        if await self.store.event_outcome(order.account_id, event.id):
            return Outcome.DUPLICATE
        if awaits_payment(session):  # granted once async_payment_succeeded says it is paid
            return await self.processing(event, [order])
        fee, txn = (await self._fee(order, session) if order.status in UNPAID else (0, None))
        amount = int(session.get("amount_total") or order.amount)
        currency = str(session.get("currency") or order.currency)
        now = time.time()
        db = self.store.db
        async with db.transaction() as tx:
            if not await self.store.record_event(tx, order.account_id, event.id, event.type,
                                                 Outcome.PROCESSED, now):
                return Outcome.DUPLICATE
            order = await self._order(meta, tx)
            if order.status not in UNPAID:
                return Outcome.PROCESSED  # fulfilled by an earlier event of the session
            # paid after the sweep or the expired event closed it: its hold is gone (an
            # exclusive sold meanwhile makes this payment a refund below) and its coupon's
            # use was given back (taken again once it is sold)
            closed_before = order.status not in WAITING
            platform_fee = min(int(meta.get("discovery_fee") or 0), amount)  # .fees
            await self.ledger.record(tx, order.account_id, bookings.sale(
                f"sale:{order.order_id}", currency, gross=amount,
                stripe_fee=max(0, fee - platform_fee), platform_fee=platform_fee,
                stripe_txn=txn))
            note = ("the beat was sold with exclusive rights before this payment arrived: "
                    "the payment is refunded in full")
            if amount != order.amount or currency != order.currency:
                # never grant a licence for another price than the order's
                logger.warning("order %s: Stripe charged %d %s, the order said %d %s",
                               order.order_id, amount, currency, order.amount, order.currency)
                sold = False
                note = (f"Stripe charged {amount} {currency}, not the order's {order.amount} "
                        f"{order.currency}: the payment is refunded in full")
            elif order.exclusive:
                sold = await self.store.sell_exclusive(tx, order.account_id, order.beat_id,
                                                       order.order_id, now)
            else:
                sold = await self.store.sell_lease(tx, order.account_id, order.beat_id)
            intent = session.get("payment_intent")
            if not sold:
                await self.store.set_order(
                    tx, order.account_id, order.order_id, status=REFUNDING,
                    payment_intent=intent, paid_at=now, note=note)
                await self.enqueue_refund(tx, Order(**{**order.__dict__,
                                                       "payment_intent": intent}))
                return Outcome.PROCESSED
            await self.store.set_order(tx, order.account_id, order.order_id, status=PAID,
                                       payment_intent=intent, paid_at=now)
            if closed_before:
                await recount_coupon(tx, order)
            await customers.record(tx, order.account_id, [order.order_id],
                                   order.buyer_account, session, now)
            await self._grant(tx, order, now)
            if self.publish is not None:
                await self.publish(tx, SALE_EVENT, SaleEvent(
                    account_id=order.account_id, order_id=order.order_id,
                    beat_id=order.beat_id, tier=order.tier, amount_cents=amount,
                    currency=currency, at=now,
                    **{k: meta[k] for k in REFERRAL if meta.get(k)}).model_dump(),
                    order.account_id)
        return Outcome.PROCESSED

    async def _grant(self, tx: Any, order: Order, now: float) -> Licence:
        """Grant the licence of a paid order in ``tx`` (its contract queued); the licence.
        A sandbox order's exclusive licence holds no real exclusivity."""
        beat = await self.store.beat(order.account_id, order.beat_id, tx=tx)
        if beat is None:
            raise NotFoundHere(f"beat {order.beat_id!r} of order {order.order_id!r} is gone")
        tier = beat.tier(order.tier)
        if tier is None:
            raise NotFoundHere(f"tier {order.tier!r} of order {order.order_id!r} is gone")
        files = [f for f in beat.files if f.kind in tier.files]
        licence = Licence(
            order.account_id, new_id("lic"), order.order_id, order.beat_id, order.tier,
            order.buyer_account, beat.title, files, dict(tier.rights), order.exclusive, 0,
            tier.download_limit, "active", now)
        if order.sandbox:  # holds no real exclusivity: the beat's stays free
            await self.store.insert_licence(tx, licence, sandbox=True)
        else:
            await self.store.insert_licence(tx, licence)
        if self.on_licence is not None:
            await self.on_licence(tx, licence)
        return licence

    #: the licence of a paid order (a member's free download is granted the same way)
    grant = _grant

    async def _expired(self, event: StripeEvent, meta: dict[str, str]) -> Outcome:
        order = await self._order(meta)
        if not _from_sellers_account(event, order):
            return await self._record_only(event, order.account_id)
        async with self.store.db.transaction() as tx:
            if not await self.store.record_event(tx, order.account_id, event.id, event.type,
                                                 Outcome.PROCESSED, time.time()):
                return Outcome.DUPLICATE
            await close_order(tx, self.store, order,
                              FAILED if event.type == ASYNC_FAILED else EXPIRED,
                              note="the delayed payment failed"
                              if event.type == ASYNC_FAILED else None)
        return Outcome.PROCESSED

    async def _refunded(self, event: StripeEvent, meta: dict[str, str]) -> Outcome:
        charge = event.object
        order = await self._order(meta)
        if not _from_sellers_account(event, order):
            return await self._record_only(event, order.account_id)
        if order.status not in (PAID, REFUNDING, REFUNDED):
            raise _Retry(f"order {order.order_id!r} is not paid yet")
        refunded = int(charge.get("amount_refunded") or 0)
        now = time.time()
        async with self.store.db.transaction() as tx:
            if not await self.store.record_event(tx, order.account_id, event.id, event.type,
                                                 Outcome.PROCESSED, now):
                return Outcome.DUPLICATE
            # amount_refunded is the charge's running total: book what it grew by
            grew = await self.store.refund_growth(tx, order.account_id, order.order_id,
                                                  refunded)
            if grew is None:
                raise _Retry(f"another refund of order {order.order_id!r} was booked "
                             "meanwhile")
            if grew:
                await self.ledger.record(tx, order.account_id, bookings.refund(
                    f"refund:{order.order_id}:{refunded}", str(charge["currency"]),
                    amount=grew, imposed=True))
            if refunded_in_full(order, charge):
                await self.store.set_order(tx, order.account_id, order.order_id,
                                           status=REFUNDED, refunded_at=now,
                                           expect=(PAID, REFUNDING))
                await self.store.revoke_licence(tx, order.account_id, order.order_id)
        return Outcome.PROCESSED

    async def refund(self, seller: str, order_id: str) -> dict[str, Any]:
        """Ask Stripe to refund an order in full (the ``marketplace.refund`` job; the same
        key every attempt); ``charge.refunded`` then books it and revokes the licence."""
        order = await self.store.order(seller, order_id)
        if order is None:
            raise NotFoundHere(f"no order {order_id!r} of {seller!r}")
        if order.status == REFUNDED:
            return {"order_id": order_id, "status": REFUNDED}
        if _nothing_paid(order):  # queued before such refunds were settled at once
            async with self.store.db.transaction() as tx:
                await self._settle_unpaid(tx, order)
            return {"order_id": order_id, "status": REFUNDED}
        if self.gateway is None:
            raise NotFoundHere(f"order {order_id!r} has no payment to refund")
        # a cart's line is refunded alone: its own amount of the cart's one payment
        cart_id = await self.store.db.fetchval(
            "SELECT cart_id FROM mkt_orders WHERE account_id = ? AND order_id = ?",
            seller, order_id)
        found = await self.gateway.refund(
            idempotency_key=idempotency_key("refund", order.account_id, order_id),
            payment_intent=order.payment_intent, reason="requested_by_customer",
            amount=order.amount if cart_id else None,
            metadata={"order_id": order_id, "seller": seller},
            account=order.charged_on)
        return {"order_id": order_id, "refund": str(found.id)}

    async def request_refund(self, seller: str, order_id: str) -> Order:
        """The seller refunds a paid order: queued as the ``marketplace.refund`` job."""
        async with self.store.db.transaction() as tx:
            order = await self.store.order(seller, order_id, tx=tx)
            if order is None:
                raise NotFoundHere(f"no order {order_id!r} in this account")
            if order.sandbox:
                raise NotForSale(f"order {order_id!r} is a sandbox sale (test mode): no "
                                 "money was paid, so there is nothing to refund")
            if order.status not in (PAID, REFUNDING, REFUNDED):
                raise NotForSale(f"order {order_id!r} is {order.status}: only a paid order "
                                 "can be refunded")
            if order.status == PAID and _nothing_paid(order):
                await self._settle_unpaid(tx, order)
            elif order.status == PAID:
                await self.store.set_order(tx, seller, order_id, status=REFUNDING,
                                           note="refunded by the seller")
                await self.enqueue_refund(tx, order)
        found = await self.store.order(seller, order_id)
        assert found is not None
        return found

    async def _settle_unpaid(self, tx: Any, order: Order) -> None:
        """Refund an order nothing was paid for (a bulk deal's free line, a member's free
        download): no money goes back and no charge.refunded will come, so it is refunded
        and its licence revoked now."""
        await self.store.set_order(tx, order.account_id, order.order_id, status=REFUNDED,
                                   refunded_at=time.time(),
                                   note="refunded by the seller (nothing was paid)",
                                   expect=(PAID, REFUNDING))
        await self.store.revoke_licence(tx, order.account_id, order.order_id)
