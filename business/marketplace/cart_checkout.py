"""A cart's checkout: one order per line, one Stripe Checkout Session with a line item each.

The orders are written in one transaction with the same checks as a single checkout
(:mod:`.checkout`), all carrying the cart checkout's id (``mkt_orders.cart_id``), each at
its line's price after the deal (a free line: 0). **An exclusive another buyer holds or
bought is refused at checkout** (409 naming the beat, nothing charged): every exclusive
line is held with the same conditional ``UPDATE`` as a single checkout, in the orders'
transaction, so of two carts racing for one exclusive one gets the session. A lease
line whose beat is sold exclusively between checkout and payment (its cart did not hold
it) is refunded alone when the payment arrives (:mod:`.cart_fulfilment`); the other
lines are fulfilled.

**A cart is never payable twice.** While a checkout of the buyer's cart in a store is
open (not expired), checking out the same lines at the same prices again (a double
click, a second tab) answers that checkout's Stripe session, not a new one; checking out
a changed cart is refused (409) until the open one is paid or expires, so two payable
sessions never hold the same lines.

**A coupon** (``coupon``) prices the lines as :func:`.coupons.cart_amounts` says, after
the deal; its one use is counted in the orders' transaction and recorded on the first
discounted order (``mkt_orders.coupon``), so an expired cart checkout gives it back
once and a late payment counts it again once, as for a single checkout.

**A member** of the seller's store (:mod:`.memberships`) gets the plan's discount off
every line, after the deal and the coupon, as on a single checkout. **The discovery
fee** (:mod:`.fees`) is taken per line, on the line's amount as a single checkout
would, for the lines put in the cart by a buyer the marketplace's discovery sent
(``mkt_cart_items.source``); the lines' fees summed are the session's
``application_fee_amount`` and its metadata's ``discovery_fee``.

**A cart holding a split beat** (one with collaborator splits, :mod:`.splits`) is paid
by a *separate charge* on the platform's own Stripe account instead: the session is made
without ``Stripe-Account``, its PaymentIntent's ``transfer_group`` is the cart id (each
order keeps it, ``mkt_orders.transfer_group``), and no application fee is asked (the
platform keeps each line's discovery fee, ``mkt_orders.platform_fee``, by transferring
the rest); after the payment every line's payees are paid by transfers
(:mod:`.split_sales`), the seller alone for a line without a split.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any

from business.marketplace.carts import Carts
from business.marketplace.checkout import CONSENT, Checkout, close_order, refuse_clearing
from business.marketplace.coupons import MIN_CHARGE, cart_amounts
from business.marketplace.errors import NotForSale, PaymentError
from business.marketplace.fees import discovery_fee
from business.marketplace.models import FAILED, ON_SALE, OPEN, PROCESSING, Order
from business.marketplace.split_sales import has_split
from business.marketplace.store import new_id
from business.marketplace.stripe_gateway import idempotency_key


@dataclass(frozen=True)
class CartStarted:
    """The cart checkout's orders and the session to pay them on."""

    cart_id: str
    orders: list[Order]
    url: str
    expires_at: int
    total: int
    currency: str


def _less(amounts: list[int], off: int) -> list[int]:
    """The amounts with a member's discount of ``off`` basis points (as a single
    checkout rounds it)."""
    return [amount - amount * off // 10_000 for amount in amounts]


async def _member_off(checkout: Checkout, db: Any, seller: str, buyer: str) -> int:
    """The basis points the buyer's membership takes off in the seller's store."""
    if checkout.member_discount is None:
        return 0
    return await checkout.member_discount(db, seller, buyer)


def _content(rows: list[tuple[str, str, int]]) -> list[tuple[str, str, int]]:
    return sorted(rows)


async def _open_cart_checkouts(db: Any, checkout: Checkout, buyer: str, seller: str,
                               now: float) -> dict[str, list[Any]]:
    """The buyer's open, unexpired cart checkouts in the store: their orders by cart id."""
    rows = await db.fetch(
        "SELECT cart_id, beat_id, tier, amount, currency, session_id, expires_at, order_id, "
        "transfer_group FROM mkt_orders WHERE account_id = ? AND buyer_account = ? AND "
        "status = ? AND cart_id IS NOT NULL AND COALESCE(expires_at, created_at + ?) > ? "
        "ORDER BY created_at, order_id", seller, buyer, OPEN, float(checkout.expiry_s), now)
    found: dict[str, list[Any]] = {}
    for row in rows:
        found.setdefault(row["cart_id"], []).append(row)
    return found


async def _open_again(checkout: Checkout, gateway: Any, buyer: str, seller: str, cart: Any,
                      amounts: list[int], stripe_account: str,
                      now: float) -> CartStarted | None:
    """The open checkout of this very cart (same lines, same prices), if there is one;
    :class:`NotForSale` while a checkout of another content of the cart is open."""
    open_carts = await _open_cart_checkouts(checkout.store.db, checkout, buyer, seller, now)
    if not open_carts:
        return None
    wanted = _content([(line.beat.beat_id, line.tier.tier, amount)
                       for line, amount in zip(cart.lines, amounts, strict=True)])
    for cart_id, rows in open_carts.items():
        if _content([(r["beat_id"], r["tier"], int(r["amount"])) for r in rows]) != wanted:
            continue
        session_id = rows[0]["session_id"]
        if not session_id:
            raise NotForSale("a checkout of this cart is being opened: try again in a "
                             "moment")
        session = await gateway.retrieve_checkout_session(
            session_id, account=None if rows[0]["transfer_group"] else stripe_account)
        if getattr(session, "status", "open") != "open":
            raise NotForSale("this cart's checkout is being completed: wait for its "
                             "payment to arrive")
        orders = [await checkout.store.order(seller, r["order_id"]) for r in rows]
        return CartStarted(cart_id, [o for o in orders if o is not None], str(session.url),
                           int(min(r["expires_at"] or now for r in rows)), sum(amounts),
                           str(cart.currency))
    until = min(r["expires_at"] or now for rows in open_carts.values() for r in rows)
    raise NotForSale("you have an open checkout of this cart from before it changed: pay "
                     f"it, or wait until it expires (in about {max(1, int(until - now) // 60)}"
                     " minutes) to check out the changed cart")


async def start_cart(checkout: Checkout, carts: Carts, buyer: str, seller: str, *,
                     success_url: str | None = None, cancel_url: str | None = None,
                     email: str | None = None, coupon: str | None = None) -> CartStarted:
    """Open the orders of ``buyer``'s cart in ``seller``'s store and their session
    (``coupon``: a code of the seller, :mod:`.coupons`)."""
    if checkout.gateway is None:
        raise NotForSale("payments are not configured on this server: set "
                         "plugins.marketplace.stripe.api_key")
    cart = await carts.view(buyer, seller)
    if not cart.lines:
        raise NotForSale("your cart in this store is empty: add beats to it first")
    if cart.total < 50:
        raise NotForSale("the cart's total is below Stripe's smallest charge: add a beat")
    store = checkout.store
    stripe_account = await store.stripe_account(seller)
    if not stripe_account:
        raise NotForSale("the seller has not connected a Stripe account yet, so the cart "
                         "cannot be paid for: ask them to finish onboarding")
    now = time.time()
    amounts = [line.amount for line in cart.lines]
    if coupon:
        if checkout.coupons is None:
            raise NotForSale("coupons are not enabled on this server")
        found = await checkout.coupons.usable(seller, coupon, str(cart.currency), now)
        amounts = cart_amounts(found, [(line.beat.beat_id, line.amount)
                                       for line in cart.lines])
    off = await _member_off(checkout, store.db, seller, buyer)
    amounts = _less(amounts, off)
    if off and sum(amounts) < 50:
        raise NotForSale("the cart's total after your member discount is below Stripe's "
                         "smallest charge: add a beat")
    expires = int(now) + checkout.expiry_s
    cart_id = new_id("cart")
    db = store.db
    # a split beat's line is paid on the platform's account, then transferred
    group = cart_id if await has_split(db, seller, [line.beat.beat_id
                                                    for line in cart.lines]) else None
    orders = [Order(seller, new_id("ord"), line.beat.beat_id, line.tier.tier, buyer,
                    line.amount, line.tier.currency, line.tier.exclusive, OPEN,
                    stripe_account, None, None,
                    f"cart {cart_id}" + (f"; free with {cart.deal.to_json()['label']}"
                                         if line.free and cart.deal else ""), now,
                    transfer_group=group)
              for line in cart.lines]
    again = await _open_again(checkout, checkout.gateway, buyer, seller, cart, amounts,
                              stripe_account, now)
    if again is not None:
        return again
    async with db.transaction() as tx:
        if await _open_cart_checkouts(tx, checkout, buyer, seller, now):
            raise NotForSale("a checkout of this cart is being opened: try again in a "
                             "moment")
        await refuse_clearing(tx, seller, buyer,
                              [(line.beat.beat_id, line.tier.tier) for line in cart.lines])
        opened = await tx.fetchval(
            "SELECT COUNT(DISTINCT COALESCE(cart_id, order_id)) FROM mkt_orders WHERE "
            "account_id = ? AND buyer_account = ? AND status IN (?, ?) AND "
            "COALESCE(expires_at, created_at + ?) > ?",
            seller, buyer, OPEN, PROCESSING, float(checkout.expiry_s), now)
        if int(opened or 0) >= checkout.max_open:
            raise NotForSale(f"you have {opened} checkouts open in this store: pay one of "
                             "them, or wait until they expire")
        used_code = None
        if coupon and checkout.coupons is not None:
            amounts, used = await checkout.coupons.redeem_cart(
                tx, seller, coupon, [(line.beat.beat_id, line.amount) for line in cart.lines],
                str(cart.currency), now)
            used_code = used.code
            orders = [dataclasses.replace(order, amount=amount,
                                          note=f"{order.note}; coupon {used.code}")
                      if amount != line.amount else order
                      for order, line, amount in zip(orders, cart.lines, amounts, strict=True)]
        # the line that records the coupon's use (given back if the checkout expires):
        # one it discounted, else the first (a percent of a small price may round to 0)
        carrier = next((order.order_id for order, line in zip(orders, cart.lines, strict=True)
                        if order.amount != line.amount), orders[0].order_id)
        off = await _member_off(checkout, tx, seller, buyer)
        if off:
            note = f"member discount {off / 100:g} %"
            orders = [dataclasses.replace(order, amount=amount, note=f"{order.note}; {note}")
                      if amount != order.amount else order
                      for order, amount in zip(orders, _less([o.amount for o in orders], off),
                                               strict=True)]
        if off and sum(o.amount for o in orders) < MIN_CHARGE:
            raise NotForSale("the cart's total after your member discount is below "
                             "Stripe's smallest charge: add a beat")
        fees = [discovery_fee(order.amount, checkout.discovery_fee_bp,
                              {"utm_source": line.source})
                for order, line in zip(orders, cart.lines, strict=True)]
        orders = [dataclasses.replace(order, note=f"{order.note}; discovery fee {fee}")
                  if fee else order for order, fee in zip(orders, fees, strict=True)]
        amounts = [order.amount for order in orders]
        for order, line, fee in zip(orders, cart.lines, fees, strict=True):
            title = line.beat.title
            if line.tier.exclusive:
                if not await store.reserve(tx, seller, order.beat_id, order.order_id, now,
                                           float(expires)):
                    raise NotForSale(f"another buyer is checking out or bought the exclusive "
                                     f"rights of {title!r} ({order.beat_id}): remove it from "
                                     "your cart to pay for the rest")
            else:
                held = await tx.fetchrow(
                    "SELECT status, reserved_order, reserved_until FROM mkt_beats "
                    "WHERE account_id = ? AND beat_id = ?", seller, order.beat_id)
                if held is None or held["status"] != ON_SALE or (
                        held["reserved_order"] and (held["reserved_until"] or 0) > now):
                    raise NotForSale(f"{title!r} ({order.beat_id}) is being bought with "
                                     "exclusive rights: remove it from your cart to pay for "
                                     "the rest")
            await store.insert_order(tx, order)
            await store.set_order(tx, seller, order.order_id, expires_at=float(expires),
                                  cart_id=cart_id, platform_fee=fee,
                                  **({"coupon": used_code} if order.order_id == carrier
                                     else {}))
    meta = {"cart_id": cart_id, "seller": seller, "buyer": buyer}
    intent_data: dict[str, Any] = {"metadata": meta}
    if group:  # a separate charge: the platform keeps its fee by transferring the rest
        intent_data["transfer_group"] = group
    if sum(fees):
        meta["discovery_fee"] = str(sum(fees))
        if not group:
            intent_data["application_fee_amount"] = sum(fees)
    try:
        session = await checkout.gateway.create_checkout_session(
            idempotency_key=idempotency_key("cart-checkout", cart_id), mode="payment",
            line_items=[{"quantity": 1, "price_data": {
                "currency": order.currency, "unit_amount": order.amount,
                "product_data": {"name": f"{line.beat.title} ({line.tier.name})"
                                 + (" - free with the deal" if line.free else "")}}}
                for order, line in zip(orders, cart.lines, strict=True)],
            success_url=(success_url or checkout.success_url).replace("{ORDER_ID}", cart_id),
            cancel_url=(cancel_url or checkout.cancel_url or None), customer_email=email,
            metadata=meta, client_reference_id=cart_id,
            payment_intent_data=intent_data, expires_at=expires,
            account=None if group else stripe_account, consent_collection=CONSENT)
    except PaymentError:
        async with db.transaction() as tx:
            for order in orders:
                await close_order(tx, store, order, FAILED,
                                  note="Stripe refused the checkout session")
        raise
    async with db.transaction() as tx:
        await tx.execute("UPDATE mkt_orders SET session_id = ? WHERE account_id = ? AND "
                         "cart_id = ?", session.id, seller, cart_id)
    return CartStarted(cart_id, [Order(**{**o.__dict__, "session_id": session.id})
                                 for o in orders], str(session.url), expires, sum(amounts),
                       str(cart.currency))
