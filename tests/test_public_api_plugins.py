"""Plug-ins' routes under /api/v1 on a running server: distribution's releases, their
deliveries to a real (fake-store) endpoint and royalty statements; the marketplace's
beats, orders and licences. Cursor pages, sparse fields, problem details, the scopes
(403 without them) and another account's objects (404)."""

from __future__ import annotations

import time
from collections.abc import Awaitable
from pathlib import Path
from typing import TypeVar

import pytest
from public_api_helpers import key_of, post_releases, signed_in
from smtp_server import SmtpServer

from business.distribution.services import services as distribution
from business.distribution.stores.fakestore import FakeStore
from business.marketplace.models import Beat, BeatFile, Licence, Order, Tier
from business.marketplace.services import PLUGIN_NAME
from business.marketplace.services import services as marketplace
from dawserver.keys import PLUGIN_CONTEXT_KEY
from dawserver.plugin_api import mark_sandbox

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(240)]

T = TypeVar("T")

PLUGIN_SCOPES = ["distribution.read", "distribution.releases", "distribution.deliver",
                 "distribution.royalties", "marketplace.read", "marketplace.library"]
STATEMENT = ("store,territory,isrc,units,amount,currency\n"
             "S,US,QZABC2600001,1,10.00,USD\nS,FR,QZABC2600001,2,3.50,EUR\n")


async def test_releases_deliveries_and_statements_are_public_v1_resources(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with FakeStore() as store:
        plugins = {"distribution": {"stores": {"fake": {
            "url": store.url, "token": "secret", "dpid": "PADPIDA0000000001Z"}}}}
        async with signed_in(tmp_path, smtp_server, plugins=plugins) as (
                app, (ada_person, ada), (bob_person, bob)):
            ada_all = await key_of(ada_person, ada, PLUGIN_SCOPES)
            bob_all = await key_of(bob_person, bob, PLUGIN_SCOPES)
            await post_releases(ada_all, tmp_path)
            status, jobs, _ = await ada_all.call(
                "POST", "/api/distribution/releases/rel-2/deliveries", {})
            assert status == 202 and [j["store"] for j in jobs] == ["fake"], jobs
            await distribution(app[PLUGIN_CONTEXT_KEY]).royalties.import_statement(
                ada.person_id, STATEMENT, "nov.csv")

            # pages by id, cut to the fields asked for, with a signed cursor
            status, first, _ = await ada_all.call("GET", "/api/v1/releases?limit=2"
                                                         "&fields=title")
            assert status == 200, first
            assert first["data"] == [{"id": "rel-1", "title": "Night Drive"},
                                     {"id": "rel-2", "title": "Night Drive"}]
            status, rest, _ = await ada_all.call(
                "GET", f"/api/v1/releases?limit=2&cursor={first['next_cursor']}")
            assert status == 200 and [r["id"] for r in rest["data"]] == ["rel-3"]
            assert rest["next_cursor"] is None and rest["data"][0]["status"] == "draft"
            status, one, headers = await ada_all.call("GET", "/api/v1/releases/rel-2")
            assert status == 200 and one["release_date"] and headers["ETag"]
            status, _, _ = await ada_all.call("GET", "/api/v1/releases/rel-2",
                                              headers={"If-None-Match": headers["ETag"]})
            assert status == 304
            status, ready, _ = await ada_all.call("GET", "/api/v1/releases?status=ready")
            assert status == 200 and [r["id"] for r in ready["data"]] == ["rel-2"]

            status, deliveries, _ = await ada_all.call(
                "GET", "/api/v1/releases/rel-2/deliveries")
            assert status == 200, deliveries
            (delivery,) = deliveries["data"]
            assert delivery["id"] == jobs[0]["job_id"] and delivery["store"] == "fake"
            assert delivery["release_id"] == "rel-2" and delivery["action"] == "new"
            assert delivery["queued_at"].endswith("Z")

            status, statements, _ = await ada_all.call("GET", "/api/v1/royalty-statements")
            assert status == 200, statements
            (statement,) = statements["data"]
            assert statement["source"] == "nov.csv" and statement["line_count"] == 2
            assert statement["totals"] == {"USD": 1000, "EUR": 350}
            status, again, _ = await ada_all.call(
                "GET", f"/api/v1/royalty-statements/{statement['id']}?fields=totals")
            assert status == 200 and again == {"id": statement["id"],
                                               "totals": statement["totals"]}

            # bad input: problem details that say what to do
            status, problem, headers = await ada_all.call("GET", "/api/v1/releases"
                                                                 "?fields=colour")
            assert status == 400 and "title" in problem["detail"]
            assert headers["Content-Type"].startswith("application/problem+json")
            status, problem, _ = await ada_all.call(
                "GET", f"/api/v1/royalty-statements?cursor={first['next_cursor']}")
            assert status == 400 and "next_cursor" in problem["detail"]

            # the scope is the plug-in's permission
            status, problem, _ = await ada.call("GET", "/api/v1/releases")
            assert status == 403, problem
            reader = await key_of(ada_person, ada, ["distribution.read"])
            assert (await reader.call("GET", "/api/v1/releases"))[0] == 200
            assert (await reader.call("GET", "/api/v1/royalty-statements"))[0] == 403

            # another account's objects are not there
            status, empty, _ = await bob_all.call("GET", "/api/v1/releases")
            assert status == 200 and empty["data"] == []
            for path in ("/api/v1/releases/rel-2", "/api/v1/releases/rel-2/deliveries",
                         f"/api/v1/royalty-statements/{statement['id']}"):
                status, problem, _ = await bob_all.call("GET", path)
                assert status == 404 and problem["status"] == 404, (path, problem)


def _beat(seller: str, beat_id: str, made: float) -> Beat:
    tier = Tier("wav_lease", "WAV lease", 2999, "usd", ("wav",), {"streams": 100000}, False, 3)
    return Beat(seller, beat_id, f"Beat {beat_id}", 90, "A minor", "trap", "dark", ["night"],
                "usd", "on_sale", made, [BeatFile("f1", "wav", "a" * 64)], [tier])


async def test_beats_orders_and_licences_are_public_v1_resources(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with signed_in(tmp_path, smtp_server) as (
            app, (ada_person, ada), (bob_person, bob)):
        ada_all = await key_of(ada_person, ada, PLUGIN_SCOPES)
        bob_all = await key_of(bob_person, bob, PLUGIN_SCOPES)
        store = marketplace(app[PLUGIN_CONTEXT_KEY]).store
        now = time.time()
        for n in (1, 2, 3):
            await store.insert_beat(_beat(ada.person_id, f"beat-{n}", now + n))
        order = Order(ada.person_id, "order-1", "beat-2", "wav_lease", bob.person_id, 2999,
                      "usd", False, "paid", "acct_1", "cs_1", "pi_1", "", now, now + 1)
        licence = Licence(ada.person_id, "lic-1", "order-1", "beat-2", "wav_lease",
                          bob.person_id, "Beat beat-2", [BeatFile("f1", "wav", "a" * 64)],
                          {"streams": 100000}, False, 0, 3, "active", now + 1)
        async with store.db.transaction() as tx:
            await store.insert_order(tx, order)
            await store.insert_licence(tx, licence)

        # the seller's beats, newest first, in cursor pages
        status, first, _ = await ada_all.call("GET", "/api/v1/beats?limit=2")
        assert status == 200, first
        assert [b["id"] for b in first["data"]] == ["beat-3", "beat-2"]
        assert first["data"][0]["tiers"][0]["price"] == 2999
        status, rest, _ = await ada_all.call(
            "GET", f"/api/v1/beats?limit=2&cursor={first['next_cursor']}&fields=title")
        assert status == 200 and rest == {"data": [{"id": "beat-1", "title": "Beat beat-1"}],
                                          "next_cursor": None}
        status, beat, _ = await ada_all.call("GET", "/api/v1/beats/beat-2")
        assert status == 200 and beat["status"] == "on_sale" and beat["bpm"] == 90
        status, sold, _ = await ada_all.call("GET", "/api/v1/beats?status=sold_exclusive")
        assert status == 200 and sold["data"] == []

        # the seller's sales; the buyer's licence
        status, orders, _ = await ada_all.call("GET", "/api/v1/orders?status=paid")
        assert status == 200 and [o["id"] for o in orders["data"]] == ["order-1"]
        assert orders["data"][0]["amount"] == 2999 and orders["data"][0]["paid_at"]
        status, one, _ = await ada_all.call("GET", "/api/v1/orders/order-1?fields=status")
        assert status == 200 and one == {"id": "order-1", "status": "paid"}
        status, licences, _ = await bob_all.call("GET", "/api/v1/licences")
        assert status == 200 and [x["id"] for x in licences["data"]] == ["lic-1"]
        assert licences["data"][0]["seller"] == ada.person_id
        status, held, _ = await bob_all.call("GET", "/api/v1/licences/lic-1")
        assert status == 200 and held["download_limit"] == 3

        # another account's objects answer 404; the seller holds no licence of its own
        for caller, path in ((bob_all, "/api/v1/beats/beat-2"),
                             (bob_all, "/api/v1/orders/order-1"),
                             (ada_all, "/api/v1/licences/lic-1")):
            status, problem, _ = await caller.call("GET", path)
            assert status == 404 and problem["status"] == 404, (path, problem)
        assert (await bob_all.call("GET", "/api/v1/beats"))[1]["data"] == []

        # scopes: marketplace.read is not marketplace.library, and the reverse
        status, _, _ = await ada.call("GET", "/api/v1/beats")
        assert status == 403
        library = await key_of(bob_person, bob, ["marketplace.library"])
        assert (await library.call("GET", "/api/v1/licences"))[0] == 200
        assert (await library.call("GET", "/api/v1/orders"))[0] == 403
        status, problem, _ = await ada_all.call("GET", "/api/v1/orders?status=lost")
        assert status == 422, problem


async def test_orders_pages_seek_in_the_database_and_keep_each_keys_mode(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    """A seller's sales list is read a page at a time (never every order per request):
    a cursor walk gives each order once in (created_at, id) order, ties included, with
    the status filter and each key's mode (a sandbox sale only to a test-mode key)."""
    async with signed_in(tmp_path, smtp_server) as (
            app, (ada_person, ada), (_bob_person, bob)):
        live = await key_of(ada_person, ada, PLUGIN_SCOPES)
        test = await key_of(ada_person, ada, PLUGIN_SCOPES, test=True)
        store = marketplace(app[PLUGIN_CONTEXT_KEY]).store
        await store.insert_beat(_beat(ada.person_id, "beat-1", 1.0))
        made = [100.0 + n // 3 for n in range(14)]  # three orders share each second
        async with store.db.transaction() as tx:
            for n, at in enumerate(made):
                await store.insert_order(tx, Order(
                    ada.person_id, f"order-{n:02d}", "beat-1", "wav_lease", bob.person_id,
                    2999, "usd", False, "refunded" if n % 4 == 0 else "paid", "acct_1",
                    f"cs_{n}", f"pi_{n}", "", at, at, sandbox=n == 5))
        await mark_test_mode(app, ada.person_id, ["order-05"])
        ids, largest = await rows_read_while(store.db, walk_ids(live, "/api/v1/orders?limit=4"))
        assert ids == [f"order-{n:02d}" for n in range(14) if n != 5]
        assert largest <= 5, largest  # a page reads at most limit + 1 orders
        paid = await walk_ids(live, "/api/v1/orders?limit=3&status=paid")
        assert paid == [f"order-{n:02d}" for n in range(14) if n % 4 and n != 5]
        assert await walk_ids(test, "/api/v1/orders?limit=2") == ["order-05"]


async def mark_test_mode(app, account_id: str, order_ids: list[str]) -> None:  # noqa: ANN001
    """Mark orders sandbox objects, as a test-mode key's sandbox sale does."""
    for order_id in order_ids:
        await mark_sandbox(app[PLUGIN_CONTEXT_KEY], PLUGIN_NAME, account_id, order_id)


async def walk_ids(caller, url: str) -> list[str]:  # noqa: ANN001 - a public_api_helpers Caller
    """The ids of every item of a list, following its cursors to the end."""
    ids, cursor = [], None
    for _ in range(50):
        status, page, _ = await caller.call("GET", url + (f"&cursor={cursor}" if cursor else ""))
        assert status == 200, page
        ids += [item["id"] for item in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return ids
    raise AssertionError(f"{url}: the cursor walk does not end")


async def rows_read_while(db, work: Awaitable[T]) -> tuple[T, int]:  # noqa: ANN001
    """``work``'s result and the most rows one database read returned meanwhile."""
    fetch, largest = db.fetch, 0

    async def counting(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        nonlocal largest
        rows = await fetch(*args, **kwargs)
        largest = max(largest, len(rows))
        return rows

    db.fetch = counting
    try:
        return await work, largest
    finally:
        db.fetch = fetch
