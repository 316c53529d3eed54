"""Sandbox sales: a test-mode API key's simulated paid checkout of one of its own beats.

A developer tests an integration that reacts to sales (a ``marketplace.sale`` webhook,
then ``GET /api/v1/orders/{id}``) without spending money: ``POST /api/v1/orders`` with
a test-mode key runs the paid half of :mod:`.fulfilment` on an order that Stripe never
saw. In **one transaction** the order is stored already ``paid`` (``sandbox`` set, no
session, no payment intent), its licence is granted as a real one is
(:meth:`~business.marketplace.fulfilment.Fulfilment.grant`: files, rights, download
allowance, contract queued), both are marked sandbox objects (``mark``, so only
test-mode keys reach them) and ``marketplace.sale`` is published, which goes to the
account's test-mode webhooks only (its ``order_id`` names a sandbox object).

What a sandbox sale leaves alone, so live data never changes: Stripe (no session, no
charge, no refund, no transfer to a split's collaborators), the ledger (no sale booked,
no payout), the beat (an exclusive does not take it off sale, a lease is not counted,
no hold), coupons and memberships, the customer list and the sales reports
(:mod:`.reports` skip sandbox orders), and mail (the real path sends the buyer none
either). The buyer of record is the account itself, so the licence shows among the
licences its test-mode keys see (``GET /api/v1/licences``); the buyer's e-mail address
or reference the request gives is only kept in the order's note.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from business.marketplace.errors import CatalogueInvalid, NotForSale, NotFoundHere
from business.marketplace.fulfilment import SALE_EVENT, Fulfilment
from business.marketplace.models import ON_SALE, PAID, Licence, Order
from business.marketplace.schemas import SaleEvent
from business.marketplace.store import MarketStore, new_id

#: ``await mark(tx, object_id)``: mark a new order or licence a sandbox object in ``tx``.
Mark = Callable[[Any, str], Awaitable[None]]
#: The note every sandbox order starts with.
SANDBOX_NOTE = "sandbox sale (test mode): no payment, no payout"


@dataclass(frozen=True)
class SandboxSale:
    """A sandbox sale's paid order and the licence it granted."""

    order: Order
    licence: Licence


def sandbox_note(buyer_email: str | None, buyer_reference: str | None) -> str:
    """The order's note: :data:`SANDBOX_NOTE` and who the simulated buyer was."""
    parts = [SANDBOX_NOTE]
    if buyer_email:
        parts.append(f"buyer {buyer_email}")
    if buyer_reference:
        parts.append(f"reference {buyer_reference}")
    return "; ".join(parts)


class SandboxSales:
    """Makes sandbox sales through the real fulfilment's licence grant and sale event."""

    def __init__(self, store: MarketStore, fulfilment: Fulfilment) -> None:
        self.store = store
        self.fulfilment = fulfilment

    async def sell(self, seller: str, beat_id: str, tier_name: str, *, mark: Mark,
                   buyer_email: str | None = None, buyer_reference: str | None = None
                   ) -> SandboxSale:
        """A paid sandbox order of ``seller``'s beat ``beat_id`` in tier ``tier_name``
        and its licence (see the module). :class:`NotFoundHere` for a beat the seller
        does not have, :class:`CatalogueInvalid` for a tier it does not offer now,
        :class:`NotForSale` for a beat sold with exclusive rights."""
        beat = await self.store.beat(seller, beat_id)
        if beat is None:
            raise NotFoundHere(f"no beat {beat_id!r} in this account")
        tier = beat.tier(tier_name)
        if tier is None or not tier.active:
            offered = ", ".join(repr(t.tier) for t in beat.tiers if t.active) or "none"
            raise CatalogueInvalid(
                f"beat {beat_id!r} offers no licence tier {tier_name!r} now; its tiers on "
                f"sale: {offered}", [{"path": "tier", "message": "tier not offered"}])
        if beat.status != ON_SALE:
            raise NotForSale(f"beat {beat_id!r} was sold with exclusive rights and is off "
                             "sale: a sandbox sale needs a beat on sale")
        now = time.time()
        order = Order(seller, new_id("ord"), beat.beat_id, tier.tier, seller, tier.price,
                      tier.currency, tier.exclusive, PAID, "", None, None,
                      sandbox_note(buyer_email, buyer_reference), now, paid_at=now,
                      sandbox=True)
        async with self.store.db.transaction() as tx:
            await self.store.insert_order(tx, order)
            await mark(tx, order.order_id)
            licence = await self.fulfilment.grant(tx, order, now)
            await mark(tx, licence.licence_id)
            if self.fulfilment.publish is not None:
                await self.fulfilment.publish(tx, SALE_EVENT, SaleEvent(
                    account_id=seller, order_id=order.order_id, beat_id=order.beat_id,
                    tier=order.tier, amount_cents=order.amount, currency=order.currency,
                    at=now).model_dump(), seller)
        return SandboxSale(order, licence)
