"""Coupons on a cart's checkout: percent off every line after the deal, fixed off the
cart once, per-beat coupons, one use per cart checkout held under concurrency, given back
once when the cart's checkout expires; the sale booked at the discounted total."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from marketplace_helpers import (
    Market,
    market,
    market_services,
    who,
)

from business.marketplace.coupons import Coupon, cart_amounts
from business.marketplace.errors import NotForSale

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(120)]

M = "/api/marketplace"


def coupon(kind: str, value: int, beat_id: str | None = None) -> Coupon:
    return Coupon("s", "C", kind, value, "usd" if kind == "fixed" else None, beat_id,
                  None, None, 0)


async def test_cart_amounts_follow_the_coupons_kind() -> None:
    lines = [("a", 3000), ("b", 5000), ("c", 0)]
    assert cart_amounts(coupon("percent", 10), lines) == [2700, 4500, 0]
    assert cart_amounts(coupon("percent", 50, "b"), lines) == [3000, 2500, 0]
    # fixed: once off the cart, dearest line first
    assert cart_amounts(coupon("fixed", 6000), lines) == [2000, 0, 0]
    assert cart_amounts(coupon("fixed", 500, "a"), lines) == [2500, 5000, 0]
    with pytest.raises(NotForSale, match="not in your cart"):
        cart_amounts(coupon("percent", 10, "c"), lines)  # free with the deal
    with pytest.raises(NotForSale, match="smallest charge"):
        cart_amounts(coupon("fixed", 7990), lines)


async def fill(m: Market, buyer: str, beats: list[dict[str, Any]]) -> None:
    for beat, tier in zip(beats, ("mp3_lease", "wav_lease", "mp3_lease"), strict=False):
        status, cart = await m.call("PUT", f"{M}/carts/seller/items/{beat['beat_id']}",
                                    who(buyer), {"tier": tier})
        assert status == 200, cart


async def uses(m: Market) -> dict[str, int]:
    status, listed = await m.call("GET", f"{M}/coupons", who("seller"))
    assert status == 200
    return {c["code"]: c["uses"] for c in listed}


async def one_use_checkout(m: Market, code: str, *, percent: int, **beat: Any
                           ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """A seller with two beats (``beat``: their fields) and a one-use ``percent`` coupon
    ``code``, and a buyer's cart checkout of both with it: the beats and the checkout."""
    await m.seller("seller")
    beats = [await m.beat("seller", title=f"Beat {n}", **beat) for n in range(2)]
    status, _ = await m.call("PUT", f"{M}/coupons/{code}", who("seller"),
                             {"kind": "percent", "value": percent, "max_uses": 1})
    assert status == 200
    await fill(m, "buyer", beats)
    status, started = await m.call("POST", f"{M}/carts/seller/checkout", who("buyer"),
                                   {"coupon": code})
    assert status == 201, started
    return beats, started


async def test_a_coupon_discounts_a_cart_and_the_sale_is_booked_at_that_total(
        tmp_path: Path, db_url: str) -> None:
    async with market(tmp_path, db_url) as m:
        await m.seller("seller")
        beats = [await m.beat("seller", title=f"Beat {n}") for n in range(3)]
        await m.call("PUT", f"{M}/deals/b2g1", who("seller"), {"buy": 2, "free": 1})
        for code, body in {"TEN": {"kind": "percent", "value": 10},
                           "ELSEWHERE": {"kind": "percent", "value": 10,
                                         "beat_id": "beat-not-in-cart"},
                           "EUROS": {"kind": "fixed", "value": 100, "currency": "eur"}
                           }.items():
            status, saved = await m.call("PUT", f"{M}/coupons/{code}", who("seller"), body)
            assert status == 200, saved
        await fill(m, "buyer", beats)
        status, cart = await m.call("GET", f"{M}/carts/seller", who("buyer"))
        expected = sorted(line["amount"] - line["amount"] * 10 // 100
                          for line in cart["lines"])
        for code, says in (("ELSEWHERE", "not in your cart"), ("EUROS", "EUR"),
                           ("NOPE", "no coupon")):
            status, body = await m.call("POST", f"{M}/carts/seller/checkout", who("buyer"),
                                        {"coupon": code})
            assert status == 409 and says in body["error"], (code, body)
        status, started = await m.call("POST", f"{M}/carts/seller/checkout", who("buyer"),
                                       {"coupon": "ten"})
        assert status == 201, started
        assert started["total"] == sum(expected) < cart["total"]
        assert sorted(o["amount"] for o in started["orders"]) == expected
        items = m.fake.line_items[started["checkout_url"].rsplit("/", 1)[1]]
        assert sorted(i["amount_total"] for i in items) == expected
        # the same cart and coupon again: the same session, no second use
        status, again = await m.call("POST", f"{M}/carts/seller/checkout", who("buyer"),
                                     {"coupon": "TEN"})
        assert status == 201 and again["cart_id"] == started["cart_id"], again
        assert (await uses(m))["TEN"] == 1
        m.pay(started)
        for o in started["orders"]:
            await m.order("buyer", o["order_id"], "paid")
        await m.fake.webhooks.settled()
        ledger = market_services(m).ledger
        assert (await ledger.balances("seller"))[("external:buyers", "usd")] == -sum(expected)
        assert await ledger.audit("seller") == []
        assert (await uses(m))["TEN"] == 1


async def test_one_use_per_cart_held_under_concurrency_and_given_back_on_expiry(
        tmp_path: Path, db_url: str) -> None:
    async with market(tmp_path, db_url) as m:
        await m.seller("seller")
        beats = [await m.beat("seller", title=f"Beat {n}") for n in range(2)]
        status, _ = await m.call("PUT", f"{M}/coupons/ONCE", who("seller"),
                                 {"kind": "percent", "value": 20, "max_uses": 1})
        assert status == 200
        buyers = [f"buyer{n}" for n in range(4)]
        for buyer in buyers:
            await fill(m, buyer, beats)
        answers = await asyncio.gather(*(
            m.call("POST", f"{M}/carts/seller/checkout", who(buyer), {"coupon": "ONCE"})
            for buyer in buyers))
        won = [body for status, body in answers if status == 201]
        refused = [body for status, body in answers if status != 201]
        assert len(won) == 1 and len(refused) == 3, answers
        assert all("used up" in body["error"] for body in refused), refused
        # both lines discounted by the coupon: one use, recorded on one order
        assert all("coupon ONCE" in o["note"] for o in won[0]["orders"])
        assert (await uses(m))["ONCE"] == 1
        store = market_services(m).store
        assert await store.db.fetchval("SELECT COUNT(*) FROM mkt_orders WHERE account_id = ? "
                                       "AND coupon = ?", "seller", "ONCE") == 1
        assert await market_services(m).checkout.sweep(time.time() + 10 ** 5) == len(
            won[0]["orders"])
        assert (await uses(m))["ONCE"] == 0
        # the use given back: another buyer may take it now
        loser = next(b for (status, _), b in zip(answers, buyers, strict=True)
                     if status != 201)
        status, body = await m.call("POST", f"{M}/carts/seller/checkout", who(loser),
                                    {"coupon": "ONCE"})
        assert status == 201 and (await uses(m))["ONCE"] == 1, body


async def test_a_cart_paid_after_its_checkout_expired_counts_its_coupon_again(
        tmp_path: Path, db_url: str) -> None:
    """The sweep closed the cart's checkout and gave its coupon's use back, then the buyer
    paid on Stripe's page after all: the discounted cart is sold, so the use counts
    again, and a one-use coupon is used up (as for a single checkout)."""
    async with market(tmp_path, db_url) as m:
        beats, started = await one_use_checkout(m, "ONCE", percent=20)
        await market_services(m).checkout.sweep(time.time() + 10 ** 5)
        assert (await uses(m))["ONCE"] == 0
        m.pay(started)
        for o in started["orders"]:
            await m.order("buyer", o["order_id"], "paid")
        await m.fake.webhooks.settled()
        assert (await uses(m))["ONCE"] == 1
        await fill(m, "other", beats)
        status, body = await m.call("POST", f"{M}/carts/seller/checkout", who("other"),
                                    {"coupon": "ONCE"})
        assert status == 409 and "used up" in body["error"], body


async def test_a_coupon_that_took_nothing_off_is_still_given_back_on_expiry(
        tmp_path: Path, db_url: str) -> None:
    """1 % of two 99-cent leases rounds to nothing on each line, yet the checkout counts
    a use of the coupon: it must be on a line, so that an expired checkout gives it back."""
    async with market(tmp_path, db_url) as m:
        cheap = [{"tier": "mp3_lease", "price": 99}, {"tier": "wav_lease", "price": 99}]
        await one_use_checkout(m, "TINY", percent=1, tiers=cheap)
        assert (await uses(m))["TINY"] == 1
        await market_services(m).checkout.sweep(time.time() + 10 ** 5)
        assert (await uses(m))["TINY"] == 0
