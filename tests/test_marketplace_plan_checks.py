"""A membership plan takes a currency to pay with and a price Stripe can charge, as a
beat's tiers do: anything else is refused (422) before a Product or Price is made."""

from __future__ import annotations

from pathlib import Path

import pytest
from marketplace_helpers import market, who

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]

PLANS = "/api/marketplace/membership-plans"


async def test_a_plan_in_an_unpayable_currency_or_above_the_limit_is_refused(
        tmp_path: Path) -> None:
    async with market(tmp_path, f"sqlite://{tmp_path / 'm.sqlite3'}") as m:
        await m.seller("seller")
        plan = {"name": "Gold", "amount": 999, "currency": "usd", "interval": "month"}
        for bad in ({"currency": "zzz"}, {"currency": "xxx"}, {"currency": "kwd"},
                    {"amount": 100_000_000}):
            status, body = await m.call("POST", PLANS, who("seller"), {**plan, **bad})
            assert status == 422, (bad, body)
        assert not [o for o in m.fake.objects.values() if o.get("object") == "price"]
        status, body = await m.call("GET", PLANS, who("seller"))
        assert (status, body) == (200, [])

        status, body = await m.call("POST", PLANS, who("seller"),
                                    {**plan, "currency": "EUR", "amount": 99_999_999})
        assert status == 201, body
        assert (body["currency"], body["amount"]) == ("eur", 99_999_999)
