"""Bulk deals: "buy N get M free" across the lines of one cart, set by the seller.

A deal (``mkt_deals``) names how many lines are bought (``buy``) and how many more come
free (``free``), and optionally the tiers it counts (none: every lease; an exclusive
never counts). Applied to a cart (:func:`apply`): the lines it counts are sorted by
price, dearest first, and in each full group of ``buy + free`` lines the ``free``
cheapest are free. Of several deals the one saving the most applies; deals never
stack. The order of each free line is written with amount 0.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from business.marketplace.errors import CatalogueInvalid

DEAL_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")


@dataclass(frozen=True)
class Deal:
    """One of a seller's bulk deals."""

    deal_id: str
    buy: int
    free: int
    tiers: tuple[str, ...] = ()
    active: bool = True

    def to_json(self) -> dict[str, Any]:
        return {"deal_id": self.deal_id, "buy": self.buy, "free": self.free,
                "tiers": list(self.tiers), "active": self.active,
                "label": f"buy {self.buy} get {self.free} free"}


@dataclass(frozen=True)
class Priced:
    """A cart line as a deal sees it."""

    key: str
    tier: str
    price: int
    exclusive: bool


def free_under(deal: Deal, lines: Sequence[Priced]) -> set[str]:
    """The keys of the lines ``deal`` makes free."""
    counted = sorted((line for line in lines if not line.exclusive
                      and (not deal.tiers or line.tier in deal.tiers)),
                     key=lambda line: (-line.price, line.key))
    group = deal.buy + deal.free
    free: set[str] = set()
    for start in range(0, len(counted) - group + 1, group):
        free |= {line.key for line in counted[start + deal.buy:start + group]}
    return free


def apply(deals: Sequence[Deal], lines: Sequence[Priced]) -> tuple[Deal | None, set[str]]:
    """The deal that saves the most on ``lines`` (None: none applies) and the keys of the
    lines it makes free."""
    best: tuple[int, Deal | None, set[str]] = (0, None, set())
    prices = {line.key: line.price for line in lines}
    for deal in deals:
        if not deal.active:
            continue
        free = free_under(deal, lines)
        saved = sum(prices[k] for k in free)
        if saved > best[0]:
            best = (saved, deal, free)
    return best[1], best[2]


class Deals:
    """Reads and writes of a seller's deals."""

    def __init__(self, db: Any) -> None:
        self.db = db

    async def list(self, account_id: str) -> list[Deal]:
        rows = await self.db.fetch("SELECT * FROM mkt_deals WHERE account_id = ? "
                                   "ORDER BY deal_id", account_id)
        return [Deal(r["deal_id"], int(r["buy"]), int(r["free"]),
                     tuple(json.loads(r["tiers"])), bool(r["active"])) for r in rows]

    async def save(self, account_id: str, deal_id: str, data: dict[str, Any]) -> Deal:
        """Create or replace a deal; :class:`CatalogueInvalid` saying what is wrong."""
        if not DEAL_ID.match(deal_id):
            raise CatalogueInvalid(f"{deal_id!r} cannot be a deal id: 1 to 32 lower-case "
                                   "letters, digits, '-' or '_'",
                                   [{"path": "deal_id", "message": "invalid id"}])
        tiers = tuple(dict.fromkeys(data.get("tiers") or ()))
        if "exclusive" in tiers:
            raise CatalogueInvalid("an exclusive cannot be part of a bulk deal: it is one "
                                   "beat's only sale", [{"path": "tiers",
                                                         "message": "exclusive"}])
        deal = Deal(deal_id, int(data["buy"]), int(data["free"]), tiers,
                    bool(data.get("active", True)))
        async with self.db.transaction() as tx:
            await tx.execute("DELETE FROM mkt_deals WHERE account_id = ? AND deal_id = ?",
                             account_id, deal_id)
            await tx.execute("INSERT INTO mkt_deals (account_id, deal_id, buy, free, tiers, "
                             "active, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)", account_id,
                             deal_id, deal.buy, deal.free, json.dumps(list(tiers)),
                             int(deal.active), time.time())
        return deal

    async def delete(self, account_id: str, deal_id: str) -> bool:
        return bool(await self.db.execute("DELETE FROM mkt_deals WHERE account_id = ? AND "
                                          "deal_id = ?", account_id, deal_id))
