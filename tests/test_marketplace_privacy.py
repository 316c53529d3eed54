"""A person's marketplace data through the plug-in's hooks: the export of a seller (never
their buyers' ids) and of a buyer, and erasure that forgets the store, its claims,
coupons and catalogue while the money records stay, under the pseudonym, in every store
(SQLite and PostgreSQL)."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import pytest
from marketplace_helpers import (
    market,
    market_services,
    who,
)
from test_marketplace_split_holds import RELEASED, held_sale, hold_of, settled
from test_marketplace_split_sales import accept

from business.marketplace.privacy import FORGOTTEN, KEPT, export_account
from dawserver.plugin_api import Pseudonymiser
from dawserver.plugins import PLUGIN_CONTEXT_KEY

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(90)]


async def test_export_and_erasure_of_a_seller_and_a_buyer(db_url: str,
                                                          tmp_path: Path) -> None:
    async with market(tmp_path, db_url) as m:
        await m.seller("seller")
        beat = await m.beat("seller")
        status, body = await m.call("PUT", "/api/marketplace/storefront", who("seller"), {
            "handle": "nightshop", "name": "Night Shop", "bio": "Dark beats"})
        assert status == 200, body
        status, body = await m.call("PUT", "/api/marketplace/coupons/LAUNCH", who("seller"),
                                    {"kind": "percent", "value": 10})
        assert status == 200, body
        status, started = await m.checkout("buyer_ada", "seller", beat["beat_id"],
                                           "mp3_lease")
        assert status == 201, started
        order_id = started["order"]["order_id"]
        m.pay(started)
        await m.order("buyer_ada", order_id, "paid")
        await m.fake.webhooks.settled()

        context = m.app[PLUGIN_CONTEXT_KEY]
        hook = context.manager.hook

        async def each(answers: list[Any]) -> list[Any]:
            return [await a if inspect.isawaitable(a) else a for a in answers]

        async def export(account_id: str) -> dict:
            parts = await each(hook.account_export(context=context, account_id=account_id))
            [found] = [p for p in parts if p and "storefront" in p]
            return found

        seller = await export("seller")
        assert seller["storefront"][0]["handle"] == "nightshop"
        assert "domain_token" not in seller["storefront"][0]
        assert [b["beat_id"] for b in seller["beats"]] == [beat["beat_id"]]
        assert [c["code"] for c in seller["coupons"]] == ["LAUNCH"]
        assert [o["order_id"] for o in seller["sales"]] == [order_id]
        assert seller["ledger"] and seller["purchases"] == []
        assert "buyer_ada" not in json.dumps(seller)  # the buyer's id is theirs, not the seller's
        buyer = await export("buyer_ada")
        assert [(o["seller"], o["order_id"]) for o in buyer["purchases"]] == [
            ("seller", order_id)]
        assert [lic["order_id"] for lic in buyer["licences"]] == [order_id]
        assert buyer["storefront"] == [] and buyer["sales"] == []

        db = market_services(m).store.db
        ada = Pseudonymiser("buyer_ada", ("Ada Lovelace",))
        for _ in range(2):  # the erasure job may run again: idempotent
            await each(hook.account_erased(context=context, account_id="buyer_ada",
                                           pseudonym=ada.pseudonym, names=["Ada Lovelace"]))
        for table in ("mkt_orders", "mkt_licences"):
            assert await db.fetchval(f"SELECT COUNT(*) FROM {table} WHERE buyer_account = ?",
                                     "buyer_ada") == 0
            assert await db.fetchval(f"SELECT COUNT(*) FROM {table} WHERE buyer_account = ?",
                                     ada.pseudonym) == 1
        assert (await export("buyer_ada"))["licences"] == []
        assert [lic["order_id"] for lic in (await export(ada.pseudonym))["licences"]] == [
            order_id]

        shop = Pseudonymiser("seller")
        for _ in range(2):
            await each(hook.account_erased(context=context, account_id="seller",
                                           pseudonym=shop.pseudonym, names=[]))
        for table in (*FORGOTTEN, *KEPT):
            assert await db.fetchval(f"SELECT COUNT(*) FROM {table} WHERE account_id = ?",
                                     "seller") == 0, table
        for table in KEPT:  # the money records stay, under the pseudonym
            assert await db.fetchval(f"SELECT COUNT(*) FROM {table} WHERE account_id = ?",
                                     shop.pseudonym) > 0, table
        for table in ("mkt_storefronts", "mkt_coupons", "mkt_beats", "mkt_tiers"):
            assert await db.fetchval(f"SELECT COUNT(*) FROM {table} WHERE account_id = ?",
                                     shop.pseudonym) == 0, table
        # the store is gone and its handle free for someone else
        assert (await m.client.get("/store/nightshop")).status == 404
        status, body = await m.call("PUT", "/api/marketplace/storefront", who("other"),
                                    {"handle": "nightshop"})
        assert status == 200, body
        emptied = await export("seller")
        assert all(not emptied[part] for part in emptied), emptied


async def test_the_export_holds_split_money_held_for_a_collaborator(
        db_url: str, tmp_path: Path) -> None:
    async with held_sale(tmp_path, db_url) as sale:
        db, order_id, beat_id = sale.db, sale.order_id, sale.beat_id
        held = await hold_of(sale.m, order_id)
        # the seller sees what of their sale is held and for whom; ben what is held for him
        [sold] = (await export_account(db, "seller"))["held_parts_sold"]
        assert sold["held_for"] == "ben" and sold["order_id"] == order_id
        assert sold["beat_id"] == beat_id and sold["status"] == "held"
        assert (sold["amount"], sold["cut"], sold["currency"]) == (held["amount"], 0, "usd")
        assert sold["paid"] is None and sold["paid_to"] is None
        assert sold["returns_to_seller"] == 0  # not given back to the seller for good
        [mine] = (await export_account(db, "ben"))["held_parts"]
        assert mine["seller"] == "seller" and mine["order_id"] == order_id
        assert (mine["amount"], mine["status"]) == (held["amount"], "held")
        assert (await export_account(db, "ben"))["held_parts_sold"] == []
        for other in ("amy", "carl"):  # amy agreed: nothing of hers is held
            found = await export_account(db, other)
            assert found["held_parts"] == found["held_parts_sold"] == [], other
        # ben accepts: the export says it was paid out to him
        await accept(sale.m, "ben", beat_id)
        await settled(sale.m, order_id, RELEASED)
        [mine] = (await export_account(db, "ben"))["held_parts"]
        assert (mine["status"], mine["paid_to"], mine["paid"]) == (
            "released", "ben", held["amount"])
        assert mine["settled_at"] is not None
