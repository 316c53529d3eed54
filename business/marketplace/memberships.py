"""Memberships (BeatStars' "memberships"): a seller's plans on Stripe Billing, fans joining
them through Checkout, and the perks our server enforces.

A **plan** is a recurring Price (``month`` or ``year``) of a Product on the seller's
connected account, with perks: ``free_downloads`` licences of ``free_tier`` per paid
period and ``discount_bp`` off every other purchase in the seller's store.

A fan **joins** on a Checkout Session in ``subscription`` mode; the membership row is
stored first (``pending``) and named in the subscription's metadata, so each Stripe
event finds it. A fan has one pending join per store at most (a partial unique index):
joining again (another tab) reuses its open Checkout page, or expires it on Stripe when
another plan is chosen. It becomes active on the webhooks only, never on the redirect
(:mod:`.membership_events`). Its state is Stripe's: ``active`` (or ``trialing``) and
``past_due`` (retries in progress: Stripe's grace period) keep the perks;
``canceled``, ``unpaid`` and ``incomplete`` end them.

A **free download** is counted against the newest paid period (``perk_period``, moved
by ``invoice.paid``; the count resets with it) by a conditional ``UPDATE``, so racing
claims cannot pass the allowance, and issues a licence as a purchase does (an order of
amount 0, paid, its contract queued).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from business.marketplace.catalogue import STRIPE_MAX_AMOUNT, check_currency
from business.marketplace.errors import (
    CatalogueInvalid,
    NotForSale,
    NotFoundHere,
    StripeRejected,
)
from business.marketplace.models import ON_SALE, PAID, Licence, Order
from business.marketplace.store import MarketStore, new_id
from business.marketplace.stripe_gateway import StripeGateway, idempotency_key

#: Subscription statuses whose member keeps the perks (past_due: Stripe still retries).
ACCESS = ("active", "trialing", "past_due")
PENDING = "pending"
#: A pending join replaced by a newer one (its Checkout Session expired on Stripe).
EXPIRED = "expired"
INTERVALS = ("month", "year")
#: The largest member discount (a paid checkout must still charge something).
MAX_DISCOUNT_BP = 9_000

PLAN_COLUMNS = ("account_id, plan_id, name, amount, currency, billing_interval, "
                "free_downloads, free_tier, discount_bp, stripe_account, stripe_product, "
                "stripe_price, active, created_at")
MEMBER_COLUMNS = ("account_id, membership_id, plan_id, member_account, stripe_account, "
                  "status, session_id, stripe_subscription, stripe_customer, period_start, "
                  "period_end, cancel_at_period_end, perk_period, perk_used, created_at, "
                  "updated_at")


@dataclass(frozen=True)
class Plan:
    """One membership plan of a seller."""

    account_id: str
    plan_id: str
    name: str
    amount: int
    currency: str
    interval: str
    free_downloads: int
    free_tier: str | None
    discount_bp: int
    stripe_account: str
    stripe_product: str
    stripe_price: str
    active: bool
    created_at: float

    def to_json(self) -> dict[str, Any]:
        return {"seller": self.account_id, "plan_id": self.plan_id, "name": self.name,
                "amount": self.amount, "currency": self.currency, "interval": self.interval,
                "free_downloads": self.free_downloads, "free_tier": self.free_tier,
                "discount_percent": self.discount_bp / 100, "active": self.active}


@dataclass(frozen=True)
class Membership:
    """One fan's membership of one plan (the seller's row; ``member_account`` is the fan)."""

    account_id: str
    membership_id: str
    plan_id: str
    member_account: str
    stripe_account: str
    status: str
    session_id: str | None
    stripe_subscription: str | None
    stripe_customer: str | None
    period_start: int | None
    period_end: int | None
    cancel_at_period_end: bool
    perk_period: int | None
    perk_used: int
    created_at: float
    updated_at: float

    @property
    def has_access(self) -> bool:
        return self.status in ACCESS and self.perk_period is not None

    def to_json(self, plan: Plan | None = None) -> dict[str, Any]:
        found = {"seller": self.account_id, "membership_id": self.membership_id,
                 "plan_id": self.plan_id, "status": self.status,
                 "access": self.has_access, "period_end": self.period_end,
                 "cancel_at_period_end": self.cancel_at_period_end,
                 "free_downloads_used": self.perk_used, "created_at": self.created_at}
        if plan is not None:
            found["plan"] = plan.to_json()
            found["free_downloads_left"] = (max(0, plan.free_downloads - self.perk_used)
                                            if self.has_access else 0)
        return found


def plan_from(row: Any) -> Plan:
    r = dict(row)
    return Plan(r["account_id"], r["plan_id"], r["name"], int(r["amount"]), r["currency"],
                r["billing_interval"], int(r["free_downloads"]), r["free_tier"],
                int(r["discount_bp"]), r["stripe_account"], r["stripe_product"],
                r["stripe_price"], bool(r["active"]), float(r["created_at"]))


def membership_from(row: Any) -> Membership:
    r = dict(row)
    return Membership(
        r["account_id"], r["membership_id"], r["plan_id"], r["member_account"],
        r["stripe_account"], r["status"], r["session_id"], r["stripe_subscription"],
        r["stripe_customer"], _int(r["period_start"]), _int(r["period_end"]),
        bool(r["cancel_at_period_end"]), _int(r["perk_period"]), int(r["perk_used"]),
        float(r["created_at"]), float(r["updated_at"]))


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


@dataclass(frozen=True)
class Joined:
    """A pending membership and the Checkout page to pay it on."""

    membership: Membership
    url: str


class Memberships:
    """Plans, joining, cancelling and free downloads (Stripe's events:
    :mod:`.membership_events`)."""

    def __init__(self, store: MarketStore, gateway: StripeGateway | None, *,
                 success_url: str = "", grant: Any = None) -> None:
        self.store = store
        self.db = store.db
        self.gateway = gateway
        self.success_url = success_url
        #: ``await grant(tx, order, now)``: the licence of a paid order (:mod:`.fulfilment`)
        self.grant = grant

    def _stripe(self) -> StripeGateway:
        if self.gateway is None:
            raise NotForSale("payments are not configured on this server: set "
                             "plugins.marketplace.stripe.api_key")
        return self.gateway

    # -- plans ---------------------------------------------------------------------------

    async def create_plan(self, seller: str, *, name: str, amount: int, currency: str,
                          interval: str, free_downloads: int = 0,
                          free_tier: str | None = None, discount_percent: float = 0.0
                          ) -> Plan:
        """A new plan: its Product and recurring Price on the seller's connected account."""
        if interval not in INTERVALS:
            raise ValueError(f"a plan is billed every 'month' or 'year', not {interval!r}")
        if amount <= 0:
            raise ValueError("a plan's price must be above zero (minor units)")
        if amount > STRIPE_MAX_AMOUNT:
            raise ValueError(f"a plan's price is at most {STRIPE_MAX_AMOUNT} minor units "
                             "(Stripe's limit)")
        try:  # a currency to pay with, as the catalogue's (not XXX, not 3 decimals)
            currency = check_currency(currency)
        except CatalogueInvalid as exc:
            raise ValueError(str(exc)) from None
        if free_downloads and not free_tier:
            raise ValueError("free downloads need the licence tier they grant (free_tier)")
        if free_tier == "exclusive":
            raise ValueError("an exclusive cannot be a member's free download (it takes the "
                             "beat off sale): choose a lease tier")
        discount_bp = round(discount_percent * 100)
        if not 0 <= discount_bp <= MAX_DISCOUNT_BP:
            raise ValueError(f"discount_percent is between 0 and {MAX_DISCOUNT_BP // 100} "
                             "(a checkout cannot charge nothing)")
        gateway = self._stripe()
        account = await self.store.stripe_account(seller)
        if not account:
            raise NotForSale("connect a Stripe account first (POST /api/marketplace/seller/"
                             "stripe): members pay the seller directly")
        plan_id = new_id("plan")
        product = await gateway.create_product(
            idempotency_key=idempotency_key("plan-product", seller, plan_id), name=name,
            metadata={"seller": seller, "plan_id": plan_id}, account=account)
        price = await gateway.create_price(
            idempotency_key=idempotency_key("plan-price", seller, plan_id),
            product=str(product.id), unit_amount=amount, currency=currency.lower(),
            interval=interval, account=account)
        plan = Plan(seller, plan_id, name, amount, currency.lower(), interval, free_downloads,
                    free_tier, discount_bp, account, str(product.id), str(price.id), True,
                    time.time())
        await self.db.execute(
            f"INSERT INTO mkt_membership_plans ({PLAN_COLUMNS}) VALUES "
            "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            plan.account_id, plan.plan_id, plan.name, plan.amount, plan.currency,
            plan.interval, plan.free_downloads, plan.free_tier, plan.discount_bp,
            plan.stripe_account, plan.stripe_product, plan.stripe_price, 1, plan.created_at)
        return plan

    async def plans(self, seller: str, *, active_only: bool = False) -> list[Plan]:
        rows = await self.db.fetch(
            f"SELECT {PLAN_COLUMNS} FROM mkt_membership_plans WHERE account_id = ? "
            f"{'AND active = 1 ' if active_only else ''}ORDER BY amount, plan_id", seller)
        return [plan_from(r) for r in rows]

    async def plan(self, seller: str, plan_id: str, tx: Any = None) -> Plan | None:
        row = await (tx or self.db).fetchrow(
            f"SELECT {PLAN_COLUMNS} FROM mkt_membership_plans WHERE account_id = ? AND "
            "plan_id = ?", seller, plan_id)
        return None if row is None else plan_from(row)

    # -- members -------------------------------------------------------------------------

    async def membership(self, seller: str, membership_id: str, tx: Any = None
                         ) -> Membership | None:
        row = await (tx or self.db).fetchrow(
            f"SELECT {MEMBER_COLUMNS} FROM mkt_memberships WHERE account_id = ? AND "
            "membership_id = ?", seller, membership_id)
        return None if row is None else membership_from(row)

    async def by_subscription(self, subscription_id: str) -> Membership | None:
        row = await self.db.fetchrow(
            f"SELECT {MEMBER_COLUMNS} FROM mkt_memberships WHERE stripe_subscription = ?",
            subscription_id)
        return None if row is None else membership_from(row)

    async def of_member(self, member: str, membership_id: str) -> Membership:
        row = await self.db.fetchrow(
            f"SELECT {MEMBER_COLUMNS} FROM mkt_memberships WHERE member_account = ? AND "
            "membership_id = ?", member, membership_id)
        if row is None:
            raise NotFoundHere(f"no membership {membership_id!r} of yours")
        return membership_from(row)

    async def members(self, seller: str) -> list[Membership]:
        """The seller's members (not pending checkouts), newest first."""
        rows = await self.db.fetch(
            f"SELECT {MEMBER_COLUMNS} FROM mkt_memberships WHERE account_id = ? AND "
            "status NOT IN (?, ?) ORDER BY created_at DESC, membership_id", seller, PENDING,
            EXPIRED)
        return [membership_from(r) for r in rows]

    async def mine(self, member: str) -> list[Membership]:
        rows = await self.db.fetch(
            f"SELECT {MEMBER_COLUMNS} FROM mkt_memberships WHERE member_account = ? AND "
            "status NOT IN (?, ?) ORDER BY created_at DESC, membership_id", member, PENDING,
            EXPIRED)
        return [membership_from(r) for r in rows]

    async def join(self, member: str, seller: str, plan_id: str, *,
                   success_url: str | None = None, cancel_url: str | None = None,
                   email: str | None = None) -> Joined:
        """A pending membership and its Checkout Session (``subscription`` mode)."""
        gateway = self._stripe()
        plan = await self.plan(seller, plan_id)
        if plan is None or not plan.active:
            raise NotFoundHere(f"no membership plan {plan_id!r} offered by {seller!r}")
        if member == seller:
            raise NotForSale("sellers cannot join their own membership plans")
        current = await self.db.fetchval(
            "SELECT COUNT(*) FROM mkt_memberships WHERE account_id = ? AND member_account = ? "
            f"AND status IN ({', '.join('?' for _ in ACCESS)})", seller, member, *ACCESS)
        if int(current or 0):
            raise NotForSale("you are a member of this store already: cancel that membership "
                             "before joining another plan")
        reused = await self._open_join(seller, member, plan_id)
        if reused is not None:
            return reused
        now = time.time()
        membership = Membership(seller, new_id("mship"), plan_id, member, plan.stripe_account,
                                PENDING, None, None, None, None, None, False, None, 0, now, now)
        if not await self.db.execute(
                f"INSERT INTO mkt_memberships ({MEMBER_COLUMNS}) VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                seller, membership.membership_id, plan_id, member, plan.stripe_account,
                PENDING, None, None, None, None, None, 0, None, 0, now, now):
            raise NotForSale("you are joining this store in another window already: "
                             "finish or close that checkout first")
        meta = {"membership_id": membership.membership_id, "seller": seller,
                "plan_id": plan_id, "member": member}
        session = await gateway.create_checkout_session(
            idempotency_key=idempotency_key("join", membership.membership_id),
            mode="subscription", line_items=[{"price": plan.stripe_price, "quantity": 1}],
            success_url=(success_url or self.success_url).replace(
                "{MEMBERSHIP_ID}", membership.membership_id),
            cancel_url=cancel_url, customer_email=email, metadata=meta,
            client_reference_id=membership.membership_id, subscription_data={"metadata": meta},
            account=plan.stripe_account)
        await self.db.execute(
            "UPDATE mkt_memberships SET session_id = ? WHERE account_id = ? AND "
            "membership_id = ?", str(session.id), seller, membership.membership_id)
        return Joined(membership, str(session.url))

    async def _open_join(self, seller: str, member: str, plan_id: str) -> Joined | None:
        """The fan's open join of this plan in this store (its Checkout page), or None once
        no other join is open (one of another plan is expired on Stripe)."""
        gateway = self._stripe()
        row = await self.db.fetchrow(
            f"SELECT {MEMBER_COLUMNS} FROM mkt_memberships WHERE account_id = ? AND "
            "member_account = ? AND status = ?", seller, member, PENDING)
        if row is None:
            return None
        pending = membership_from(row)
        if pending.session_id is None:
            raise NotForSale("you are joining this store in another window already: "
                             "try again in a moment")
        session = (await gateway.retrieve_checkout_session(
            pending.session_id, account=pending.stripe_account)).to_dict()
        if session.get("status") == "complete":
            raise NotForSale("your payment for a membership of this store is being "
                             "confirmed: it shows in your memberships shortly")
        if session.get("status") == "open":
            if pending.plan_id == plan_id and session.get("url"):
                return Joined(pending, str(session["url"]))
            try:
                await gateway.expire_checkout_session(
                    pending.session_id, account=pending.stripe_account,
                    idempotency_key=idempotency_key("join-expire", pending.membership_id))
            except StripeRejected as exc:  # paid just now
                raise NotForSale("your payment for a membership of this store is being "
                                 "confirmed: it shows in your memberships shortly") from exc
        await self.db.execute(
            "UPDATE mkt_memberships SET status = ?, updated_at = ? WHERE account_id = ? AND "
            "membership_id = ? AND status = ?", EXPIRED, time.time(), seller,
            pending.membership_id, PENDING)
        return None

    async def set_cancel(self, member: str, membership_id: str, cancel: bool) -> Membership:
        """Cancel at the period's end (``cancel``) or resume; Stripe's answer is stored."""
        from business.marketplace.membership_events import apply_subscription

        found = await self.of_member(member, membership_id)
        gateway = self._stripe()
        if not found.stripe_subscription or found.status not in ACCESS:
            raise NotForSale(f"membership {membership_id!r} is {found.status}: only a running "
                             "membership can be cancelled or resumed")
        sub = await gateway.update_subscription(
            found.stripe_subscription, cancel_at_period_end=cancel,
            idempotency_key=idempotency_key("membership-cancel", membership_id, cancel,
                                            found.updated_at),
            account=found.stripe_account)
        async with self.db.transaction() as tx:
            await apply_subscription(tx, found, sub.to_dict())
        changed = await self.membership(found.account_id, membership_id)
        assert changed is not None
        return changed

    async def discount_bp(self, tx: Any, seller: str, buyer: str) -> int:
        """The discount (basis points) the buyer's membership gives in the seller's store."""
        value = await tx.fetchval(
            "SELECT MAX(p.discount_bp) FROM mkt_memberships m JOIN mkt_membership_plans p "
            "ON p.account_id = m.account_id AND p.plan_id = m.plan_id WHERE m.account_id = ? "
            f"AND m.member_account = ? AND m.perk_period IS NOT NULL AND m.status IN "
            f"({', '.join('?' for _ in ACCESS)})", seller, buyer, *ACCESS)
        return int(value or 0)

    # -- free downloads ------------------------------------------------------------------

    async def free_download(self, member: str, membership_id: str, beat_id: str) -> Licence:
        """One of the period's free downloads: a licence of the plan's tier for ``beat_id``."""
        found = await self.of_member(member, membership_id)
        seller = found.account_id
        plan = await self.plan(seller, found.plan_id)
        if plan is None or not plan.free_downloads or not plan.free_tier:
            raise NotForSale("this membership has no free downloads")
        if not found.has_access:
            raise NotForSale(f"membership {membership_id!r} is {found.status}: its perks "
                             "are not available")
        beat = await self.store.beat(seller, beat_id)
        tier = beat.tier(plan.free_tier) if beat else None
        if beat is None or tier is None or not tier.active:
            raise NotFoundHere(f"no beat {beat_id!r} with tier {plan.free_tier!r} in this "
                               "store")
        if beat.status != ON_SALE:
            raise NotForSale(f"beat {beat_id!r} was sold with exclusive rights and is off sale")
        now = time.time()
        order = Order(seller, new_id("ord"), beat_id, tier.tier, member, 0, tier.currency,
                      False, PAID, found.stripe_account, None, None,
                      f"membership {membership_id} free download", now, now)
        async with self.db.transaction() as tx:
            counted = await tx.execute(
                "UPDATE mkt_memberships SET perk_used = perk_used + 1 WHERE account_id = ? "
                "AND membership_id = ? AND perk_period = ? AND perk_used < ? AND status IN "
                f"({', '.join('?' for _ in ACCESS)})", seller, membership_id,
                found.perk_period, plan.free_downloads, *ACCESS)
            if not counted:
                raise NotForSale(f"you have used this period's {plan.free_downloads} free "
                                 "downloads: they come back when the membership renews")
            taken = await tx.fetchval(
                "SELECT COUNT(*) FROM mkt_membership_downloads WHERE account_id = ? AND "
                "membership_id = ? AND perk_period = ? AND beat_id = ?", seller,
                membership_id, found.perk_period, beat_id)
            if int(taken or 0):
                raise NotForSale(f"you took beat {beat_id!r} free this period already")
            if not await self.store.sell_lease(tx, seller, beat_id):
                raise NotForSale(f"beat {beat_id!r} was sold with exclusive rights")
            await self.store.insert_order(tx, order)
            await tx.execute(
                "INSERT INTO mkt_membership_downloads (account_id, membership_id, perk_period, "
                "beat_id, order_id, created_at) VALUES (?, ?, ?, ?, ?, ?)", seller,
                membership_id, found.perk_period, beat_id, order.order_id, now)
            await self.grant(tx, order, now)
            licence_id = await tx.fetchval(
                "SELECT licence_id FROM mkt_licences WHERE account_id = ? AND order_id = ?",
                seller, order.order_id)
        licence = await self.store.licence(str(licence_id))
        assert licence is not None
        return licence
