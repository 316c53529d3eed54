"""Sellers' coupons, applied to the checkout's price on the server.

A coupon (``mkt_coupons``, by the seller's ``account_id``) takes ``value`` percent
(1–100) or ``value`` minor units of its ``currency`` off one tier's price, for every
beat of the seller or only ``beat_id``, until ``expires_at``, at most ``max_uses``
times. A use is counted when a checkout is opened with it (a conditional ``UPDATE``
in the order's transaction, so concurrent checkouts never exceed the limit; an
abandoned checkout keeps its use). A price the coupon would take below
:data:`MIN_CHARGE` is refused: Stripe charges no less.

**On a cart** (:func:`cart_amounts`, :meth:`Coupons.redeem_cart`) one use is counted per
cart checkout. A percent coupon takes its share off every line it applies to (all the
lines, or only its beat's; a line the bulk deal made free stays free); a fixed coupon
takes its value off the cart once, from the dearest lines it applies to first. A cart
total below :data:`MIN_CHARGE` after the coupon is refused.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

from business.marketplace.catalogue import check_currency
from business.marketplace.errors import CatalogueInvalid, NotForSale

CODE = re.compile(r"^[A-Z0-9][A-Z0-9_-]{1,31}$")
#: The smallest charge Stripe takes, in minor units.
MIN_CHARGE = 50


@dataclass(frozen=True)
class Coupon:
    account_id: str
    code: str
    kind: str
    value: int
    currency: str | None
    beat_id: str | None
    expires_at: float | None
    max_uses: int | None
    uses: int

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("code", "kind", "value", "currency",
                                              "beat_id", "expires_at", "max_uses", "uses")}

    def discount(self, price: int) -> int:
        """Minor units off ``price``."""
        if self.kind == "percent":
            return price * self.value // 100
        return min(price, self.value)


def check_code(code: str) -> str:
    code = code.strip().upper()
    if not CODE.match(code):
        raise CatalogueInvalid(f"{code!r} cannot be a coupon code: 2 to 32 letters, digits, "
                               "'-' or '_'", [{"path": "code", "message": "invalid code"}])
    return code


class Coupons:
    """Saving coupons and redeeming them inside a checkout's transaction."""

    def __init__(self, db: Any) -> None:
        self.db = db

    async def save(self, account_id: str, code: str, data: dict[str, Any]) -> Coupon:
        code = check_code(code)
        if data["kind"] == "percent" and not 1 <= data["value"] <= 100:
            raise CatalogueInvalid("a percent coupon takes 1 to 100 percent off",
                                   [{"path": "body.value", "message": "not a percentage"}])
        if data["kind"] == "fixed" and not data.get("currency"):
            raise CatalogueInvalid("a fixed coupon names its currency",
                                   [{"path": "body.currency", "message": "missing"}])
        # a fixed coupon in a currency no store sells in would never apply
        currency = check_currency(data["currency"], "body.currency") \
            if data.get("currency") else None
        async with self.db.transaction() as tx:
            await tx.execute("DELETE FROM mkt_coupons WHERE account_id = ? AND code = ?",
                             account_id, code)
            await tx.execute(
                "INSERT INTO mkt_coupons (account_id, code, kind, value, currency, beat_id, "
                "expires_at, max_uses, uses, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?)",
                account_id, code, data["kind"], data["value"], currency, data.get("beat_id"),
                data.get("expires_at"), data.get("max_uses"), time.time())
        found = await self.get(account_id, code)
        assert found is not None
        return found

    async def get(self, account_id: str, code: str, tx: Any = None) -> Coupon | None:
        row = await (tx or self.db).fetchrow(
            "SELECT * FROM mkt_coupons WHERE account_id = ? AND code = ?", account_id,
            code.strip().upper())
        return None if row is None else Coupon(
            row["account_id"], row["code"], row["kind"], int(row["value"]), row["currency"],
            row["beat_id"], row["expires_at"], row["max_uses"], int(row["uses"]))

    async def list(self, account_id: str) -> list[Coupon]:
        rows = await self.db.fetch("SELECT code FROM mkt_coupons WHERE account_id = ? "
                                   "ORDER BY code", account_id)
        found = [await self.get(account_id, r["code"]) for r in rows]
        return [c for c in found if c is not None]

    async def redeem(self, tx: Any, seller: str, code: str, beat_id: str, price: int,
                     currency: str, now: float) -> tuple[int, Coupon]:
        """The price after coupon ``code`` and the coupon, one use counted in ``tx``;
        :class:`NotForSale` saying why it does not apply."""
        coupon = await self.usable(seller, code, currency, now, tx)
        if coupon.beat_id and coupon.beat_id != beat_id:
            raise NotForSale(f"coupon {coupon.code} is for another beat")
        amount = price - coupon.discount(price)
        if amount < MIN_CHARGE:
            raise NotForSale(f"coupon {coupon.code} takes the price below the smallest "
                             f"charge ({MIN_CHARGE} minor units); free licences are not sold "
                             "through checkout")
        await self._use(tx, seller, coupon)
        return amount, coupon

    async def usable(self, seller: str, code: str, currency: str, now: float,
                     tx: Any = None) -> Coupon:
        """Coupon ``code`` if it exists, has not expired and fits ``currency``;
        :class:`NotForSale` saying why not (its uses are checked when redeemed)."""
        coupon = await self.get(seller, code, tx)
        if coupon is None:
            raise NotForSale(f"no coupon {code.strip().upper()!r} in this store")
        if coupon.expires_at is not None and coupon.expires_at <= now:
            raise NotForSale(f"coupon {coupon.code} has expired")
        if coupon.kind == "fixed" and coupon.currency != currency:
            raise NotForSale(f"coupon {coupon.code} is in {str(coupon.currency).upper()}; "
                             f"this store sells in {currency.upper()}")
        return coupon

    async def redeem_cart(self, tx: Any, seller: str, code: str,
                          lines: list[tuple[str, int]], currency: str,
                          now: float) -> tuple[list[int], Coupon]:
        """The amounts of a cart's ``(beat_id, amount)`` lines after coupon ``code`` and
        the coupon, one use counted in ``tx``; :class:`NotForSale` saying why not."""
        coupon = await self.usable(seller, code, currency, now, tx)
        amounts = cart_amounts(coupon, lines)
        await self._use(tx, seller, coupon)
        return amounts, coupon

    @staticmethod
    async def _use(tx: Any, seller: str, coupon: Coupon) -> None:
        used = await tx.execute(
            "UPDATE mkt_coupons SET uses = uses + 1 WHERE account_id = ? AND code = ? AND "
            "(max_uses IS NULL OR uses < max_uses)", seller, coupon.code)
        if not used:
            raise NotForSale(f"coupon {coupon.code} has been used up")


def cart_amounts(coupon: Coupon, lines: list[tuple[str, int]]) -> list[int]:
    """Each ``(beat_id, amount)`` line's amount after ``coupon`` (see the module's
    text); :class:`NotForSale` when it applies to no line or the total falls below
    :data:`MIN_CHARGE`."""
    eligible = [i for i, (beat_id, amount) in enumerate(lines)
                if amount > 0 and (not coupon.beat_id or coupon.beat_id == beat_id)]
    if not eligible:
        raise NotForSale(f"coupon {coupon.code} is for a beat that is not in your cart "
                         "(or is free with the deal)")
    amounts = [amount for _, amount in lines]
    if coupon.kind == "percent":
        for i in eligible:
            amounts[i] -= coupon.discount(amounts[i])
    else:
        left = coupon.value
        for i in sorted(eligible, key=lambda i: -amounts[i]):
            off = min(left, amounts[i])
            amounts[i] -= off
            left -= off
    if sum(amounts) < MIN_CHARGE:
        raise NotForSale(f"coupon {coupon.code} takes the cart's total below the smallest "
                         f"charge ({MIN_CHARGE} minor units)")
    return amounts

