"""Carts and bulk deals: a cart of one store priced with the seller's best deal, paid on
one Stripe Checkout Session with a line item per beat, every line fulfilled once under
duplicated deliveries; an exclusive another buyer holds refused at checkout; a lease
line whose beat is sold exclusively before the payment arrives refunded alone."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from marketplace_helpers import (
    Market,
    market,
    market_services,
    who,
)

from business.marketplace import bookings
from business.marketplace.deals import Deal, Priced, apply
from business.marketplace.visitor_carts import purge_stale

pytestmark = [pytest.mark.timeout(120)]

M = "/api/marketplace"


@pytest.mark.asyncio
async def test_deals_make_the_cheapest_of_each_group_free() -> None:
    b2g1 = Deal("b2g1", 2, 1)
    lines = [Priced("a", "mp3_lease", 2999, False), Priced("b", "wav_lease", 4999, False),
             Priced("c", "mp3_lease", 1999, False)]
    assert apply([b2g1], lines) == (b2g1, {"c"})
    assert apply([b2g1], lines[:2]) == (None, set())  # not a full group
    six = [Priced(str(n), "mp3_lease", 1000 + n, False) for n in range(6)]
    assert apply([b2g1], six)[1] == {"0", "3"}  # the cheapest of each group of three
    # an exclusive never counts; a deal limited to tiers counts only those
    with_exclusive = [*lines[:2], Priced("x", "exclusive", 100, True)]
    assert apply([b2g1], with_exclusive) == (None, set())
    wav_only = Deal("wav", 1, 1, ("wav_lease",))
    assert apply([wav_only], lines) == (None, set())
    # of two deals, the one saving most; an inactive one never
    b1g1 = Deal("b1g1", 1, 1)
    assert apply([b2g1, b1g1], lines) == (b1g1, {"a"})  # 29.99 off beats 19.99
    assert apply([b2g1, Deal("b1g1", 1, 1, active=False)], lines) == (b2g1, {"c"})


async def shop(m: Market, beats: int = 3) -> list[dict[str, Any]]:
    await m.seller("seller")
    return [await m.beat("seller", title=f"Beat {n}") for n in range(beats)]


async def add(m: Market, buyer: str, beat: dict[str, Any], tier: str) -> dict[str, Any]:
    status, cart = await m.call("PUT", f"{M}/carts/seller/items/{beat['beat_id']}",
                                who(buyer), {"tier": tier})
    assert status == 200, cart
    return cart


async def orders_in(m: Market, buyer: str, started: dict[str, Any], *states: str
                    ) -> list[dict[str, Any]]:
    return [await m.order(buyer, o["order_id"], *states) for o in started["orders"]]


@pytest.mark.asyncio
async def test_a_cart_is_paid_on_one_session_and_every_line_fulfilled_once(
        tmp_path: Path, db_url: str) -> None:
    async with market(tmp_path, db_url) as m:
        beats = await shop(m)
        status, deal = await m.call("PUT", f"{M}/deals/b2g1", who("seller"),
                                    {"buy": 2, "free": 1})
        assert status == 200 and deal["label"] == "buy 2 get 1 free"
        await add(m, "buyer", beats[0], "mp3_lease")
        await add(m, "buyer", beats[1], "wav_lease")
        await add(m, "buyer", beats[2], "wav_lease")
        cart = await add(m, "buyer", beats[2], "mp3_lease")  # replaces the tier
        assert [line["tier"] for line in cart["lines"]] == ["mp3_lease", "wav_lease",
                                                            "mp3_lease"]
        assert cart["subtotal"] == 2999 + 4999 + 2999 and cart["total"] == 2999 + 4999
        assert sum(line["free"] for line in cart["lines"]) == 1
        assert cart["deal"]["deal_id"] == "b2g1" and cart["total_text"] == "79.98 USD"
        # another buyer's cart is their own
        status, theirs = await m.call("GET", f"{M}/carts/seller", who("other"))
        assert status == 200 and theirs["lines"] == []

        status, started = await m.call("POST", f"{M}/carts/seller/checkout", who("buyer"),
                                       {"success_url": "https://example.com/ok/{ORDER_ID}"})
        assert status == 201, started
        assert started["total"] == 7998 and len(started["orders"]) == 3
        session_id = started["checkout_url"].rsplit("/", 1)[1]
        items = m.fake.line_items[session_id]
        assert sorted(i["amount_total"] for i in items) == [0, 2999, 4999]
        m.fake.webhooks.duplicate_next(3)
        m.pay(started)
        await orders_in(m, "buyer", started, "paid")
        await m.fake.webhooks.settled()
        library = await m.library("buyer")
        assert sorted(lic["beat_id"] for lic in library) == sorted(b["beat_id"] for b in beats)
        ledger = market_services(m).ledger
        sales = [p for p in await ledger.postings("seller") if p["kind"] == "sale"]
        assert len(sales) == 1
        assert (await ledger.balances("seller"))[("external:buyers", "usd")] == -7998
        assert await ledger.audit("seller") == []
        status, cart = await m.call("GET", f"{M}/carts/seller", who("buyer"))
        assert cart["lines"] == []  # paid lines leave the cart


@pytest.mark.asyncio
async def test_refunding_a_free_line_revokes_it_at_once_and_moves_no_money(
        tmp_path: Path) -> None:
    """A bulk deal's free line was paid nothing: no Stripe refund is asked for (and no
    charge.refunded will come), so the seller's refund revokes it there and then."""
    async with market(tmp_path, f"sqlite://{tmp_path / 'm.sqlite3'}") as m:
        beats = await shop(m)
        status, _ = await m.call("PUT", f"{M}/deals/b1g1", who("seller"),
                                 {"buy": 1, "free": 1})
        assert status == 200
        await add(m, "buyer", beats[0], "mp3_lease")
        await add(m, "buyer", beats[1], "wav_lease")
        status, started = await m.call("POST", f"{M}/carts/seller/checkout", who("buyer"), {})
        assert status == 201, started
        m.pay(started)
        await orders_in(m, "buyer", started, "paid")
        await m.fake.webhooks.settled()
        ledger = market_services(m).ledger
        books = await ledger.balances("seller")
        free = next(o for o in started["orders"] if o["amount"] == 0)
        status, refunded = await m.call("POST", f"{M}/sales/{free['order_id']}/refund",
                                        who("seller"), {})
        assert status == 202 and refunded["status"] == "refunded", refunded
        await m.fake.webhooks.settled()
        held = {lic["order_id"]: lic["status"] for lic in await m.library("buyer")}
        paid = next(o for o in started["orders"] if o["amount"] > 0)
        assert held == {free["order_id"]: "refunded", paid["order_id"]: "active"}
        assert m.fake.all_of("refund") == []
        assert await ledger.balances("seller") == books
        status, again = await m.call("POST", f"{M}/sales/{free['order_id']}/refund",
                                     who("seller"), {})
        assert status == 202 and again["status"] == "refunded"


@pytest.mark.asyncio
async def test_an_exclusive_held_by_another_buyer_is_refused_at_checkout(
        tmp_path: Path) -> None:
    async with market(tmp_path, f"sqlite://{tmp_path / 'm.sqlite3'}") as m:
        beats = await shop(m, 2)
        await add(m, "buyer", beats[0], "exclusive")
        await add(m, "buyer", beats[1], "mp3_lease")
        status, rival = await m.checkout("rival", "seller", beats[0]["beat_id"], "exclusive")
        assert status == 201, rival
        status, body = await m.call("POST", f"{M}/carts/seller/checkout", who("buyer"), {})
        assert status == 409 and beats[0]["beat_id"] in body["error"]
        assert "remove it from your cart" in body["error"]
        # nothing was opened for the refused cart
        store = market_services(m).store
        assert await store.db.fetchval("SELECT COUNT(*) FROM mkt_orders WHERE "
                                       "buyer_account = ?", "buyer") == 0
        # the rival pays: the beat is gone from the cart, the rest checks out
        m.pay(rival)
        await m.order("rival", rival["order"]["order_id"], "paid")
        status, cart = await m.call("GET", f"{M}/carts/seller", who("buyer"))
        assert [line["beat_id"] for line in cart["lines"]] == [beats[1]["beat_id"]]
        assert cart["unavailable"][0]["beat_id"] == beats[0]["beat_id"]
        status, started = await m.call("POST", f"{M}/carts/seller/checkout", who("buyer"), {})
        assert status == 201 and len(started["orders"]) == 1
        # adding a sold beat is refused; so is one's own, and another currency
        status, _ = await m.call("PUT", f"{M}/carts/seller/items/{beats[0]['beat_id']}",
                                 who("buyer"), {"tier": "mp3_lease"})
        assert status == 409
        status, _ = await m.call("PUT", f"{M}/carts/seller/items/{beats[1]['beat_id']}",
                                 who("seller"), {"tier": "mp3_lease"})
        assert status == 409
        euro = await m.beat("seller", currency="eur")
        status, body = await m.call("PUT", f"{M}/carts/seller/items/{euro['beat_id']}",
                                    who("buyer"), {"tier": "mp3_lease"})
        assert status == 422 and "EUR" in body["error"]
        status, _ = await m.call("POST", f"{M}/carts/nobody/checkout", who("buyer"), {})
        assert status == 409  # an empty cart


@pytest.mark.asyncio
async def test_a_lease_line_sold_exclusively_before_payment_is_refunded_alone(
        tmp_path: Path, db_url: str) -> None:
    async with market(tmp_path, db_url) as m:
        beats = await shop(m, 2)
        await add(m, "buyer", beats[0], "mp3_lease")
        await add(m, "buyer", beats[1], "wav_lease")
        status, started = await m.call("POST", f"{M}/carts/seller/checkout", who("buyer"), {})
        assert status == 201, started
        # meanwhile another buyer takes beat 0 exclusively (a lease holds nothing)
        status, rival = await m.checkout("rival", "seller", beats[0]["beat_id"], "exclusive")
        assert status == 201, rival
        m.pay(rival)
        await m.order("rival", rival["order"]["order_id"], "paid")
        m.pay(started)
        first, second = started["orders"]
        refunded = await m.order("buyer", first["order_id"], "refunded")
        assert "refunded" in refunded["note"]
        paid = await m.order("buyer", second["order_id"], "paid")
        assert paid["status"] == "paid"
        await m.fake.webhooks.settled()
        assert [lic["beat_id"] for lic in await m.library("buyer")] == [beats[1]["beat_id"]]
        ledger = market_services(m).ledger
        balances = await ledger.balances("seller")
        assert balances[("external:refunds", "usd")] == 2999  # the one line alone
        assert balances[("external:buyers", "usd")] == -(2999 + 4999 + 49999)
        assert await ledger.audit("seller") == []
        # Stripe refunded that line's amount of the one charge, once
        async with asyncio.timeout(10):
            while True:
                charges = [o for o in m.fake.objects.values() if o.get("object") == "charge"
                           and o.get("amount") == 7998]
                if charges and charges[0]["amount_refunded"] == 2999:
                    break
                await asyncio.sleep(0.05)


@pytest.mark.asyncio
async def test_a_cart_lines_partial_refunds_and_dashboard_refunds_follow_stripe(
        tmp_path: Path, db_url: str) -> None:
    """A cart's one charge refunded in parts: a line's second partial refund books what
    its total grew by, a refund naming no line (made in Stripe's dashboard) is booked
    too, and once the whole charge is back every line's licence goes."""
    async with market(tmp_path, db_url) as m:
        beats = await shop(m, 2)
        await add(m, "buyer", beats[0], "mp3_lease")
        await add(m, "buyer", beats[1], "wav_lease")
        status, started = await m.call("POST", f"{M}/carts/seller/checkout", who("buyer"), {})
        assert status == 201, started
        m.pay(started)
        first, second = started["orders"]
        for line in (first, second):
            await m.order("buyer", line["order_id"], "paid")
        services = market_services(m)
        ledger = services.ledger
        order = await services.store.order("seller", first["order_id"])
        assert order is not None and order.charged_on

        async def refund(n: int, amount: int | None, names: str | None) -> None:
            await services.gateway.refund(
                idempotency_key=f"cart-partial-{n}", payment_intent=order.payment_intent,
                amount=amount, account=order.charged_on,
                metadata={"order_id": names} if names else None)
            await m.fake.webhooks.settled()

        async def books_follow_stripe(refunded: int) -> None:
            assert (await ledger.balances("seller"))[("external:refunds", "usd")] == refunded
            found = m.fake.balances(order.charged_on)["usd"]
            assert await ledger.balance("seller", bookings.SELLER, "usd") == (
                found["available"] + found["pending"])

        await refund(0, 1000, first["order_id"])
        await refund(1, 700, first["order_id"])
        await books_follow_stripe(1700)
        await m.order("buyer", first["order_id"], "refunded")
        await refund(2, 500, None)  # part of the charge, no line named
        await books_follow_stripe(2200)
        for event in m.fake.events_of("charge.refunded"):  # delivered again: no change
            m.fake.webhooks.redeliver(event)
        await m.fake.webhooks.settled()
        await books_follow_stripe(2200)
        held = {lic["beat_id"]: lic["status"] for lic in await m.library("buyer")}
        assert held == {beats[0]["beat_id"]: "refunded", beats[1]["beat_id"]: "active"}
        await refund(3, None, None)  # the rest of the charge
        await books_follow_stripe(2999 + 4999)
        await m.order("buyer", second["order_id"], "refunded")
        assert {lic["status"] for lic in await m.library("buyer")} == {"refunded"}
        assert await ledger.audit("seller") == []


@pytest.mark.asyncio
async def test_a_visitors_cart_lives_in_a_signed_cookie_and_moves_at_sign_in(
        tmp_path: Path) -> None:
    async with market(tmp_path, f"sqlite://{tmp_path / 'm.sqlite3'}") as m:
        beats = await shop(m, 3)
        status, _ = await m.call("PUT", f"{M}/storefront", who("seller"),
                                 {"handle": "nightshop", "name": "Nightshop"})
        assert status == 200
        status, _ = await m.call("PUT", f"{M}/deals/b2g1", who("seller"),
                                 {"buy": 2, "free": 1})
        # the beat page offers each licence to the cart, with no script
        page = await (await m.client.get(f"/store/nightshop/beats/{beats[0]['beat_id']}")
                      ).text()
        assert 'action="/store/nightshop/cart"' in page and "Add MP3 lease to cart" in page
        visitor = aiohttp_jar()
        async with m.client.session.__class__(cookie_jar=visitor) as browser:
            base = str(m.client.make_url(""))
            for beat, tier in zip(beats, ("mp3_lease", "wav_lease", "mp3_lease"),
                                  strict=True):
                answer = await browser.post(f"{base}/store/nightshop/cart", data={
                    "beat_id": beat["beat_id"], "tier": tier}, allow_redirects=False)
                assert answer.status == 303, await answer.text()
                assert answer.headers["Location"] == "/store/nightshop/cart"
            cookie = next(c for c in visitor if c.key == "mkt_cart")
            assert cookie["httponly"] and cookie["samesite"] == "Lax"
            html = await (await browser.get(f"{base}/store/nightshop/cart")).text()
            assert "Beat 0" in html and "Beat 2" in html and "79.98 USD" in html
            assert "buy 2 get 1 free" in html
            # a refused line is shown, not an error page of JSON
            answer = await browser.post(f"{base}/store/nightshop/cart", data={
                "beat_id": "beat_missing", "tier": "mp3_lease"}, allow_redirects=False)
            assert answer.status == 409 and "no beat &#39;beat_missing&#39;" in await answer.text()
            answer = await browser.post(f"{base}/store/nightshop/cart", data={
                "action": "remove", "beat_id": beats[2]["beat_id"]}, allow_redirects=False)
            assert answer.status == 303
            # a forged cookie is another (empty) cart
            forged = f"mkt_cart={cookie.value.split('.')[0]}.{'0' * 32}"
            html = await (await m.client.get("/store/nightshop/cart",
                                              headers={"Cookie": forged})).text()
            assert "Your cart is empty" in html
            # signed in, the buyer claims it from the same browser: the cookie (Path=/)
            # goes to the API with no help, and the lines move into their own cart
            assert cookie["path"] == "/"
            answer = await browser.post(f"{base}{M}/carts/seller/claim", headers=who("buyer"),
                                        json={})
            status, cart = answer.status, await answer.json()
            assert status == 200, cart
            assert [line["beat_id"] for line in cart["lines"]] == [b["beat_id"]
                                                                  for b in beats[:2]]
            html = await (await browser.get(f"{base}/store/nightshop/cart")).text()
            assert "Your cart is empty" in html
            status, started = await m.call("POST", f"{M}/carts/seller/checkout",
                                           who("buyer"), {})
            assert status == 201 and started["total"] == 2999 + 4999


def aiohttp_jar() -> Any:
    return aiohttp.CookieJar(unsafe=True)


@pytest.mark.asyncio
async def test_new_visitor_carts_are_rate_limited_per_address_and_stale_ones_purged(
        tmp_path: Path) -> None:
    async with market(tmp_path, f"sqlite://{tmp_path / 'm.sqlite3'}",
                      visitor_carts_per_minute=3) as m:
        beats = await shop(m, 1)
        status, _ = await m.call("PUT", f"{M}/storefront", who("seller"),
                                 {"handle": "nightshop", "name": "Nightshop"})
        assert status == 200
        form = {"beat_id": beats[0]["beat_id"], "tier": "mp3_lease"}
        base = str(m.client.make_url(""))
        # a browser that keeps its cookie starts one cart, however often it posts
        async with m.client.session.__class__(cookie_jar=aiohttp_jar()) as browser:
            for _ in range(5):
                answer = await browser.post(f"{base}/store/nightshop/cart", data=form,
                                            allow_redirects=False)
                assert answer.status == 303, await answer.text()
        # a client dropping the cookie starts a new cart on every post, until the limit
        async with m.client.session.__class__(cookie_jar=aiohttp.DummyCookieJar()) as bot:
            for _ in range(2):
                answer = await bot.post(f"{base}/store/nightshop/cart", data=form,
                                        allow_redirects=False)
                assert answer.status == 303 and "mkt_cart=" in answer.headers["Set-Cookie"]
            answer = await bot.post(f"{base}/store/nightshop/cart", data=form,
                                    allow_redirects=False)
            assert answer.status == 429
            assert 1 <= int(answer.headers["Retry-After"]) <= 61
            assert "wait a minute" in (await answer.json())["error"]
        db = market_services(m).store.db
        owners = await db.fetch("SELECT owner, added_at FROM mkt_cart_items WHERE owner "
                                "LIKE 'visitor:%' ORDER BY added_at")
        assert len(owners) == 3
        # a cart left alone past visitor_cart_days is purged; a fresher one stays
        old = owners[0]["owner"]
        await db.execute("UPDATE mkt_cart_items SET added_at = added_at - ? WHERE owner = ?",
                         31 * 86_400.0, old)
        assert await purge_stale(db, 30 * 86_400.0) == 1
        left = {r["owner"] for r in await db.fetch("SELECT owner FROM mkt_cart_items")}
        assert old not in left and len(left) == 2
        assert await purge_stale(db, 30 * 86_400.0) == 0


@pytest.mark.asyncio
async def test_checking_out_the_same_cart_twice_answers_the_open_session(
        tmp_path: Path) -> None:
    async with market(tmp_path, f"sqlite://{tmp_path / 'm.sqlite3'}") as m:
        beats = await shop(m, 3)
        await add(m, "buyer", beats[0], "mp3_lease")
        await add(m, "buyer", beats[1], "wav_lease")
        status, first = await m.call("POST", f"{M}/carts/seller/checkout", who("buyer"), {})
        assert status == 201, first
        # a double click, a second tab: the same session, not a second payable one
        status, again = await m.call("POST", f"{M}/carts/seller/checkout", who("buyer"), {})
        assert status == 201, again
        assert again["checkout_url"] == first["checkout_url"]
        assert again["cart_id"] == first["cart_id"]
        assert sorted(o["order_id"] for o in again["orders"]) == sorted(
            o["order_id"] for o in first["orders"])
        db = market_services(m).store.db
        assert await db.fetchval("SELECT COUNT(DISTINCT session_id) FROM mkt_orders WHERE "
                                 "buyer_account = ?", "buyer") == 1
        assert await db.fetchval("SELECT COUNT(*) FROM mkt_orders WHERE "
                                 "buyer_account = ?", "buyer") == 2
        # a changed cart is refused while the first checkout is open
        await add(m, "buyer", beats[2], "mp3_lease")
        status, body = await m.call("POST", f"{M}/carts/seller/checkout", who("buyer"), {})
        assert status == 409 and "open checkout of this cart" in body["error"]
        # once it is paid, the remaining line checks out on a new session
        m.pay(first)
        await orders_in(m, "buyer", first, "paid")
        await m.fake.webhooks.settled()
        status, third = await m.call("POST", f"{M}/carts/seller/checkout", who("buyer"), {})
        assert status == 201, third
        assert third["checkout_url"] != first["checkout_url"]
        assert [o["beat_id"] for o in third["orders"]] == [beats[2]["beat_id"]]


def test_a_visitor_cookie_is_read_only_when_we_signed_it() -> None:
    from business.marketplace.storefront_cart import COOKIE, sign, visitor_of

    key = b"k" * 32
    good = sign(key, "v1")
    assert visitor_of(key, f"theme=dark; {COOKIE}={good}") == "v1"
    assert visitor_of(key, f"{COOKIE}=v1.{'0' * 10}") is None
    assert visitor_of(key, f"{COOKIE}={good[:-1]}é") is None  # non-ASCII: refused, not a 500
    assert visitor_of(key, None) is None
