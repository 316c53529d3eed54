"""The marketplace as a loaded plug-in, and its catalogue over HTTP: beats with the
market's default tiers, validation (prices, currencies, keys, files), the public listing
with its filters and cursor, roles, and another account's ids answering 404."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from marketplace_helpers import market, who

from business.marketplace import plugin as marketplace_plugin
from business.marketplace.plugin import MIGRATIONS
from dawserver.plugins import DEFAULT_PLUGINS, collect_migrations, load_plugins

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]


def sqlite(tmp_path: Path) -> str:
    return f"sqlite://{tmp_path / 'market.sqlite3'}"


async def test_the_plugin_is_discovered_with_its_migrations_and_routes(tmp_path: Path) -> None:
    assert "business.marketplace.plugin" in DEFAULT_PLUGINS
    manager = load_plugins({})
    assert manager.get_plugin("marketplace") is not None
    mine = [m for m in collect_migrations(manager) if m.component == "marketplace"]
    files = sorted(Path(marketplace_plugin.__file__).parent.glob("migrations/*.sql"))
    # every migration file is collected, numbered 1, 2, ... with no gap
    assert mine == MIGRATIONS and [m.version for m in mine] == list(range(1, len(files) + 1))
    async with market(tmp_path, sqlite(tmp_path)) as m:
        status, spec = await m.call("GET", "/api/openapi.json")
        assert status == 200
        paths = [p for p in spec["paths"] if p.startswith("/api/marketplace/")]
        assert "/api/marketplace/checkout" in paths and "/api/marketplace/catalogue" in paths
        # the ledger's and the catalogue's tables were made by the server's migrations
        status, page = await m.call("GET", "/api/marketplace/catalogue")
        assert status == 200 and page == {"items": [], "next_cursor": None}


async def test_a_beat_takes_the_market_default_tiers_in_its_currency(tmp_path: Path) -> None:
    async with market(tmp_path, sqlite(tmp_path)) as m:
        beat = await m.beat("seller", key="f# Maj")
        assert beat["key"] == "F# major" and beat["genre"] == "trap"
        tiers = {t["tier"]: t for t in beat["tiers"]}
        assert list(tiers) == ["mp3_lease", "wav_lease", "trackout_lease", "unlimited",
                               "exclusive"]
        assert tiers["mp3_lease"]["price"] == 2999 and tiers["exclusive"]["price"] == 49999
        assert all(t["currency"] == "usd" for t in tiers.values())
        assert tiers["mp3_lease"]["files"] == ["mp3"]
        assert tiers["trackout_lease"]["files"] == ["mp3", "wav", "stems"]
        assert tiers["exclusive"]["exclusive"] and not tiers["unlimited"]["exclusive"]
        assert tiers["unlimited"]["rights"]["distribution_copies"] is None
        assert tiers["mp3_lease"]["rights"]["distribution_copies"] == 2500
        assert {f["kind"] for f in beat["files"]} == {"tagged_mp3", "mp3", "wav", "stems"}

        no_stems = await m.beat("seller", stems=False, currency="JPY")
        assert [t["tier"] for t in no_stems["tiers"]] == ["mp3_lease", "wav_lease"]
        assert no_stems["tiers"][0]["price"] == 3000 and no_stems["currency"] == "jpy"

        custom = await m.beat("seller", tiers=[
            {"tier": "mp3_lease", "price": 1500, "currency": "USD"},
            {"tier": "exclusive", "price": 90000, "download_limit": 2,
             "rights": {"radio_stations": 5}}])
        assert [(t["tier"], t["price"], t["download_limit"]) for t in custom["tiers"]] == [
            ("mp3_lease", 1500, 3), ("exclusive", 90000, 2)]
        assert custom["tiers"][1]["rights"]["radio_stations"] == 5


@pytest.mark.parametrize(("change", "says"), [
    ({"tiers": [{"tier": "mp3_lease", "price": 0}]}, "positive whole number"),
    ({"tiers": [{"tier": "mp3_lease", "price": -100}]}, "positive whole number"),
    ({"currency": "zzz"}, "not an ISO 4217 currency"),
    ({"currency": "xau"}, "not an ISO 4217 currency"),
    ({"tiers": [{"tier": "wav_lease", "price": 100, "currency": "eur"}]}, "currency"),
    ({"key": "H minor"}, "not a musical key"),
    ({"tiers": [{"tier": "mp3_lease"}, {"tier": "mp3_lease"}]}, "given twice"),
])
async def test_bad_beats_are_refused_with_a_clear_422(tmp_path: Path, change: dict[str, Any],
                                                      says: str) -> None:
    async with market(tmp_path, sqlite(tmp_path)) as m:
        good = await m.beat("seller")
        body = {"title": "x", "bpm": 90, "key": "C minor", "currency": "usd",
                "files": [{"kind": "mp3", "asset_id": good["files"][1]["asset_id"]}], **change}
        status, answer = await m.call("POST", "/api/marketplace/beats", who("seller"), body)
        assert status == 422, answer
        assert says in answer["error"] and answer["fields"], answer
        if "currency" in change and "tiers" in change:
            assert "mismatch" in str(answer["fields"]) and "EUR" in answer["error"]


async def test_files_must_be_assets_of_the_sellers_account(tmp_path: Path) -> None:
    async with market(tmp_path, sqlite(tmp_path)) as m:
        m.assets.add("other", "theirs", b"ID3")
        body = {"title": "x", "bpm": 90, "key": "C minor", "currency": "usd",
                "files": [{"kind": "mp3", "asset_id": "theirs"}]}
        status, answer = await m.call("POST", "/api/marketplace/beats", who("seller"), body)
        assert status == 422 and "upload it first" in answer["error"]
        trackout = {**body, "files": [{"kind": "mp3", "asset_id": m.assets.add(
            "seller", "mine", b"ID3")}], "tiers": [{"tier": "trackout_lease"}]}
        status, answer = await m.call("POST", "/api/marketplace/beats", who("seller"),
                                      trackout)
        assert status == 422 and "no such file" in answer["error"]


async def test_roles_and_other_accounts(tmp_path: Path) -> None:
    async with market(tmp_path, sqlite(tmp_path)) as m:
        beat = await m.beat("seller")
        viewer = who("seller", "vi", "viewer")
        status, _ = await m.call("POST", "/api/marketplace/beats", viewer, {
            "title": "x", "bpm": 90, "key": "C", "currency": "usd",
            "files": [{"kind": "mp3", "asset_id": "a"}]})
        assert status == 403
        status, found = await m.call("GET", f"/api/marketplace/beats/{beat['beat_id']}", viewer)
        assert status == 200 and found["files"]
        status, _ = await m.call("GET", f"/api/marketplace/beats/{beat['beat_id']}",
                                 who("other", "bo"))
        assert status == 404
        status, _ = await m.call(
            "PATCH", f"/api/marketplace/beats/{beat['beat_id']}/tiers/mp3_lease",
            who("other", "bo"), {"price": 1})
        assert status == 404
        status, mine = await m.call("GET", "/api/marketplace/beats", who("other", "bo"))
        assert status == 200 and mine == []
        status, changed = await m.call(
            "PATCH", f"/api/marketplace/beats/{beat['beat_id']}/tiers/mp3_lease",
            who("seller", "ed", "editor"), {"price": 3500})
        assert status == 200 and changed["tiers"][0]["price"] == 3500
        status, bad = await m.call(
            "PATCH", f"/api/marketplace/beats/{beat['beat_id']}/tiers/mp3_lease",
            who("seller"), {"price": 0})
        assert status == 422 and "positive" in bad["error"]
        status, bad = await m.call(
            "PATCH", f"/api/marketplace/beats/{beat['beat_id']}/tiers/mp3_lease",
            who("seller"), {"currency": "gbp"})
        assert status == 422 and "mismatch" in str(bad["fields"])


async def test_the_public_catalogue_filters_and_pages_by_cursor(tmp_path: Path) -> None:
    async with market(tmp_path, sqlite(tmp_path)) as m:
        made = []
        for n in range(7):
            made.append(await m.beat(
                "seller" if n % 2 else "another", title=f"Beat {n}", bpm=80 + 10 * n,
                key="A minor" if n < 4 else "C major", genre="trap" if n < 5 else "lofi",
                mood="dark" if n % 3 else "chill",
                tiers=[{"tier": "mp3_lease", "price": 1000 + 1000 * n},
                       {"tier": "exclusive", "price": 50000}]))

        async def titles(**params: Any) -> list[str]:
            status, page = await m.call("GET", "/api/marketplace/catalogue", params=params)
            assert status == 200, page
            return [b["title"] for b in page["items"]]

        assert await titles() == [f"Beat {n}" for n in reversed(range(7))]
        assert await titles(bpm_min=100, bpm_max=130) == ["Beat 5", "Beat 4", "Beat 3",
                                                          "Beat 2"]
        assert await titles(key="am") == ["Beat 3", "Beat 2", "Beat 1", "Beat 0"]
        assert await titles(genre="LOFI") == ["Beat 6", "Beat 5"]
        assert await titles(mood="chill") == ["Beat 6", "Beat 3", "Beat 0"]
        assert await titles(price_min=2000, price_max=3500) == ["Beat 2", "Beat 1"]
        assert await titles(seller="seller") == ["Beat 5", "Beat 3", "Beat 1"]
        assert await titles(genre="trap", mood="dark", bpm_max=110) == ["Beat 2", "Beat 1"]

        seen, cursor, pages = [], None, 0
        while True:
            params: dict[str, Any] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
            status, page = await m.call("GET", "/api/marketplace/catalogue", params=params)
            assert status == 200 and len(page["items"]) <= 3
            seen += [b["beat_id"] for b in page["items"]]
            pages += 1
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert pages == 3 and seen == [b["beat_id"] for b in reversed(made)]
        public = (await m.call("GET", "/api/marketplace/catalogue"))[1]["items"][0]
        assert "files" not in public or public["files"] is None
        assert public["preview_asset_id"].startswith("prev-")
        status, bad = await m.call("GET", "/api/marketplace/catalogue",
                                   params={"cursor": "not-ours"})
        assert status == 422 and "cursor" in bad["error"]
