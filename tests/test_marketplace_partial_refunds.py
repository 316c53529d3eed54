"""A single sale refunded in part (in Stripe's dashboard, naming no order): the refund is
booked and the sales report counts what the seller kept, but the order stays paid and the
buyer keeps the licence and its downloads; once the rest is refunded the order is
refunded and the licence revoked."""

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

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(120)]


async def paid_lease(m: Market) -> dict[str, Any]:
    """An mp3 lease of ``seller``'s new beat, paid by ``buyer``: the order."""
    await m.seller("seller")
    beat = await m.beat("seller")
    status, started = await m.checkout("buyer", "seller", beat["beat_id"], "mp3_lease")
    assert status == 201, started
    m.pay(started)
    return await m.order("buyer", started["order"]["order_id"], "paid")


async def dashboard_refund(m: Market, order_id: str, key: str, amount: int | None) -> None:
    """The seller refunds ``amount`` of the order's charge in Stripe's dashboard (no
    metadata on the refund; None: the rest), and its ``charge.refunded`` is delivered."""
    services = market_services(m)
    order = await services.store.order("seller", order_id)
    assert order is not None and order.payment_intent
    await services.gateway.refund(idempotency_key=key, payment_intent=order.payment_intent,
                                  amount=amount, account=order.charged_on)
    await m.fake.webhooks.settled()


async def refunded_in_books(m: Market) -> int:
    return (await market_services(m).ledger.balances("seller"))[("external:refunds", "usd")]


async def report_total(m: Market) -> list[dict[str, Any]]:
    status, report = await m.call("GET", "/api/marketplace/reports/sales", who("seller"))
    assert status == 200, report
    return report["total"]


async def spent_by(m: Market) -> dict[str, str]:
    """The customer CSV's ``spent`` of each buyer."""
    answer = await m.client.get("/api/marketplace/reports/customers.csv", headers=who("seller"))
    assert answer.status == 200, await answer.read()
    rows = csv.DictReader(io.StringIO(await answer.text(), newline=""))
    return {row["customer"]: row["spent"] for row in rows}


async def test_a_partial_refund_of_a_single_sale_keeps_the_licence(
        tmp_path: Path, db_url: str) -> None:
    async with market(tmp_path, db_url) as m:
        order = await paid_lease(m)
        amount = order["amount"]
        await dashboard_refund(m, order["order_id"], "goodwill", 500)

        # booked, but the sale stands: paid, the licence active with its links
        assert await refunded_in_books(m) == 500
        assert (await m.order("buyer", order["order_id"], "paid", "refunded"))["status"] \
            == "paid"
        [licence] = await m.library("buyer")
        assert licence["status"] == "active" and licence["links"], licence
        download = await m.client.get(licence["links"][0]["url"])
        assert download.status == 200, await download.read()
        # the report and the customer CSV count what the seller kept
        assert await report_total(m) == [{"key": "all", "currency": "usd",
                                          "revenue": amount - 500, "sales": 1}]
        assert await spent_by(m) == {"buyer": str(amount - 500)}
        # delivered again: nothing more booked, nothing revoked
        for event in m.fake.events_of("charge.refunded"):
            m.fake.webhooks.redeliver(event)
        await m.fake.webhooks.settled()
        assert await refunded_in_books(m) == 500
        assert [lic["status"] for lic in await m.library("buyer")] == ["active"]

        # the rest refunded: the whole sale is, and the licence goes
        await dashboard_refund(m, order["order_id"], "the-rest", None)
        assert await refunded_in_books(m) == amount
        await m.order("buyer", order["order_id"], "refunded")
        [licence] = await m.library("buyer")
        assert licence["status"] == "refunded" and licence["links"] == []
        assert await report_total(m) == []
        assert await market_services(m).ledger.audit("seller") == []
