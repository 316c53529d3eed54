"""Checkout: a buyer's order for one tier of one beat, paid on a Stripe Checkout Session.

The order keeps the price and currency the session was made with, so a price changed
during checkout charges what the session said. The session is a direct charge on the
seller's connected account (direct sales carry no platform fee), made through
:class:`~business.marketplace.stripe_gateway.StripeGateway` with the idempotency key
``("checkout", order_id)``.

An exclusive tier is **held** for its checkout: a conditional ``UPDATE`` marks the beat
reserved for the order until the session expires, so of two buyers racing for an
exclusive one gets the session and the other a :class:`NotForSale` before paying
(the row lock on PostgreSQL, the one writer on SQLite, decide who). While an exclusive
is held or sold, no lease checkout starts; a lease paid for after the exclusive sale
(its session began before the hold) is refunded by :mod:`.fulfilment`.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from business.marketplace.coupons import MIN_CHARGE, Coupons
from business.marketplace.errors import NotForSale, NotFoundHere, PaymentError
from business.marketplace.fees import check_fee_bp, discovery_fee
from business.marketplace.models import EXPIRED, FAILED, ON_SALE, OPEN, PROCESSING, WAITING, Order
from business.marketplace.split_sales import has_split
from business.marketplace.store import MarketStore, new_id
from business.marketplace.stripe_gateway import StripeGateway, idempotency_key

logger = logging.getLogger(__name__)
#: Stripe's shortest Checkout Session life is 30 minutes; ours leaves a margin.
MIN_EXPIRY_S = 1800
#: Seconds past a session's expiry before the sweep expires its order (Stripe's own
#: ``checkout.session.expired`` usually comes first).
SWEEP_GRACE_S = 300.0
#: Seconds an order waits for a delayed payment (a bank debit) once its session completed
#: unpaid, its exclusive held, before the sweep gives up on it: SEPA debits take up to 14
#: business days, so three weeks.
PROCESSING_S = 21 * 86_400.0
#: The first key of the advisory lock that orders one buyer's checkout starts in a store.
OPEN_CHECKOUTS_LOCK = 711_301


@dataclass(frozen=True)
class Started:
    """An order and the session to pay it on."""

    order: Order
    url: str
    expires_at: int


class Checkout:
    """Starts checkouts (the payment's outcome arrives by webhook: :mod:`.fulfilment`)."""

    def __init__(self, store: MarketStore, gateway: StripeGateway | None, *,
                 expiry_s: int = 3600, success_url: str = "", cancel_url: str = "",
                 coupons: Coupons | None = None, max_open: int = 5,
                 discovery_fee_bp: int = 0) -> None:
        if expiry_s < MIN_EXPIRY_S + 60:
            raise ValueError(f"checkout_expiry_s must be at least {MIN_EXPIRY_S + 60} "
                             "(Stripe keeps a session open 30 minutes at least)")
        self.store = store
        self.gateway = gateway
        self.expiry_s = expiry_s
        self.success_url = success_url
        self.cancel_url = cancel_url
        self.coupons = coupons
        #: Open (unexpired) checkouts one buyer may have in one store at a time.
        self.max_open = max_open
        #: The platform's fee on discovery sales (:mod:`.fees`), in basis points.
        self.discovery_fee_bp = check_fee_bp(discovery_fee_bp)
        #: ``await member_discount(tx, seller, buyer)``: basis points off for a member
        #: of the seller's store (:mod:`.memberships`), after any coupon.
        self.member_discount: Callable[[Any, str, str], Awaitable[int]] | None = None

    async def start(self, buyer: str, seller: str, beat_id: str, tier_name: str, *,
                    success_url: str | None = None, cancel_url: str | None = None,
                    email: str | None = None,
                    referral: dict[str, str] | None = None,
                    coupon: str | None = None) -> Started:
        """Open an order and its Checkout Session; :class:`NotForSale` when it cannot be
        bought now (or ``coupon`` does not apply: :mod:`.coupons`), :class:`NotFoundHere`
        for an unknown beat or tier."""
        if self.gateway is None:
            raise NotForSale("payments are not configured on this server: set "
                             "plugins.marketplace.stripe.api_key")
        beat = await self.store.beat(seller, beat_id)
        tier = beat.tier(tier_name) if beat else None
        if beat is None or tier is None or not tier.active:
            raise NotFoundHere(f"no beat {beat_id!r} with tier {tier_name!r} on sale by "
                               f"{seller!r}")
        if buyer == seller:
            raise NotForSale("this is your own beat: sellers cannot buy their own licences")
        if beat.status != ON_SALE:
            raise NotForSale(f"beat {beat_id!r} was sold with exclusive rights and is off "
                             "sale")
        stripe_account = await self.store.stripe_account(seller)
        if not stripe_account:
            raise NotForSale("the seller has not connected a Stripe account yet, so the beat "
                             "cannot be paid for: ask them to finish onboarding")
        if await has_split(self.store.db, seller, [beat_id]):
            # a direct charge would leave the collaborators unpaid: the cart's checkout
            # pays them (.split_sales)
            raise NotForSale(f"beat {beat_id!r} is shared with collaborators and is sold "
                             f"through the cart: PUT /api/marketplace/carts/{seller}/items/"
                             f"{beat_id}, then POST /api/marketplace/carts/{seller}/checkout")
        now = time.time()
        expires = int(now) + self.expiry_s
        order = Order(seller, new_id("ord"), beat_id, tier.tier, buyer, tier.price,
                      tier.currency, tier.exclusive, OPEN, stripe_account, None, None, "",
                      now)
        db = self.store.db
        async with db.transaction() as tx:
            # one start per (seller, buyer) at a time: COUNT-then-INSERT under READ
            # COMMITTED would let racing starts all pass max_open
            await tx.hold_lock(OPEN_CHECKOUTS_LOCK, f"{seller}\n{buyer}")
            opened = await tx.fetchval(
                "SELECT COUNT(*) FROM mkt_orders WHERE account_id = ? AND buyer_account = ? "
                "AND status IN (?, ?) AND COALESCE(expires_at, created_at + ?) > ?",
                seller, buyer, OPEN, PROCESSING, float(self.expiry_s), now)
            if int(opened or 0) >= self.max_open:
                raise NotForSale(f"you have {opened} checkouts open in this store: pay one "
                                 "of them, or wait until they expire (at most "
                                 f"{self.expiry_s // 60} minutes)")
            await refuse_clearing(tx, seller, buyer, [(beat_id, tier.tier)])
            if tier.exclusive:
                if not await self.store.reserve(tx, seller, beat_id, order.order_id, now,
                                                float(expires)):
                    raise NotForSale(f"another buyer is checking out the exclusive rights "
                                     f"of beat {beat_id!r} (or bought them): try again "
                                     "later")
            else:
                held = await tx.fetchrow(
                    "SELECT status, reserved_order, reserved_until FROM mkt_beats "
                    "WHERE account_id = ? AND beat_id = ?", seller, beat_id)
                if held is None or held["status"] != ON_SALE:
                    raise NotForSale(f"beat {beat_id!r} was sold with exclusive rights")
                if held["reserved_order"] and (held["reserved_until"] or 0) > now:
                    raise NotForSale(f"a buyer is checking out the exclusive rights of beat "
                                     f"{beat_id!r}: leases are paused until they finish or "
                                     "their checkout expires (a bank debit can take days "
                                     "to clear)")
            used_code = None
            if coupon and self.coupons is not None:
                amount, used = await self.coupons.redeem(tx, seller, coupon, beat_id,
                                                         tier.price, tier.currency, now)
                order = dataclasses.replace(order, amount=amount, note=f"coupon {used.code}")
                used_code = used.code
            if self.member_discount is not None:
                off = await self.member_discount(tx, seller, buyer)
                if off:
                    note = f"member discount {off / 100:g} %"
                    order = dataclasses.replace(
                        order, amount=order.amount - order.amount * off // 10_000,
                        note=f"{order.note}; {note}" if order.note else note)
                    if order.amount < MIN_CHARGE:  # a coupon took most of it already
                        raise NotForSale(
                            "the price after your coupon and member discount is below "
                            f"Stripe's smallest charge ({MIN_CHARGE} minor units): buy "
                            "without the coupon, or in a cart with another beat")
            await self.store.insert_order(tx, order)
            await self.store.set_order(tx, seller, order.order_id, expires_at=float(expires),
                                       coupon=used_code)
        meta = {"order_id": order.order_id, "seller": seller, "beat_id": beat_id,
                "tier": tier.tier, "buyer": buyer,
                **{k: v for k, v in (referral or {}).items() if k in REFERRAL and v}}
        fee = discovery_fee(order.amount, self.discovery_fee_bp, referral)
        intent_data: dict[str, Any] = {"metadata": meta}
        if fee:
            meta["discovery_fee"] = str(fee)
            intent_data["application_fee_amount"] = fee
        try:
            session = await self.gateway.create_checkout_session(
                idempotency_key=idempotency_key("checkout", order.order_id), mode="payment",
                line_items=[{"quantity": 1, "price_data": {
                    "currency": order.currency, "unit_amount": order.amount,
                    "product_data": {"name": f"{beat.title} ({tier.name})"}}}],
                success_url=(success_url or self.success_url).replace(
                    "{ORDER_ID}", order.order_id),
                cancel_url=(cancel_url or self.cancel_url or None),
                customer_email=email, metadata=meta, client_reference_id=order.order_id,
                payment_intent_data=intent_data, expires_at=expires,
                account=stripe_account, consent_collection=CONSENT)
        except PaymentError:
            async with db.transaction() as tx:
                await close_order(tx, self.store, order, FAILED,
                                  note="Stripe refused the checkout session")
            raise
        async with db.transaction() as tx:
            await self.store.set_order(tx, seller, order.order_id, session_id=session.id)
        started = Order(**{**order.__dict__, "session_id": session.id})
        return Started(started, str(session.url), expires)

    async def sweep(self, now: float | None = None, *, grace_s: float = SWEEP_GRACE_S,
                    limit: int = 500) -> int:
        """Expire open checkouts whose session's life ended ``grace_s`` ago (their
        ``checkout.session.expired`` lost or late), and processing ones whose delayed
        payment did not come in :data:`PROCESSING_S`: holds released, coupon uses given
        back; how many. A completed event arriving after still fulfils (:mod:`.fulfilment`
        books it, and an exclusive taken meanwhile is refunded)."""
        now = time.time() if now is None else now
        rows = await self.store.db.fetch(
            "SELECT account_id, order_id FROM mkt_orders WHERE status IN (?, ?) "
            "AND COALESCE(expires_at, created_at + ?) <= ? LIMIT ?",
            OPEN, PROCESSING, float(self.expiry_s), now - grace_s, limit)
        expired = 0
        for row in rows:
            async with self.store.db.transaction() as tx:
                order = await self.store.order(row["account_id"], row["order_id"], tx=tx)
                # due as the row is when it closes: a delayed payment may have just moved it
                if order is not None and await close_order(
                        tx, self.store, order, EXPIRED, note="the checkout expired",
                        due=(self.expiry_s, now - grace_s)):
                    expired += 1
        if expired:
            logger.info("expired %d checkouts past their session's life", expired)
        return expired

    async def order_of_buyer(self, buyer: str, order_id: str) -> Order:
        order = await self.store.buyer_order(buyer, order_id)
        if order is None:
            raise NotFoundHere(f"no order {order_id!r} of yours")
        return order


async def refuse_clearing(tx: Any, seller: str, buyer: str,
                          lines: list[tuple[str, str]]) -> None:
    """:class:`NotForSale` when the buyer's bank debit for one of ``lines`` (beat id,
    tier) is still clearing (a ``processing`` order): checking it out again would make
    them pay twice."""
    for beat_id, tier in lines:
        if await tx.fetchval(
                "SELECT COUNT(*) FROM mkt_orders WHERE account_id = ? AND buyer_account = ? "
                "AND beat_id = ? AND tier = ? AND status = ?",
                seller, buyer, beat_id, tier, PROCESSING):
            raise NotForSale(f"your bank payment for the {tier} of beat {beat_id!r} is still "
                             "clearing: it is yours once it arrives (it can take days)")


async def close_order(tx: Any, store: MarketStore, order: Order, status: str, *,
                      note: str | None = None, due: tuple[float, float] | None = None
                      ) -> bool:
    """End an open or processing checkout as ``status`` (expired, failed) in ``tx``: its
    exclusive hold released and its coupon's use given back, once (only such an order
    changes; with ``due``, only one that expires by then, :meth:`.MarketStore.set_order`);
    whether it changed."""
    values: dict[str, Any] = {"status": status}
    if note is not None:
        values["note"] = f"{order.note}; {note}" if order.note else note
    if not await store.set_order(tx, order.account_id, order.order_id, expect=WAITING,
                                 due=due, **values):
        return False
    await store.release(tx, order.account_id, order.beat_id, order.order_id)
    coupon = await tx.fetchval("SELECT coupon FROM mkt_orders WHERE account_id = ? AND "
                               "order_id = ?", order.account_id, order.order_id)
    if coupon:
        await tx.execute("UPDATE mkt_coupons SET uses = uses - 1 WHERE account_id = ? AND "
                         "code = ? AND uses > 0", order.account_id, coupon)
    return True


async def recount_coupon(tx: Any, order: Order) -> None:
    """A checkout closed before (its coupon's use given back) was paid after all: count
    the use again (the buyer paid the coupon's price; never refused for the limit)."""
    coupon = await tx.fetchval("SELECT coupon FROM mkt_orders WHERE account_id = ? AND "
                               "order_id = ?", order.account_id, order.order_id)
    if coupon:
        await tx.execute("UPDATE mkt_coupons SET uses = uses + 1 WHERE account_id = ? AND "
                         "code = ?", order.account_id, coupon)


#: Stripe Checkout asks the buyer whether the seller may send them news (the customer
#: CSV names only those who agreed: :mod:`.customers`).
CONSENT = {"promotions": "auto"}

#: Where a buyer came from, carried in the session's metadata to the sale event.
REFERRAL = ("ref", "utm_source", "utm_campaign")


def metadata_of(obj: dict[str, Any]) -> dict[str, str]:
    """The marketplace's metadata on a Stripe object (empty when it is not ours)."""
    meta = obj.get("metadata") or {}
    return meta if meta.get("order_id") and meta.get("seller") else {}
