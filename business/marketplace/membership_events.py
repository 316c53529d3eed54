"""Stripe's events about memberships, applied once each, in any order.

Every event finds its membership through the subscription's metadata (``membership_id``
and ``seller``, copied from the Checkout Session's ``subscription_data``) or, for an
invoice, through the subscription it bills (read from Stripe when that subscription is
not linked yet: an ``invoice.paid`` may come before ``checkout.session.completed``). It
must come from the connected account the membership is billed on.

The handler then reads the subscription from Stripe and stores its state as it is
**now** (status, period, ``cancel_at_period_end``): whatever order events arrive in,
the newest state wins, and a replay changes nothing (the event id is recorded in the
transaction of its effects, as :mod:`.fulfilment` does). Concurrent handlers cannot
store an older snapshot over a newer one: each reads the row's ``state_version`` before
asking Stripe and writes only if it is unchanged (else it asks Stripe again), so every
stored snapshot was read after the one it replaces was stored. A second subscription
becoming active for the same fan in the same store (two checkouts paid) is cancelled
on Stripe: the oldest membership stays. ``invoice.paid`` also books the
payment (key ``membership:<invoice>``) and moves the perk period forward, resetting the
free downloads counted in it (never backwards: a late invoice of an older period does
not reset a newer one). ``charge.refunded`` of a membership invoice books what was
refunded since the last refund booked for it (Stripe's ``amount_refunded`` is a running
total) and, once the whole charge is refunded, revokes the licences taken free in that
invoice's period, as a refunded order does.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from business.marketplace import bookings
from business.marketplace.errors import StripeObjectMissing
from business.marketplace.ledger import Ledger
from business.marketplace.memberships import ACCESS, Membership, Memberships
from business.marketplace.stripe_gateway import StripeGateway, idempotency_key
from business.marketplace.webhooks import Outcome, StripeEvent

logger = logging.getLogger(__name__)

SUBSCRIPTION_TYPES = ("customer.subscription.created", "customer.subscription.updated",
                      "customer.subscription.deleted")
INVOICE_TYPES = ("invoice.paid", "invoice.payment_failed")
TYPES = ("checkout.session.completed", *SUBSCRIPTION_TYPES, *INVOICE_TYPES,
         "charge.refunded")
#: How often a handler asks Stripe again when another wrote the state meanwhile.
ATTEMPTS = 5


class _Outdated(Exception):
    """Another handler stored the subscription's state after this one read it."""


def _meta(obj: dict[str, Any]) -> dict[str, str]:
    meta = obj.get("metadata") or {}
    return meta if meta.get("membership_id") and meta.get("seller") else {}


def _id(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("id")
    return str(value) if value else None


def invoice_subscription(invoice: dict[str, Any]) -> str | None:
    """The subscription an invoice bills (older API versions: ``subscription``; newer:
    ``parent.subscription_details.subscription``)."""
    found = _id(invoice.get("subscription"))
    if found:
        return found
    details = (invoice.get("parent") or {}).get("subscription_details") or {}
    return _id(details.get("subscription"))


def invoice_period_start(invoice: dict[str, Any]) -> int:
    """The start of the period an invoice pays for (its line's period: an invoice's own
    ``period_start`` is the previous period's on Stripe)."""
    for line in (invoice.get("lines") or {}).get("data") or []:
        period = line.get("period") or {}
        if period.get("start") is not None:
            return int(period["start"])
    return int(invoice.get("period_start") or 0)


async def apply_subscription(tx: Any, found: Membership, sub: dict[str, Any],
                             version: int | None = None) -> bool:
    """Store the subscription's state (as Stripe says it now) on the membership; with
    ``version``, only if the row's ``state_version`` still is that (whether it was)."""
    items = (sub.get("items") or {}).get("data") or [{}]
    start = items[0].get("current_period_start") or sub.get("current_period_start")
    end = items[0].get("current_period_end") or sub.get("current_period_end")
    changed = await tx.execute(
        "UPDATE mkt_memberships SET status = ?, stripe_subscription = ?, "
        "stripe_customer = ?, period_start = ?, period_end = ?, cancel_at_period_end = ?, "
        "updated_at = ?, state_version = state_version + 1 WHERE account_id = ? AND "
        f"membership_id = ?{'' if version is None else ' AND state_version = ?'}",
        str(sub["status"]), str(sub["id"]), _id(sub.get("customer")),
        None if start is None else int(start), None if end is None else int(end),
        int(bool(sub.get("cancel_at_period_end"))), time.time(), found.account_id,
        found.membership_id, *(() if version is None else (version,)))
    return bool(changed)


class MembershipEvents:
    """The membership half of :class:`~business.marketplace.fulfilment.Fulfilment`."""

    def __init__(self, memberships: Memberships, ledger: Ledger,
                 gateway: StripeGateway | None) -> None:
        self.memberships = memberships
        self.store = memberships.store
        self.ledger = ledger
        self.gateway = gateway

    async def handle(self, event: StripeEvent) -> Outcome | None:
        """The event's outcome, or None when it is not about a membership."""
        if event.type not in TYPES or self.gateway is None:
            return None
        if event.type == "charge.refunded":
            return await self._refunded(event)
        located = await self._locate(event)
        if located is None:
            return None
        found, sub_id = located
        fee, txn = (await self._fee(event.object, found)
                    if event.type == "invoice.paid" else (0, None))
        for _ in range(ATTEMPTS):
            version = await self.store.db.fetchval(
                "SELECT state_version FROM mkt_memberships WHERE account_id = ? AND "
                "membership_id = ?", found.account_id, found.membership_id)
            sub = (await self.gateway.retrieve_subscription(
                sub_id, account=found.stripe_account)).to_dict()
            try:
                async with self.store.db.transaction() as tx:
                    if not await self.store.record_event(
                            tx, found.account_id, event.id, event.type, Outcome.PROCESSED,
                            time.time()):
                        return Outcome.DUPLICATE
                    if not await apply_subscription(tx, found, sub, int(version or 0)):
                        raise _Outdated
                    if event.type == "invoice.paid":
                        await self._paid(tx, found, event.object, fee, txn)
            except _Outdated:
                continue
            if str(sub["status"]) in ACCESS:
                await self._cancel_duplicates(found)
            return Outcome.PROCESSED
        return Outcome.RETRY  # state written meanwhile each time: Stripe delivers it again

    async def _cancel_duplicates(self, found: Membership) -> None:
        """Cancel, on Stripe, the running subscriptions of the fan's newer memberships in
        this store (the oldest one stays): a backstop against two paid checkouts."""
        assert self.gateway is not None
        rows = await self.store.db.fetch(
            "SELECT membership_id, stripe_subscription, stripe_account FROM mkt_memberships "
            "WHERE account_id = ? AND member_account = ? AND stripe_subscription IS NOT NULL "
            f"AND status IN ({', '.join('?' for _ in ACCESS)}) ORDER BY created_at, "
            "membership_id", found.account_id, found.member_account, *ACCESS)
        for extra in rows[1:]:
            logger.warning("fan %s has a second running membership %s in store %s: its "
                           "subscription %s is cancelled", found.member_account,
                           extra["membership_id"], found.account_id,
                           extra["stripe_subscription"])
            await self.gateway.cancel_subscription(
                str(extra["stripe_subscription"]),
                idempotency_key=idempotency_key("membership-duplicate",
                                                extra["membership_id"]),
                account=str(extra["stripe_account"]))

    async def _locate(self, event: StripeEvent) -> tuple[Membership, str] | None:
        obj = event.object
        if event.type == "checkout.session.completed":
            if obj.get("mode") != "subscription":
                return None
            meta, sub_id = _meta(obj), _id(obj.get("subscription"))
        elif event.type in SUBSCRIPTION_TYPES:
            meta, sub_id = _meta(obj), _id(obj.get("id"))
        else:
            sub_id = invoice_subscription(obj)
            if not sub_id:
                return None
            linked = await self.memberships.by_subscription(sub_id)
            if linked is not None:
                meta = {"seller": linked.account_id, "membership_id": linked.membership_id}
            else:
                meta = await self._subscription_meta(sub_id, event.account)
        if not meta or not sub_id:
            return None
        found = await self.memberships.membership(meta["seller"], meta["membership_id"])
        if found is None:
            return None
        if event.account != found.stripe_account or (
                found.stripe_subscription and found.stripe_subscription != sub_id):
            logger.warning("Stripe event %s (%s) names membership %s but came from account "
                           "%r about subscription %s: ignored", event.id, event.type,
                           found.membership_id, event.account, sub_id)
            return None
        return found, sub_id

    async def _subscription_meta(self, sub_id: str, account: str | None) -> dict[str, str]:
        assert self.gateway is not None
        try:
            sub = await self.gateway.retrieve_subscription(sub_id, account=account)
        except StripeObjectMissing:
            return {}
        return _meta(sub.to_dict())

    async def _fee(self, invoice: dict[str, Any], found: Membership
                   ) -> tuple[int, str | None]:
        """Stripe's fee on the invoice's charge and its balance transaction's id."""
        charge_id = _id(invoice.get("charge"))
        if not charge_id or self.gateway is None:
            return 0, None
        charge = (await self.gateway.retrieve_charge(
            charge_id, expand=["balance_transaction"],
            account=found.stripe_account)).to_dict()
        txn = charge.get("balance_transaction")
        if not isinstance(txn, dict):
            return 0, None
        return int(txn.get("fee") or 0), _id(txn)

    async def _paid(self, tx: Any, found: Membership, invoice: dict[str, Any], fee: int,
                    txn: str | None) -> None:
        start = invoice_period_start(invoice)
        amount = int(invoice.get("amount_paid") or 0)
        currency = str(invoice.get("currency") or "usd")
        new = await tx.execute(
            "INSERT INTO mkt_membership_invoices (account_id, invoice_id, membership_id, "
            "amount, currency, charge, period_start, paid_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (account_id, invoice_id) DO NOTHING", found.account_id,
            str(invoice["id"]), found.membership_id, amount, currency,
            _id(invoice.get("charge")), start, time.time())
        if new and amount > 0:
            await self.ledger.record(tx, found.account_id, bookings.sale(
                f"membership:{invoice['id']}", currency, gross=amount,
                stripe_fee=min(fee, amount), stripe_txn=txn))
        await tx.execute(
            "UPDATE mkt_memberships SET perk_period = ?, perk_used = 0 WHERE account_id = ? "
            "AND membership_id = ? AND (perk_period IS NULL OR perk_period < ?)",
            start, found.account_id, found.membership_id, start)

    async def _refunded(self, event: StripeEvent) -> Outcome | None:
        charge = event.object
        row = await self.store.db.fetchrow(
            "SELECT i.account_id, i.invoice_id, i.membership_id, i.period_start, i.amount, "
            "m.stripe_account FROM mkt_membership_invoices i JOIN mkt_memberships m ON "
            "m.account_id = i.account_id AND m.membership_id = i.membership_id "
            "WHERE i.charge = ?", str(charge.get("id")))
        if row is None:
            invoice = _id(charge.get("invoice"))
            if invoice and event.account and await self._is_membership_invoice(
                    invoice, event.account):
                return Outcome.RETRY  # its invoice.paid is not applied yet
            return None
        if event.account != row["stripe_account"]:
            return None
        refunded = int(charge.get("amount_refunded") or 0)
        try:
            async with self.store.db.transaction() as tx:
                if not await self.store.record_event(tx, row["account_id"], event.id, event.type,
                                                     Outcome.PROCESSED, time.time()):
                    return Outcome.DUPLICATE
                booked = int(await tx.fetchval(
                    "SELECT refunded FROM mkt_membership_invoices WHERE account_id = ? AND "
                    "invoice_id = ?", row["account_id"], row["invoice_id"]) or 0)
                if refunded > booked:
                    if not await tx.execute(
                            "UPDATE mkt_membership_invoices SET refunded = ? WHERE "
                            "account_id = ? AND invoice_id = ? AND refunded = ?", refunded,
                            row["account_id"], row["invoice_id"], booked):
                        raise _Outdated  # another refund event booked meanwhile
                    await self.ledger.record(tx, row["account_id"], bookings.refund(
                        f"refund:membership:{row['invoice_id']}:{refunded}",
                        str(charge["currency"]), amount=refunded - booked, imposed=True))
                if refunded < int(row["amount"]) or refunded <= 0:
                    return Outcome.PROCESSED  # a partial refund: the period's licences stay
                await tx.execute(
                    "UPDATE mkt_licences SET status = 'refunded' WHERE account_id = ? AND "
                    "order_id IN (SELECT order_id FROM mkt_membership_downloads WHERE "
                    "account_id = ? AND membership_id = ? AND perk_period = ?)",
                    row["account_id"], row["account_id"], row["membership_id"],
                    row["period_start"])
        except _Outdated:
            return Outcome.RETRY
        return Outcome.PROCESSED

    async def _is_membership_invoice(self, invoice_id: str, account: str) -> bool:
        assert self.gateway is not None
        try:
            invoice = await self.gateway.retrieve_invoice(invoice_id, account=account)
        except StripeObjectMissing:
            return False
        sub_id = invoice_subscription(invoice.to_dict())
        return bool(sub_id and (await self.memberships.by_subscription(sub_id) or
                                await self._subscription_meta(sub_id, account)))
