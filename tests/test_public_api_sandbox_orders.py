"""The marketplace's sandbox sales: ``POST /api/v1/orders`` with test-mode keys.

Over a real server with the marketplace paying through a real fake Stripe (``FakeStripe``,
recording every request) and real webhook receivers: a test-mode key sells one of its
account's beats in simulation. The paid order and its licence are sandbox objects (only
test-mode keys reach them), no request reaches Stripe, live data is left as it was (an
exclusive leaves the beat on sale, no lease is counted, nothing is booked or reported),
and only test-mode webhooks hear ``marketplace.sale``. Live keys may not make orders.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from marketplace_helpers import WEBHOOK_SECRET, Assets
from public_api_helpers import ids, key_of, signed_in
from smtp_server import SmtpServer
from test_public_api_test_mode import settled
from test_public_api_webhooks import FAST, subscribe
from webhook_receiver import Receiver

from business.marketplace import reports
from business.marketplace.fakes.stripe import FakeStripe, FakeStripeServer
from business.marketplace.fulfilment import SALE_EVENT
from business.marketplace.models import Licence, Order
from business.marketplace.services import services as marketplace
from dawserver.keys import PLUGIN_CONTEXT_KEY

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(240)]
ORDERS = "/api/v1/orders"
LICENCES = "/api/v1/licences"
SCOPES = ["marketplace.read", "marketplace.library", "marketplace.sandbox", "webhooks.manage"]


@asynccontextmanager
async def shop(tmp_path: Path, smtp: SmtpServer, *emails: str, **overrides: Any
               ) -> AsyncIterator[tuple[Any, ...]]:
    """:func:`signed_in` with the marketplace paying through a fake Stripe and reading
    beat files from a stand-in asset store: ``(app, fake, assets, Account, ...)``."""
    fake = FakeStripe(webhook_secret=WEBHOOK_SECRET)
    assets = Assets(tmp_path / "assets")
    async with FakeStripeServer(fake) as server:
        plugins = {"marketplace": {"stripe": {
            "api_key": fake.api_key, "api_base": server.url, "webhook_secret": WEBHOOK_SECRET,
            "max_network_retries": 0, "timeout": 10}, "asset_file": assets.file}}
        async with signed_in(tmp_path, smtp, *emails, plugins=plugins, **overrides) as (
                app, *accounts):
            yield (app, fake, assets, *accounts)


async def new_beat(person: Any, assets: Assets, title: str = "Night Drive") -> dict[str, Any]:
    """A beat of ``person``'s account with every file kind, so every default tier (an
    exclusive one included) is on sale; made through the module's own route."""
    files = [{"kind": kind, "asset_id": assets.add(person.id, f"{kind}-{len(assets.files)}",
                                                   b"audio " + kind.encode())}
             for kind in ("tagged_mp3", "mp3", "wav", "stems")]
    status, beat, _ = await person.call("POST", "/api/marketplace/beats", {
        "title": title, "bpm": 140, "key": "A minor", "genre": "Trap", "mood": "Dark",
        "tags": ["808"], "currency": "usd", "files": files})
    assert status == 201, beat
    return beat


async def sell(caller: Any, beat_id: str, tier: str, key: str | None = None,
               **more: str) -> tuple[int, Any, Any]:
    headers = {"Idempotency-Key": key} if key else None
    return await caller.call("POST", ORDERS, {"beat_id": beat_id, "tier": tier, **more},
                             headers=headers)


async def live_state(app: Any, account_id: str, beat_id: str) -> dict[str, Any]:
    """What a real sale changes: the beat's row, the ledger, the reports, the customers."""
    db = app[PLUGIN_CONTEXT_KEY].database()
    beat = await db.fetchrow("SELECT status, sold_order, reserved_order, leases_sold FROM "
                             "mkt_beats WHERE account_id = ? AND beat_id = ?",
                             account_id, beat_id)
    return {"beat": dict(beat),
            "postings": await db.fetchval("SELECT COUNT(*) FROM mkt_ledger_postings"),
            "customers": await db.fetchval("SELECT COUNT(*) FROM mkt_customers"),
            "sales": (await reports.sales(db, account_id))["total"],
            "csv": await reports.customers_csv(db, account_id)}


async def test_a_test_key_sells_in_sandbox_and_a_live_key_never_sees_it(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with shop(tmp_path, smtp_server) as (
            app, fake, assets, (ada_person, ada), (bob_person, bob)):
        live = await key_of(ada_person, ada, SCOPES)
        test = await key_of(ada_person, ada, SCOPES, test=True)
        beat = await new_beat(ada_person, assets)
        before = await live_state(app, ada.person_id, beat["beat_id"])

        status, order, headers = await sell(test, beat["beat_id"], "wav_lease",
                                            buyer_email="fan@example.org")
        assert status == 201, order
        assert headers["Location"] == f"{ORDERS}/{order['id']}"
        assert order["status"] == "paid" and order["paid_at"] and not order["exclusive"]
        assert (order["beat_id"], order["tier"]) == (beat["beat_id"], "wav_lease")
        wav = next(t for t in beat["tiers"] if t["tier"] == "wav_lease")
        assert (order["amount"], order["currency"]) == (wav["price"], "usd")

        # the test key lists and reaches the order and its licence
        assert await ids(test, ORDERS) == [order["id"]]
        status, got, _ = await test.call("GET", f"{ORDERS}/{order['id']}")
        assert status == 200 and got == order
        status, page, _ = await test.call("GET", LICENCES)
        assert status == 200, page
        (licence,) = page["data"]
        assert licence["order_id"] == order["id"] and licence["beat_id"] == beat["beat_id"]
        assert licence["status"] == "active" and licence["seller"] == ada.person_id
        assert licence["download_limit"] == wav["download_limit"]
        assert (await test.call("GET", f"{LICENCES}/{licence['id']}"))[0] == 200

        # a live key lists neither, and reaches neither by id
        assert await ids(live, ORDERS) == []
        assert await ids(live, LICENCES) == []
        for path in (f"{ORDERS}/{order['id']}", f"{LICENCES}/{licence['id']}"):
            status, problem, _ = await live.call("GET", path)
            assert status == 404 and problem["status"] == 404, (path, problem)
        # another account's test key neither
        bob_test = await key_of(bob_person, bob, SCOPES, test=True)
        assert await ids(bob_test, ORDERS) == []
        assert (await bob_test.call("GET", f"{ORDERS}/{order['id']}"))[0] == 404

        # the order and the licence are marked in the account's sandbox
        context = app[PLUGIN_CONTEXT_KEY]
        marks = await context.database().fetch(
            "SELECT object_id FROM api_sandbox WHERE account_id = ?", ada.person_id)
        assert sorted(r["object_id"] for r in marks) == sorted(
            [f"marketplace:{order['id']}", f"marketplace:{licence['id']}"])
        stored = await marketplace(context).store.order(ada.person_id, order["id"])
        assert stored is not None and stored.sandbox and "fan@example.org" in stored.note
        assert stored.session_id is None and stored.payment_intent is None

        # no request reached Stripe, and no live data changed
        assert fake.requests == []
        assert await live_state(app, ada.person_id, beat["beat_id"]) == before
        # the seller cannot refund a sale nobody paid for
        status, problem, _ = await ada_person.call(
            "POST", f"/api/marketplace/sales/{order['id']}/refund", {})
        assert status == 409 and "sandbox" in str(problem), problem
        assert fake.requests == []


def counting_market_queries(db: Any) -> tuple[list[str], Any]:
    """Count the marketplace's queries ``db`` runs from now on: (their SQL, undo)."""
    seen: list[str] = []
    saved = {name: getattr(db, name) for name in ("fetch", "fetchrow", "fetchval")}

    def counted(name: str) -> Any:
        async def run(sql: str, *args: Any) -> Any:
            if "mkt_" in sql:
                seen.append(sql)
            return await saved[name](sql, *args)
        return run

    for name in saved:
        setattr(db, name, counted(name))

    def undo() -> None:
        for name, method in saved.items():
            setattr(db, name, method)

    return seen, undo


async def test_each_order_names_the_licence_it_granted(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with shop(tmp_path, smtp_server, "ada@example.org") as (
            app, fake, assets, (ada_person, ada)):
        live = await key_of(ada_person, ada, SCOPES)
        test = await key_of(ada_person, ada, SCOPES, test=True)
        beat = await new_beat(ada_person, assets)
        store = marketplace(app[PLUGIN_CONTEXT_KEY]).store

        status, first, _ = await sell(test, beat["beat_id"], "mp3_lease")
        assert status == 201 and first["licence_id"], first
        status, page, _ = await test.call("GET", LICENCES)
        assert status == 200, page
        (licence,) = page["data"]
        assert licence["order_id"] == first["id"] and first["licence_id"] == licence["id"]
        seen, undo = counting_market_queries(store.db)
        try:
            status, one, _ = await test.call("GET", ORDERS)
            queries_for_one = len(seen)
        finally:
            undo()
        assert status == 200 and one["data"] == [first], one

        for tier in ("wav_lease", "exclusive"):
            status, order, _ = await sell(test, beat["beat_id"], tier)
            assert status == 201, order
        status, page, _ = await test.call("GET", LICENCES)
        granted = {lic["order_id"]: lic["id"] for lic in page["data"]}
        assert len(granted) == 3 and len(set(granted.values())) == 3
        seen, undo = counting_market_queries(store.db)
        try:
            status, three, _ = await test.call("GET", ORDERS)
            queries_for_three = len(seen)
        finally:
            undo()
        assert status == 200 and len(three["data"]) == 3, three
        # each order names the sandbox licence granted with it, in the licences list
        assert {o["id"]: o["licence_id"] for o in three["data"]} == granted
        for order in three["data"]:
            status, got, _ = await test.call("GET", f"{ORDERS}/{order['id']}")
            assert status == 200 and got["licence_id"] == granted[order["id"]], got
        marks = await store.db.fetch(
            "SELECT object_id FROM api_sandbox WHERE account_id = ?", ada.person_id)
        assert {f"marketplace:{lic}" for lic in granted.values()} <= {
            r["object_id"] for r in marks}
        # no query per order: a list of three costs what a list of one did
        assert queries_for_three == queries_for_one, (seen, queries_for_one)
        status, cut, _ = await test.call("GET", f"{ORDERS}?fields=licence_id")
        assert status == 200 and cut["data"][0] == {"id": first["id"],
                                                    "licence_id": first["licence_id"]}

        # live orders: a paid one names its own licence, an open one none yet
        now = 1000.0
        paid = Order(ada.person_id, "ord_paid", beat["beat_id"], "wav_lease", "buyer-1", 2999,
                     "usd", False, "paid", "acct_1", "cs_1", "pi_1", "", now, now + 1)
        waiting = Order(ada.person_id, "ord_open", beat["beat_id"], "wav_lease", "buyer-2",
                        2999, "usd", False, "open", "acct_1", "cs_2", None, "", now + 2)
        async with store.db.transaction() as tx:
            await store.insert_order(tx, paid)
            await store.insert_order(tx, waiting)
            await store.insert_licence(tx, Licence(
                ada.person_id, "lic_paid", "ord_paid", beat["beat_id"], "wav_lease",
                "buyer-1", beat["title"], [], {}, False, 0, 3, "active", now + 1))
        status, page, _ = await live.call("GET", ORDERS)
        assert status == 200, page
        assert [(o["id"], o["licence_id"]) for o in page["data"]] == [
            ("ord_paid", "lic_paid"), ("ord_open", None)]
        status, got, _ = await live.call("GET", f"{ORDERS}/ord_open")
        assert status == 200 and got["licence_id"] is None, got
        status, got, _ = await live.call("GET", f"{ORDERS}/ord_paid")
        assert status == 200 and got["licence_id"] == "lic_paid", got
        assert fake.requests == []


async def test_a_sandbox_exclusive_leaves_the_beat_on_sale(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with shop(tmp_path, smtp_server, "ada@example.org") as (
            app, fake, assets, (ada_person, ada)):
        live = await key_of(ada_person, ada, SCOPES)
        test = await key_of(ada_person, ada, SCOPES, test=True)
        beat = await new_beat(ada_person, assets)
        before = await live_state(app, ada.person_id, beat["beat_id"])
        made = []
        for _ in range(2):  # a sandbox exclusive may be sold again: it holds nothing
            status, order, _ = await sell(test, beat["beat_id"], "exclusive")
            assert status == 201 and order["exclusive"] is True, order
            made.append(order["id"])
        assert await ids(test, ORDERS) == made
        status, page, _ = await test.call("GET", LICENCES)
        assert status == 200 and [lic["exclusive"] for lic in page["data"]] == [True, True]

        # the beat is on sale as before: no exclusive sale, no hold
        assert await live_state(app, ada.person_id, beat["beat_id"]) == before
        assert before["beat"]["status"] == "on_sale" and before["beat"]["sold_order"] is None
        status, found, _ = await live.call("GET", f"/api/v1/beats/{beat['beat_id']}")
        assert status == 200 and found["status"] == "on_sale", found
        # the beat's one real exclusive licence is still free to grant
        store = marketplace(app[PLUGIN_CONTEXT_KEY]).store
        async with store.db.transaction() as tx:
            await store.insert_licence(tx, Licence(
                ada.person_id, "lic_real", "ord_real", beat["beat_id"], "exclusive",
                "buyer", beat["title"], [], {}, True, 0, 10, "active", 1.0))
        assert fake.requests == []


async def test_sandbox_sales_are_heard_by_test_mode_webhooks_only(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with shop(tmp_path, smtp_server, "ada@example.org", webhooks=FAST) as (
            app, fake, assets, (ada_person, ada)), \
            Receiver() as live_rx, Receiver() as test_rx:
        live = await key_of(ada_person, ada, SCOPES)
        test = await key_of(ada_person, ada, SCOPES, test=True)
        await subscribe(live, live_rx.url, [SALE_EVENT])
        await subscribe(test, test_rx.url, [SALE_EVENT])
        beat = await new_beat(ada_person, assets)

        status, order, _ = await sell(test, beat["beat_id"], "mp3_lease")
        assert status == 201, order
        await test_rx.wait_for(1)
        await settled(app)
        (heard,) = [json.loads(r.body) for r in test_rx.received]
        assert heard["type"] == SALE_EVENT and heard["test"] is True
        assert heard["data"]["order_id"] == order["id"]
        assert heard["data"]["beat_id"] == beat["beat_id"]
        assert heard["data"]["tier"] == "mp3_lease"
        assert heard["data"]["amount_cents"] == order["amount"]
        assert heard["data"]["currency"] == "usd"
        assert live_rx.received == []
        assert fake.requests == []


async def test_an_idempotency_key_replays_one_sandbox_sale(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with shop(tmp_path, smtp_server, "ada@example.org") as (
            app, fake, assets, (ada_person, ada)):
        test = await key_of(ada_person, ada, SCOPES, test=True)
        beat = await new_beat(ada_person, assets)
        status, first, headers = await sell(test, beat["beat_id"], "mp3_lease", "sale-1")
        assert status == 201 and "Idempotent-Replayed" not in headers, first
        status, again, headers = await sell(test, beat["beat_id"], "mp3_lease", "sale-1")
        assert status == 201 and headers["Idempotent-Replayed"] == "true"
        assert again == first
        # the same key for another request is refused, and makes nothing
        status, problem, _ = await sell(test, beat["beat_id"], "wav_lease", "sale-1")
        assert status == 422 and "another request" in problem["detail"], problem
        assert await ids(test, ORDERS) == [first["id"]]
        assert len(await ids(test, LICENCES)) == 1
        rows = await marketplace(app[PLUGIN_CONTEXT_KEY]).store.orders_of(ada.person_id)
        assert [o.order_id for o in rows] == [first["id"]]


async def test_bad_sandbox_sales_are_refused_with_a_clear_message(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with shop(tmp_path, smtp_server) as (
            app, fake, assets, (ada_person, ada), (bob_person, bob)):
        test = await key_of(ada_person, ada, SCOPES, test=True)
        bob_test = await key_of(bob_person, bob, SCOPES, test=True)
        beat = await new_beat(ada_person, assets)
        beat_id = beat["beat_id"]

        # a live key (or a signed-in person) may not make orders: real ones are paid for
        live = await key_of(ada_person, ada, SCOPES)
        status, problem, _ = await sell(live, beat_id, "mp3_lease")
        assert status == 403 and "test-mode key" in problem["detail"], problem
        status, problem, _ = await ada_person.call(
            "POST", ORDERS, {"beat_id": beat_id, "tier": "mp3_lease"})
        assert status == 403, problem
        # a key without the scope
        reader = await key_of(ada_person, ada, ["marketplace.read"], test=True)
        status, problem, _ = await sell(reader, beat_id, "mp3_lease")
        assert status == 403 and "marketplace.sandbox" in problem["detail"], problem
        # another account's beat is not there
        status, problem, _ = await sell(bob_test, beat_id, "mp3_lease")
        assert status == 404 and beat_id in problem["detail"], problem
        status, problem, _ = await sell(test, "beat_nothing", "mp3_lease")
        assert status == 404 and "beat_nothing" in problem["detail"], problem
        # a tier the beat does not offer, or not now
        status, problem, _ = await sell(test, beat_id, "platinum")
        assert status == 422 and "platinum" in problem["detail"], problem
        assert "mp3_lease" in problem["detail"]
        status, changed, _ = await ada_person.call(
            "PATCH", f"/api/marketplace/beats/{beat_id}/tiers/mp3_lease", {"active": False})
        assert status == 200, changed
        status, problem, _ = await sell(test, beat_id, "mp3_lease")
        assert status == 422 and "mp3_lease" in problem["detail"], problem
        # unknown fields and bad addresses
        status, problem, _ = await sell(test, beat_id, "wav_lease", amount="1")
        assert status == 422 and "amount" in json.dumps(problem), problem
        status, problem, _ = await sell(test, beat_id, "wav_lease", buyer_email="nobody")
        assert status == 422 and "buyer_email" in json.dumps(problem), problem
        # a beat sold with exclusive rights is off sale
        store = marketplace(app[PLUGIN_CONTEXT_KEY]).store
        async with store.db.transaction() as tx:
            assert await store.sell_exclusive(tx, ada.person_id, beat_id, "ord_real", 1.0)
        status, problem, _ = await sell(test, beat_id, "wav_lease")
        assert status == 409 and "exclusive" in problem["detail"], problem

        assert await ids(test, ORDERS) == []
        assert await store.orders_of(ada.person_id) == []
        assert fake.requests == []
