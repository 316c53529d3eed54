"""Coupons applied to the checkout's price on the server: percent and fixed, store-wide
and per beat, expiry, a usage limit held under concurrent checkouts, refusals; a
discounted order paid and booked at its discounted amount."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from marketplace_helpers import (
    market,
    who,
)

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(90)]


async def test_coupons_discount_the_checkout_and_the_sale_is_booked_at_that_price(
        tmp_path: Path, db_url: str) -> None:
    async with market(tmp_path, db_url) as m:
        await m.seller("seller")
        beat = await m.beat("seller", tiers=[{"tier": "mp3_lease", "price": 3000}])
        other = await m.beat("seller", tiers=[{"tier": "mp3_lease", "price": 3000}])
        put = {"SAVE20": {"kind": "percent", "value": 20},
               "FIVE": {"kind": "fixed", "value": 500, "currency": "USD",
                        "beat_id": beat["beat_id"]},
               "OLD": {"kind": "percent", "value": 50, "expires_at": time.time() - 1},
               "EUROS": {"kind": "fixed", "value": 500, "currency": "eur"},
               "ALL": {"kind": "percent", "value": 100}}
        for code, body in put.items():
            status, saved = await m.call("PUT", f"/api/marketplace/coupons/{code.lower()}",
                                         who("seller"), body)
            assert status == 200 and saved["code"] == code and saved["uses"] == 0, saved

        status, started = await m.checkout("buyer", "seller", beat["beat_id"], "mp3_lease",
                                           coupon="save20")
        assert status == 201 and started["order"]["amount"] == 2400, started
        status, fixed = await m.checkout("buyer", "seller", beat["beat_id"], "mp3_lease",
                                         coupon="FIVE")
        assert status == 201 and fixed["order"]["amount"] == 2500
        for code, beat_id, says in (("FIVE", other["beat_id"], "another beat"),
                                    ("OLD", beat["beat_id"], "expired"),
                                    ("EUROS", beat["beat_id"], "EUR"),
                                    ("ALL", beat["beat_id"], "smallest charge"),
                                    ("NOPE", beat["beat_id"], "no coupon")):
            status, body = await m.checkout("buyer", "seller", beat_id, "mp3_lease",
                                            coupon=code)
            assert status == 409 and says in body["error"], (code, body)

        # paid at the discounted price: the order, the licence and the books agree
        m.pay(started)
        order = await m.order("buyer", started["order"]["order_id"], "paid")
        assert order["amount"] == 2400
        assert [lic["order_id"] for lic in await m.library("buyer")] == [order["order_id"]]
        status, listed = await m.call("GET", "/api/marketplace/coupons", who("seller"))
        uses = {c["code"]: c["uses"] for c in listed}
        assert uses == {"ALL": 0, "EUROS": 0, "FIVE": 1, "OLD": 0, "SAVE20": 1}


async def test_a_usage_limit_holds_under_concurrent_checkouts(
        tmp_path: Path, db_url: str) -> None:
    async with market(tmp_path, db_url) as m:
        await m.seller("seller")
        beat = await m.beat("seller")
        status, _ = await m.call("PUT", "/api/marketplace/coupons/LAUNCH", who("seller"),
                                 {"kind": "percent", "value": 10, "max_uses": 2})
        assert status == 200
        answers = await asyncio.gather(*(
            m.checkout(f"buyer{n}", "seller", beat["beat_id"], "mp3_lease", coupon="LAUNCH")
            for n in range(6)))
        assert sorted(s for s, _ in answers) == [201, 201, 409, 409, 409, 409]
        assert all("used up" in b["error"] for s, b in answers if s == 409)
        # 10 % off 29.99, the discount rounded down
        assert {b["order"]["amount"] for s, b in answers if s == 201} == {2999 - 299}


@pytest.mark.parametrize(("code", "body", "says"), [
    ("x", {"kind": "percent", "value": 10}, "coupon code"),
    ("HALF", {"kind": "percent", "value": 150}, "1 to 100"),
    ("FIXED", {"kind": "fixed", "value": 100}, "currency"),
    ("ZZZ", {"kind": "fixed", "value": 100, "currency": "zzz"}, "not an ISO 4217 currency"),
    ("KWD", {"kind": "fixed", "value": 100, "currency": "kwd"}, "three decimals"),
    ("ZERO", {"kind": "fixed", "value": 0, "currency": "usd"}, "value"),
])
async def test_bad_coupons_are_refused(tmp_path: Path, code: str, body: dict[str, object],
                                       says: str) -> None:
    async with market(tmp_path, f"sqlite://{tmp_path / 'market.sqlite3'}") as m:
        status, answer = await m.call("PUT", f"/api/marketplace/coupons/{code}",
                                      who("seller"), body)
        assert status == 422 and says in str(answer), answer
        status, _ = await m.call("PUT", "/api/marketplace/coupons/OK", who("seller", "ed",
                                                                           "editor"),
                                 {"kind": "percent", "value": 10})
        assert status == 403
