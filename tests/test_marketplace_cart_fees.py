"""The discovery fee and the member discount on cart checkouts: a line put in the cart by
a buyer the marketplace's discovery sent carries the fee on its own amount (summed as the
session's application fee), a member of the store gets the plan's discount off every
line, the books balance against Stripe's balance, and a line's refund still works."""

from __future__ import annotations

import asyncio
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest
from marketplace_helpers import (
    Market,
    market,
    market_services,
    who,
)

from business.marketplace import bookings

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(180)]
M = "/api/marketplace"


def tenth(amount: int) -> int:
    """10 %, rounded half up: the fee at ``discovery_fee_bp=1000``."""
    return int((Decimal(amount) / 10).quantize(Decimal(1), ROUND_HALF_UP))


async def add(m: Market, buyer: str, beat: dict[str, Any], tier: str, source: str = ""
              ) -> dict[str, Any]:
    status, cart = await m.call("PUT", f"{M}/carts/seller/items/{beat['beat_id']}",
                                who(buyer), {"tier": tier, "utm_source": source})
    assert status == 200, cart
    return cart


async def member(m: Market, fan: str) -> None:
    """``fan`` joins the seller's 10 %-off plan and Stripe says it is paid."""
    status, plan = await m.call("POST", f"{M}/membership-plans", who("seller"), {
        "name": "Gold", "amount": 1999, "currency": "usd", "interval": "month",
        "discount_percent": 10})
    assert status == 201, plan
    status, joined = await m.call("POST", f"{M}/memberships", who(fan), {
        "seller": "seller", "plan_id": plan["plan_id"],
        "success_url": "https://example.com/welcome/{MEMBERSHIP_ID}"})
    assert status == 201, joined
    m.fake.complete_checkout(joined["checkout_url"].rsplit("/", 1)[1], "pm_card_visa")
    async with asyncio.timeout(15):
        while True:
            status, mine = await m.call("GET", f"{M}/memberships", who(fan))
            if status == 200 and mine and mine[0]["access"]:
                return
            await asyncio.sleep(0.05)


async def books_match_stripe(m: Market, account: str) -> None:
    ledger = market_services(m).ledger
    stripe = m.fake.balances(account)["usd"]
    assert await ledger.balance("seller", bookings.SELLER, "usd") == (
        stripe["available"] + stripe["pending"])
    assert await ledger.audit("seller") == []


async def test_a_members_cart_pays_the_discovery_fee_per_discovered_line(
        tmp_path: Path, db_url: str) -> None:
    async with market(tmp_path, db_url, discovery_fee_bp=1000) as m:
        account = await m.seller("seller")
        beats = [await m.beat("seller", title=f"Beat {n}") for n in range(3)]
        await member(m, "fan")
        await add(m, "fan", beats[0], "wav_lease", "marketplace")  # found by discovery
        await add(m, "fan", beats[1], "mp3_lease")                 # the seller's own page
        cart = await add(m, "fan", beats[2], "mp3_lease", "tiktok")
        assert [line["source"] for line in cart["lines"]] == ["marketplace", "", "tiktok"]

        status, started = await m.call("POST", f"{M}/carts/seller/checkout", who("fan"), {})
        assert status == 201, started
        amounts = [o["amount"] for o in started["orders"]]
        assert amounts == [4999 - 499, 2999 - 299, 2999 - 299]  # 10 % off each line
        assert started["total"] == sum(amounts)
        assert all("member discount 10 %" in o["note"] for o in started["orders"])
        fee = tenth(amounts[0])  # the discovered line alone, on its discounted amount
        assert f"discovery fee {fee}" in started["orders"][0]["note"]
        assert "discovery fee" not in started["orders"][1]["note"]
        session_id = started["checkout_url"].rsplit("/", 1)[1]
        session = m.fake.objects[session_id]
        assert session["metadata"]["discovery_fee"] == str(fee)
        assert sorted(i["amount_total"] for i in m.fake.line_items[session_id]) == sorted(
            amounts)

        m.pay(started)
        for order in started["orders"]:
            await m.order("fan", order["order_id"], "paid")
        await m.fake.webhooks.settled()
        [intent] = [i for i in m.fake.all_of("payment_intent")
                    if (i.get("metadata") or {}).get("cart_id") == started["cart_id"]]
        assert intent["application_fee_amount"] == fee and intent["amount"] == sum(amounts)
        ledger = market_services(m).ledger
        assert await ledger.balance("seller", "platform:fees", "usd") == fee
        await books_match_stripe(m, account)

        # the seller refunds the discovered line alone: the buyer gets its amount back
        # (the platform keeps its fee, as Stripe does), the books still match Stripe's
        line = started["orders"][0]
        status, body = await m.call("POST", f"{M}/sales/{line['order_id']}/refund",
                                    who("seller"), {})
        assert status == 202, body
        await m.order("fan", line["order_id"], "refunded")
        await m.fake.webhooks.settled()
        assert await ledger.balance("seller", "external:refunds", "usd") == amounts[0]
        assert await ledger.balance("seller", "platform:fees", "usd") == fee
        status_of = {lic["beat_id"]: lic["status"] for lic in await m.library("fan")}
        assert status_of == {beats[0]["beat_id"]: "refunded", beats[1]["beat_id"]: "active",
                             beats[2]["beat_id"]: "active"}
        await books_match_stripe(m, account)


async def test_a_direct_cart_carries_no_fee_and_a_non_member_no_discount(
        tmp_path: Path) -> None:
    async with market(tmp_path, f"sqlite://{tmp_path / 'm.sqlite3'}",
                      discovery_fee_bp=1000) as m:
        account = await m.seller("seller")
        beats = [await m.beat("seller", title=f"Beat {n}") for n in range(2)]
        await member(m, "fan")
        await add(m, "buyer", beats[0], "wav_lease", "marketplace")
        await add(m, "buyer", beats[0], "wav_lease")  # added again from the store: direct
        await add(m, "buyer", beats[1], "mp3_lease")
        status, started = await m.call("POST", f"{M}/carts/seller/checkout", who("buyer"),
                                       {})
        assert status == 201, started
        assert [o["amount"] for o in started["orders"]] == [4999, 2999]
        assert not any("member discount" in o["note"] or "discovery fee" in o["note"]
                       for o in started["orders"])
        session = m.fake.objects[started["checkout_url"].rsplit("/", 1)[1]]
        assert "discovery_fee" not in session["metadata"]
        m.pay(started)
        for order in started["orders"]:
            await m.order("buyer", order["order_id"], "paid")
        await m.fake.webhooks.settled()
        [intent] = [i for i in m.fake.all_of("payment_intent")
                    if (i.get("metadata") or {}).get("cart_id") == started["cart_id"]]
        assert intent.get("application_fee_amount") is None
        assert await market_services(m).ledger.balance("seller", "platform:fees",
                                                       "usd") == 0
        await books_match_stripe(m, account)
