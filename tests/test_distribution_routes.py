"""The distribution HTTP API end to end: installed as a plug-in, delivering to a fake store."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from distribution_helpers import make_art, make_audio, release_dict

from business.distribution.stores.fakestore import FakeStore
from dawserver.plugin_api import Principal, hookimpl
from dawserver.plugins import emit_project_rendered, install, load_plugins


class Observer:
    """A plug-in that records the business events other plug-ins announce."""

    PLUGIN_NAME = "observer"

    def __init__(self) -> None:
        self.events: list[tuple[str, dict]] = []

    @hookimpl
    def business_event(self, context, name, payload) -> None:  # noqa: ANN001
        self.events.append((name, payload))


def _owner_of_header_account(request: web.Request) -> Principal | None:
    """The owner of the account named by ``X-Account`` (anonymous without it)."""
    account = request.headers.get("X-Account")
    return Principal(account, "owner", account) if account else None


def _future(days: int) -> str:
    return (dt.date.today() + dt.timedelta(days=days)).isoformat()


def test_release_is_checked_delivered_paid_and_presaved_over_http(tmp_path: Path) -> None:
    folder = tmp_path / "data" / "distribution" / "ada"  # the account's own files
    folder.mkdir(parents=True)
    art = make_art(folder / "cover.jpg")
    render = make_audio(tmp_path / "render.wav", seconds=2.0)

    async def go() -> None:
        async with FakeStore(fail_rate=0.3, seed=5) as store:
            config = {"data_dir": tmp_path / "data", "plugins": {"distribution": {
                "stores": {"fake": {"url": store.url, "token": "secret",
                                    "dpid": "PADPIDA0000000001Z"}},
                "pipeline": {"backoff_base": 0.01, "backoff_cap": 0.05},
                "presave_check_s": 0.05}}}
            app = web.Application()
            observer = Observer()
            install(app, config, manager=load_plugins(config, extra=[observer]),
                    identify=_owner_of_header_account)
            async with TestClient(TestServer(app)) as client:
                hdr = {"X-Account": "ada"}
                await emit_project_rendered(app, "ada", "proj-1", str(render), {})
                raw = release_dict(tmp_path, art=art, audio=[render])
                raw["release_date"] = _future(14)
                raw["tracks"][0]["audio_path"] = ""
                raw["tracks"][0]["project_id"] = "proj-1"
                created = await client.post("/api/distribution/releases", json=raw,
                                            headers=hdr)
                assert created.status == 201
                body = await created.json()
                assert body["tracks"][0]["audio_path"] == str(render)  # from the render hook
                rid = body["release_id"]

                bad = dict(raw, release_id="bad", title="Hit feat. Bob", upc="1")
                await client.post("/api/distribution/releases", json=bad, headers=hdr)
                refused = await client.post("/api/distribution/releases/bad/deliveries",
                                            json={}, headers=hdr)
                assert refused.status == 422
                codes = {i["code"] for i in (await refused.json())["issues"]}
                assert {"feat_in_title", "upc"} <= codes

                check = await (await client.post(f"/api/distribution/releases/{rid}/check",
                                                  headers=hdr)).json()
                assert check["passed"], check["issues"]
                xml = await client.get(f"/api/distribution/releases/{rid}/ddex?store=fake",
                                       headers=hdr)
                assert xml.content_type == "application/xml"
                assert b"<ICPN>" in await xml.read()
                queued = await client.post(f"/api/distribution/releases/{rid}/deliveries",
                                           json={"stores": ["fake"]}, headers=hdr)
                assert queued.status == 202
                deadline = time.monotonic() + 30
                while True:
                    jobs = await (await client.get(
                        f"/api/distribution/releases/{rid}/deliveries", headers=hdr)).json()
                    if jobs[0]["state"] == "delivered" or time.monotonic() > deadline:
                        break
                    await asyncio.sleep(0.05)
                assert jobs[0]["state"] == "delivered"
                assert list(store.accepted) == [jobs[0]["message_id"]]

                def delivered() -> list[dict]:
                    return [p for name, p in observer.events
                            if name == "distribution.release_delivered"]

                deadline = time.monotonic() + 20  # the event bus relays it, then a job
                while not delivered() and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
                [announced] = delivered()
                assert (announced["release_id"], announced["store"],
                        announced["message_id"], announced["account_id"]) == (
                    rid, "fake", jobs[0]["message_id"], "ada")
                metrics = await (await client.get("/api/distribution/metrics",
                                                  headers=hdr)).json()
                assert metrics["jobs"]["delivered"] == 1
                other = await client.get(f"/api/distribution/releases/{rid}",
                                         headers={"X-Account": "eve"})
                assert other.status == 404  # accounts never see each other's releases

                isrc = raw["tracks"][0]["isrc"]
                split = await client.put(f"/api/distribution/splits/{isrc}", headers=hdr,
                                         json={"payees": [{"payee_id": "ada", "share": "70"},
                                                          {"payee_id": "bo", "share": "30"}]})
                assert split.status == 200
                audit = await (await client.get("/api/distribution/audit", headers=hdr)).json()
                assert [(e["subject"], e["event"], e["changed_by"]) for e in audit] == [
                    ("payee:ada", "payee.added", "ada"), ("payee:bo", "payee.added", "ada")]
                csv = ("store,territory,isrc,units,amount,currency\n"
                       f"fake,US,{isrc},100,10.01,USD\n")
                imported = await client.post("/api/distribution/statements", data=csv,
                                             headers=hdr)
                assert imported.status == 201
                balances = await (await client.get("/api/distribution/balances",
                                                   headers=hdr)).json()
                assert {(b["payee_id"], b["cents"]) for b in balances} == {("ada", 701),
                                                                            ("bo", 300)}
                broken = await client.post("/api/distribution/statements", data="a,b\n1,2\n",
                                           headers=hdr)
                assert broken.status == 400 and "lacks columns" in (await broken.json())["error"]

                campaign = await (await client.post(
                    f"/api/distribution/releases/{rid}/presave", json={}, headers=hdr)).json()
                slug = campaign["slug"]
                saved = await client.post(f"/api/presave/{slug}",
                                          data={"fan": "f@example.com", "service": "spotify"})
                assert (await saved.json())["presaves"] == 1
                page = await client.get(f"/presave/{slug}")
                assert page.content_type == "text/html"
                assert "Night Drive" in await page.text()
                assert (await client.get("/api/presave/nope")).status == 404
                today = await (await client.post(
                    f"/api/distribution/releases/{rid}/presave", headers=hdr,
                    json={"release_date": dt.date.today().isoformat()})).json()
                def fired() -> list[str]:
                    return [p["slug"] for name, p in observer.events
                            if name == "presave.release_day"]

                deadline = time.monotonic() + 20  # the event bus relays it, then a job
                while not fired() and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
                await asyncio.sleep(0.3)  # several release-day checks run meanwhile
                assert fired() == [today["slug"]]
                invalid = await client.post("/api/distribution/releases", data=b"{oops",
                                            headers=hdr)
                assert invalid.status == 400 and "not valid JSON" in (await invalid.json())[
                    "error"]

    asyncio.run(go())


def test_held_money_is_listed_and_allocated_when_the_split_is_put(tmp_path: Path) -> None:
    async def go() -> None:
        config = {"data_dir": tmp_path / "data", "plugins": {"distribution": {}}}
        app = web.Application()
        install(app, config, manager=load_plugins(config), identify=_owner_of_header_account)
        async with TestClient(TestServer(app)) as client:
            hdr, base = {"X-Account": "ada"}, "/api/distribution"
            metrics = await client.get(f"{base}/metrics", headers=hdr)  # nothing delivered yet
            assert metrics.status == 200 and (await metrics.json())["jobs"]["delivered"] == 0
            isrc = "QZABC2600101"
            csv = ("store,territory,isrc,units,amount,currency\n"
                   f"fake,US,{isrc},100,10.01,USD\nfake,JP,{isrc},9,1234,JPY\n")
            assert (await client.post(f"{base}/statements", data=csv, headers=hdr)).status == 201
            held = await (await client.get(f"{base}/unallocated", headers=hdr)).json()
            assert held == [{"isrc": isrc, "currency": "JPY", "cents": 1234, "statements": 1},
                            {"isrc": isrc, "currency": "USD", "cents": 1001, "statements": 1}]
            assert (await client.get(f"{base}/unallocated?isrc=nope", headers=hdr)).status == 400
            assert await (await client.get(f"{base}/unallocated",
                                           headers={"X-Account": "eve"})).json() == []
            split = {"payees": [{"payee_id": "ada", "share": "70"},
                                {"payee_id": "bo", "share": "30", "joined": False}]}
            for _ in range(2):
                put = await client.put(f"{base}/splits/{isrc}", json=split, headers=hdr)
                assert put.status == 200
            assert await (await client.get(f"{base}/unallocated?isrc={isrc}",
                                           headers=hdr)).json() == []
            balances = await (await client.get(f"{base}/balances", headers=hdr)).json()
            assert {(b["payee_id"], b["currency"], b["status"]): b["cents"]
                    for b in balances} == {("ada", "JPY", "available"): 864,
                                           ("bo", "JPY", "held"): 370,
                                           ("ada", "USD", "available"): 701,
                                           ("bo", "USD", "held"): 300,
                                           ("unallocated", "JPY", "held"): 0,
                                           ("unallocated", "USD", "held"): 0}
            audit = await (await client.get(f"{base}/audit?subject=split:{isrc}",
                                            headers=hdr)).json()
            assert [(e["event"], e["detail"]["allocated"]) for e in audit] == [
                ("unallocated.allocated", {"JPY": 1234, "USD": 1001})]

    asyncio.run(go())


def test_put_answers_201_when_it_creates_a_release_and_200_when_it_replaces_one(
        tmp_path: Path) -> None:
    raw = release_dict(tmp_path / "data" / "distribution" / "ada")  # the account's files

    async def go() -> None:
        config = {"data_dir": tmp_path / "data", "plugins": {"distribution": {}}}
        app = web.Application()
        install(app, config, manager=load_plugins(config), identify=_owner_of_header_account)
        async with TestClient(TestServer(app)) as client:
            hdr, path = {"X-Account": "ada"}, "/api/distribution/releases/rel-1"
            made = await client.put(path, json=raw, headers=hdr)
            assert made.status == 201 and (await made.json())["title"] == "Night Drive"
            replaced = await client.put(path, json={**raw, "title": "Nite Drive"}, headers=hdr)
            assert replaced.status == 200 and (await replaced.json())["title"] == "Nite Drive"
            stored = await (await client.get(path, headers=hdr)).json()
            assert stored["title"] == "Nite Drive"
            # a POST naming the release in its body replaces it as before: 201
            again = await client.post("/api/distribution/releases", headers=hdr,
                                      json={**raw, "release_id": "rel-1", "title": "Night"})
            assert again.status == 201, await again.text()
            assert (await again.json())["title"] == "Night"

    asyncio.run(go())


def test_a_release_past_its_date_gets_no_first_delivery_of_any_kind(
        tmp_path: Path) -> None:
    """Nothing of it reached a store: asked as new, update or re-send, its date counts
    (a release some store took is checked as of its date: test_distribution_delivery)."""
    raw = release_dict(tmp_path / "data" / "distribution" / "ada")
    raw["release_date"] = _future(-1)  # out since yesterday

    async def go() -> None:
        async with FakeStore() as store:
            config = {"data_dir": tmp_path / "data", "plugins": {"distribution": {
                "stores": {"fake": {"url": store.url, "token": "secret",
                                    "dpid": "PADPIDA0000000001Z"}}}}}
            app = web.Application()
            install(app, config, manager=load_plugins(config),
                    identify=_owner_of_header_account)
            async with TestClient(TestServer(app)) as client:
                hdr, base = {"X-Account": "ada"}, "/api/distribution/releases/rel-1"
                assert (await client.put(base, json=raw, headers=hdr)).status == 201
                for request in ({}, {"action": "update"}, {"redeliver": True}):
                    late = await client.post(f"{base}/deliveries", json=request, headers=hdr)
                    assert late.status == 422, request
                    assert [i["code"] for i in (await late.json())["issues"]] == [
                        "release_date_past"]
                listed = await client.get(f"{base}/deliveries", headers=hdr)
                assert await listed.json() == []

    asyncio.run(go())
