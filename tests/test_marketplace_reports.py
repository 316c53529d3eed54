"""Sellers' sales reports and customer CSV: paid sales summed by beat, tier, country and
day (refunds left out), another account's beat answering 404, names and emails only of
buyers who agreed on Stripe Checkout, formula cells escaped, erasure forgetting them."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest
from marketplace_helpers import (
    Market,
    market,
    market_services,
    who,
)

from business.marketplace.privacy import erase_account, export_account
from business.marketplace.reports import safe_cell
from dawserver.plugin_api import Pseudonymiser

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(120)]

R = "/api/marketplace/reports"


async def test_formula_cells_are_escaped() -> None:
    for bad in ("=HYPERLINK(\"http://x\")", "+1", "-2+3", "@SUM(A1)", "\tx", "\rx"):
        assert safe_cell(bad) == "'" + bad
    assert safe_cell("Dana") == "Dana" and safe_cell(None) == "" and safe_cell(42) == "42"


async def buy(m: Market, buyer: str, beat: dict[str, Any], tier: str, *, country: str,
              name: str, email: str, promotions: bool) -> dict[str, Any]:
    status, started = await m.checkout(buyer, "seller", beat["beat_id"], tier)
    assert status == 201, started
    m.fake.complete_checkout(started["checkout_url"].rsplit("/", 1)[1], "pm_card_visa",
                             email=email, country=country, name=name, promotions=promotions)
    return await m.order(buyer, started["order"]["order_id"], "paid")


async def csv_of(m: Market, account: str, role: str = "owner") -> tuple[int, bytes, str]:
    answer = await m.client.get(f"{R}/customers.csv", headers=who(account, role=role))
    return answer.status, await answer.read(), answer.headers.get("Content-Type", "")


def rows_of(body: bytes) -> dict[str, dict[str, str]]:
    return {row["customer"]: row
            for row in csv.DictReader(io.StringIO(body.decode(), newline=""))}


async def test_reports_sum_paid_sales_and_the_csv_names_only_who_agreed(
        tmp_path: Path, db_url: str) -> None:
    async with market(tmp_path, db_url) as m:
        await m.seller("seller")
        a = await m.beat("seller", title="Alpha")
        b = await m.beat("seller", title="Bravo")
        paid = [await buy(m, "ann", a, "mp3_lease", country="DE", name="=cmd|' /C calc'!A0",
                          email="ann@example.com", promotions=True),
                await buy(m, "ann", b, "wav_lease", country="DE", name="Ann",
                          email="ann@example.com", promotions=False),
                await buy(m, "bob", a, "wav_lease", country="FR", name="Bob",
                          email="bob@example.com", promotions=False)]
        refunded = await buy(m, "cy", b, "mp3_lease", country="US", name="Cy",
                             email="cy@example.com", promotions=True)
        refund = f"/api/marketplace/sales/{refunded['order_id']}/refund"
        status, _ = await m.call("POST", refund, who("seller"))
        assert status == 202
        await m.order("cy", refunded["order_id"], "refunded")

        status, report = await m.call("GET", f"{R}/sales", who("seller"))
        assert status == 200, report
        amount = {o["order_id"]: o["amount"] for o in paid}
        total = sum(amount.values())
        assert report["total"] == [{"key": "all", "currency": "usd", "revenue": total,
                                    "sales": 3}]
        by_beat = {f["key"]: f for f in report["by_beat"]}
        assert by_beat[a["beat_id"]]["revenue"] == paid[0]["amount"] + paid[2]["amount"]
        assert by_beat[a["beat_id"]]["title"] == "Alpha" and by_beat[b["beat_id"]]["sales"] == 1
        assert {f["key"]: f["revenue"] for f in report["by_country"]} == {
            "DE": paid[0]["amount"] + paid[1]["amount"], "FR": paid[2]["amount"]}
        assert {f["key"]: f["sales"] for f in report["by_tier"]} == {"mp3_lease": 1,
                                                                     "wav_lease": 2}
        assert [f["revenue"] for f in report["by_day"]] == [total]
        # one beat's report; a period before the sales is empty
        status, one = await m.call("GET", f"{R}/sales/beats/{b['beat_id']}", who("seller"))
        assert status == 200 and one["total"][0]["revenue"] == paid[1]["amount"]
        status, empty = await m.call("GET", f"{R}/sales?since=0&until=1", who("seller"))
        assert status == 200 and empty["total"] == [] and empty["by_day"] == []
        # another account's beat answers 404 like a missing one; their report is theirs
        await m.seller("rival")
        status, body = await m.call("GET", f"{R}/sales/beats/{a['beat_id']}", who("rival"))
        assert status == 404, body
        status, body = await m.call("GET", f"{R}/sales/beats/nope", who("seller"))
        assert status == 404
        status, theirs = await m.call("GET", f"{R}/sales", who("rival"))
        assert status == 200 and theirs["total"] == []

        status, text, media = await csv_of(m, "seller")
        assert status == 200 and media.startswith("text/csv"), text
        people = rows_of(text)
        assert set(people) == {"ann", "bob"}  # the refunded buyer is no customer
        # Ann agreed once: named (the formula in her name escaped), both orders counted
        assert people["ann"]["name"] == "'=cmd|' /C calc'!A0"
        assert people["ann"]["email"] == "ann@example.com"
        assert people["ann"]["orders"] == "2" and people["ann"]["country"] == "DE"
        assert people["ann"]["spent"] == str(paid[0]["amount"] + paid[1]["amount"])
        # Bob did not agree: no name, no email
        assert people["bob"]["name"] == "" and people["bob"]["email"] == ""
        # the CSV is the owner's (it names people); a viewer is refused
        status, _, _ = await csv_of(m, "seller", "viewer")
        assert status == 403
        status, text, _ = await csv_of(m, "rival")
        assert status == 200 and rows_of(text) == {}

        # the buyer's export shows what sellers keep of them; erased, nothing is left
        db = market_services(m).store.db
        kept = (await export_account(db, "ann"))["as_customer"]
        assert sorted((r["email"] or "", r["country"]) for r in kept) == [
            ("", "DE"), ("ann@example.com", "DE")]
        await erase_account(db, Pseudonymiser("ann"))
        assert await db.fetchval("SELECT COUNT(*) FROM mkt_customers WHERE email = ?",
                                 "ann@example.com") == 0
        status, text, _ = await csv_of(m, "seller")
        assert status == 200 and b"ann@example.com" not in text and "bob" in rows_of(text)
