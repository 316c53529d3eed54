"""The public catalogue and store pages with filters no database integer holds (a huge
price or BPM) or a cursor of the wrong shape: answered, never a server error."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from marketplace_helpers import market, who

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]

HUGE = "99999999999999999999"
CATALOGUE = "/api/marketplace/catalogue"


def cursor(*parts: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode().rstrip("=")


async def test_huge_bounds_and_odd_cursors_are_answered(tmp_path: Path) -> None:
    async with market(tmp_path, f"sqlite://{tmp_path / 'm.sqlite3'}") as m:
        await m.seller("seller")
        beat = await m.beat("seller")
        status, body = await m.call("PUT", "/api/marketplace/storefront", who("seller"),
                                    {"handle": "nightshop"})
        assert status == 200, body

        status, body = await m.call("GET", CATALOGUE, params={"price_min": HUGE})
        assert (status, body["items"]) == (200, [])
        for bound in ({"price_max": HUGE}, {"bpm_max": HUGE}, {"bpm_min": "0"}):
            status, body = await m.call("GET", CATALOGUE, params=bound)
            assert status == 200, body
            assert [b["beat_id"] for b in body["items"]] == [beat["beat_id"]], bound
        status, body = await m.call("GET", CATALOGUE, params={"bpm_min": HUGE})
        assert (status, body["items"]) == (200, [])

        for parts in ([{"a": 1}, "x", "y"], [1.0, ["s"], "b"], ["x", "seller", "b"]):
            status, body = await m.call("GET", CATALOGUE, params={"cursor": cursor(*parts)})
            assert status == 422 and "cursor" in body["error"], (parts, body)

        for query in ({"price_min": "1e18"}, {"price_max": "1e18"},
                      {"cursor": cursor({"a": 1}, "x", "y")}):
            answer = await m.client.get("/store/nightshop", params=query)
            assert answer.status == 200, (query, await answer.text())
