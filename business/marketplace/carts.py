"""Carts: a buyer's lines (one tier of each beat) in one store, priced with its deals.

A cart is kept per store and buyer (``mkt_cart_items``: the seller's ``account_id``, the
buyer as ``owner``), so a buyer has one cart in each store. Adding checks what a
checkout would (the beat on sale, the tier offered, not one's own beat, one currency
per cart); the price shown is the tier's price now and the seller's best bulk deal
(:mod:`.deals`). The lines are taken off the cart when their payment arrives.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from business.marketplace.deals import Deal, Deals, Priced, apply
from business.marketplace.errors import CatalogueInvalid, NotForSale, NotFoundHere
from business.marketplace.ledger import format_amount
from business.marketplace.models import ON_SALE, Beat, Tier
from business.marketplace.store import MarketStore

#: The most lines one cart holds.
MAX_LINES = 50


@dataclass(frozen=True)
class Line:
    """One line of a cart, priced."""

    beat: Beat
    tier: Tier
    amount: int
    free: bool
    #: The ``utm_source`` the line was added with (:mod:`.fees`: ``marketplace`` is a
    #: discovery sale).
    source: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"beat_id": self.beat.beat_id, "title": self.beat.title,
                "tier": self.tier.tier, "tier_name": self.tier.name,
                "price": self.tier.price, "amount": self.amount, "free": self.free,
                "exclusive": self.tier.exclusive, "currency": self.tier.currency,
                "source": self.source}


@dataclass(frozen=True)
class Cart:
    """A buyer's cart in one store: its lines, the deal applied, the total."""

    seller: str
    owner: str
    lines: list[Line]
    deal: Deal | None
    #: Lines that can no longer be bought (sold, withdrawn): shown, never charged.
    gone: list[dict[str, str]]

    @property
    def currency(self) -> str | None:
        return self.lines[0].tier.currency if self.lines else None

    @property
    def total(self) -> int:
        return sum(line.amount for line in self.lines)

    def to_json(self) -> dict[str, Any]:
        return {"seller": self.seller, "lines": [line.to_json() for line in self.lines],
                "deal": self.deal.to_json() if self.deal else None,
                "subtotal": sum(line.tier.price for line in self.lines),
                "total": self.total, "currency": self.currency,
                "total_text": format_amount(self.total, self.currency) if self.currency
                else "", "unavailable": self.gone}


class Carts:
    """Carts' lines and their prices."""

    def __init__(self, store: MarketStore, deals: Deals) -> None:
        self.store = store
        self.db = store.db
        self.deals = deals

    async def view(self, owner: str, seller: str) -> Cart:
        """The cart, priced now (lines that cannot be bought any more listed apart)."""
        rows = await self.db.fetch("SELECT beat_id, tier, source FROM mkt_cart_items WHERE "
                                   "account_id = ? AND owner = ? ORDER BY added_at, beat_id",
                                   seller, owner)
        found: list[tuple[Beat, Tier]] = []
        sources = {row["beat_id"]: row["source"] or "" for row in rows}
        gone: list[dict[str, str]] = []
        for row in rows:
            beat = await self.store.beat(seller, row["beat_id"])
            tier = beat.tier(row["tier"]) if beat else None
            if beat is None or tier is None or not tier.active or beat.status != ON_SALE:
                gone.append({"beat_id": row["beat_id"], "tier": row["tier"],
                             "reason": "no longer on sale"})
                continue
            found.append((beat, tier))
        deal, free = apply(await self.deals.list(seller), [
            Priced(beat.beat_id, tier.tier, tier.price, tier.exclusive)
            for beat, tier in found])
        lines = [Line(beat, tier, 0 if beat.beat_id in free else tier.price,
                      beat.beat_id in free, sources[beat.beat_id]) for beat, tier in found]
        return Cart(seller, owner, lines, deal if free else None, gone)

    async def add(self, owner: str, seller: str, beat_id: str, tier_name: str, *,
                  source: str = "") -> Cart:
        """Put one tier of a beat in the cart (replacing another tier of the same beat);
        ``source``: the ``utm_source`` the buyer came with (the latest add's counts)."""
        beat = await self.store.beat(seller, beat_id)
        tier = beat.tier(tier_name) if beat else None
        if beat is None or tier is None or not tier.active:
            raise NotFoundHere(f"no beat {beat_id!r} with tier {tier_name!r} on sale by "
                               f"{seller!r}")
        if owner == seller:
            raise NotForSale("this is your own beat: sellers cannot buy their own licences")
        if beat.status != ON_SALE:
            raise NotForSale(f"beat {beat_id!r} was sold with exclusive rights and is off "
                             "sale")
        cart = await self.view(owner, seller)
        others = [line for line in cart.lines if line.beat.beat_id != beat_id]
        if others and others[0].tier.currency != tier.currency:
            raise CatalogueInvalid(
                f"this cart is in {others[0].tier.currency.upper()} and beat {beat_id!r} in "
                f"{tier.currency.upper()}: pay for the cart first, or empty it",
                [{"path": "beat_id", "message": "currency mismatch"}])
        if len(others) >= MAX_LINES:
            raise NotForSale(f"a cart holds at most {MAX_LINES} beats: check out first")
        async with self.db.transaction() as tx:
            await tx.execute("DELETE FROM mkt_cart_items WHERE account_id = ? AND owner = ? "
                             "AND beat_id = ?", seller, owner, beat_id)
            await tx.execute("INSERT INTO mkt_cart_items (account_id, owner, beat_id, tier, "
                             "added_at, source) VALUES (?, ?, ?, ?, ?, ?)", seller, owner,
                             beat_id, tier.tier, time.time(), source)
        return await self.view(owner, seller)

    async def remove(self, owner: str, seller: str, beat_id: str) -> Cart:
        await self.db.execute("DELETE FROM mkt_cart_items WHERE account_id = ? AND owner = ? "
                              "AND beat_id = ?", seller, owner, beat_id)
        return await self.view(owner, seller)

    async def claim(self, visitor: str, buyer: str, seller: str) -> None:
        """Move a visitor cart's lines into ``buyer``'s cart (lines the buyer cannot buy,
        such as their own beats, are dropped); the visitor cart is emptied."""
        rows = await self.db.fetch("SELECT beat_id, tier, source FROM mkt_cart_items WHERE "
                                   "account_id = ? AND owner = ? ORDER BY added_at, beat_id",
                                   seller, visitor)
        for row in rows:
            try:
                await self.add(buyer, seller, row["beat_id"], row["tier"],
                               source=row["source"] or "")
            except (NotFoundHere, NotForSale, CatalogueInvalid):
                continue
        await self.db.execute("DELETE FROM mkt_cart_items WHERE account_id = ? AND owner = ?",
                              seller, visitor)

    async def take(self, tx: Any, owner: str, seller: str, beat_ids: list[str]) -> None:
        """Take paid lines off the cart (in the payment's transaction)."""
        for beat_id in beat_ids:
            await tx.execute("DELETE FROM mkt_cart_items WHERE account_id = ? AND owner = ? "
                             "AND beat_id = ?", seller, owner, beat_id)
