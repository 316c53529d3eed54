"""Distribution's dead-delivery retries and pre-save campaigns through ``/api/v1``.

Over a real server, a real HTTP client and a real fake store (``FakeStore``, counting
every request): ``POST /api/v1/releases/{id}/deliveries/{delivery_id}/retry`` sends a
dead delivery again (409 for one that is not dead), and
``/api/v1/presave-campaigns`` (with ``/api/v1/releases/{id}/presave-campaigns``) lists,
shows and starts pre-save campaigns with their counts. Scopes (403), another account's
ids (404), ``Idempotency-Key`` replays, cursor pages, sparse fields, ETags; test-mode
keys reach sandbox deliveries and campaigns only, and a sandbox retry is simulated.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from public_api_helpers import ids, key_of, signed_in
from smtp_server import SmtpServer
from test_public_api_sandbox_releases import SCOPES, create, delivered, fake_store, new_release

from business.distribution.delivery import SIMULATED
from business.distribution.presave import SERVICES
from business.distribution.stores.fakestore import FakeStore
from dawserver.keys import PLUGIN_CONTEXT_KEY

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(300)]
V1 = "/api/v1"
RELEASES = f"{V1}/releases"
CAMPAIGNS = f"{V1}/presave-campaigns"


def retry_path(release_id: str, delivery_id: str) -> str:
    return f"{RELEASES}/{release_id}/deliveries/{delivery_id}/retry"


async def retry(caller: Any, release_id: str, delivery_id: str, key: str | None = None
                ) -> tuple[int, Any, Any]:
    headers = {"Idempotency-Key": key} if key else None
    return await caller.call("POST", retry_path(release_id, delivery_id), {},
                             headers=headers)


async def released(caller: Any, release_id: str, state: str, timeout: float = 30.0
                   ) -> dict[str, Any]:
    """The release's one delivery once it is in ``state``."""
    async with asyncio.timeout(timeout):
        while True:
            status, page, _ = await caller.call("GET", f"{RELEASES}/{release_id}/deliveries")
            assert status == 200, page
            if page["data"] and page["data"][0]["state"] == state:
                return page["data"][0]
            await asyncio.sleep(0.05)


async def queued_entries(app: Any, delivery_id: str) -> int:
    """How often the delivery was armed (its ``queued`` log entries)."""
    return await app[PLUGIN_CONTEXT_KEY].database().fetchval(
        "SELECT COUNT(*) FROM dist_job_events WHERE job_id = ? AND state = 'queued'",
        delivery_id)


async def test_a_dead_delivery_is_retried_once_per_key_and_only_by_its_owner(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    # the store refuses the configured token (401): the delivery dies at once
    async with FakeStore(token="other") as fake, signed_in(
            tmp_path, smtp_server, plugins=fake_store(fake)) as (
            app, (ada_person, ada), (bob_person, bob)):
        live = await key_of(ada_person, ada, SCOPES)
        bob_live = await key_of(bob_person, bob, SCOPES)
        _, release, _ = await create(live, new_release(app, live, 1))
        _, other, _ = await create(live, new_release(app, live, 2))
        _, bobs, _ = await create(bob_live, new_release(app, bob_live, 3))
        status, queued, _ = await live.call(
            "POST", f"{RELEASES}/{release['id']}/deliveries", {"stores": ["fake"]})
        assert status == 202, queued
        (dead,) = await delivered(live, release["id"])
        assert dead["state"] == "dead" and dead["last_error"], dead
        delivery_id = dead["id"]

        # a key without distribution.deliver is refused; nothing is armed
        reader = await key_of(ada_person, ada, ["distribution.read"])
        status, problem, _ = await retry(reader, release["id"], delivery_id)
        assert status == 403, problem
        # another account's ids answer 404, whichever release path names them
        for caller, release_id in ((bob_live, release["id"]), (bob_live, bobs["id"])):
            status, problem, _ = await retry(caller, release_id, delivery_id)
            assert status == 404 and problem["status"] == 404, problem
        # the delivery under another release of the same account is not there either
        status, problem, _ = await retry(live, other["id"], delivery_id)
        assert status == 404 and delivery_id in problem["detail"], problem
        # nor does a test-mode key of the same account reach a live delivery
        test = await key_of(ada_person, ada, SCOPES, test=True)
        assert (await retry(test, release["id"], delivery_id))[0] == 404
        assert await queued_entries(app, delivery_id) == 1

        # the store takes the token now: the retry sends the message again
        fake.token = "secret"
        status, again, headers = await retry(live, release["id"], delivery_id, "retry-1")
        assert status == 202 and "Idempotent-Replayed" not in headers, again
        assert again["id"] == delivery_id and again["state"] == "queued", again
        assert again["attempts"] == 0 and again["last_error"] == ""
        status, replay, headers = await retry(live, release["id"], delivery_id, "retry-1")
        assert status == 202 and headers["Idempotent-Replayed"] == "true"
        assert replay == again
        done = await released(live, release["id"], "delivered")
        assert done["id"] == delivery_id and done["delivered_at"] is not None
        assert len(fake.stats.acceptances) == 1
        assert await queued_entries(app, delivery_id) == 2

        # a delivery that is not dead is refused with 409, saying why; nothing changes
        status, problem, headers = await retry(live, release["id"], delivery_id, "retry-2")
        assert status == 409 and "delivered" in problem["detail"], problem
        assert headers["Content-Type"].startswith("application/problem+json")
        status, replay, _ = await retry(live, release["id"], delivery_id, "retry-1")
        assert status == 202 and replay == again
        assert await queued_entries(app, delivery_id) == 2
        assert len(fake.stats.acceptances) == 1


async def test_a_sandbox_delivery_is_retried_in_simulation(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with FakeStore() as fake, signed_in(
            tmp_path, smtp_server, "ada@example.org", plugins=fake_store(fake)) as (
            app, (ada_person, ada)):
        test = await key_of(ada_person, ada, SCOPES, test=True)
        live = await key_of(ada_person, ada, SCOPES)
        _, sandbox, _ = await create(test, new_release(app, test, 1))
        status, queued, _ = await test.call(
            "POST", f"{RELEASES}/{sandbox['id']}/deliveries", {"stores": ["fake"]})
        assert status == 202, queued
        (done,) = await delivered(test, sandbox["id"])
        assert done["state"] == "delivered" and done["last_error"] == SIMULATED, done
        # the delivery is a sandbox object of the account, as its release is
        db = app[PLUGIN_CONTEXT_KEY].database()
        marks = await db.fetch("SELECT object_id FROM api_sandbox WHERE account_id = ?",
                               ada.person_id)
        assert sorted(r["object_id"] for r in marks) == sorted(
            [f"distribution:{sandbox['id']}", f"distribution:{done['id']}"])
        # delivered: not retried
        status, problem, _ = await retry(test, sandbox["id"], done["id"])
        assert status == 409, problem

        # the job queue gave the delivery up (as when every worker running it died)
        await db.execute("UPDATE dist_jobs SET state = 'dead', last_error = 'worker died' "
                         "WHERE job_id = ?", done["id"])
        assert (await retry(live, sandbox["id"], done["id"]))[0] == 404
        status, again, _ = await retry(test, sandbox["id"], done["id"], "sandbox-retry")
        assert status == 202 and again["state"] == "queued", again
        done = await released(test, sandbox["id"], "delivered")
        assert done["last_error"] == SIMULATED and done["attempts"] == 1, done
        assert await queued_entries(app, done["id"]) == 2
        # no request of any kind reached the store
        assert fake.stats.requests == 0 and not fake.stats.acceptances


async def test_a_release_past_its_date_gets_no_first_delivery_over_v1_of_any_kind(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with FakeStore() as fake, signed_in(
            tmp_path, smtp_server, "ada@example.org", plugins=fake_store(fake)) as (
            app, (ada_person, ada)):
        live = await key_of(ada_person, ada, SCOPES)
        body = new_release(app, live, 1)
        body["release_date"] = (dt.date.today() - dt.timedelta(days=1)).isoformat()
        _, release, _ = await create(live, body)
        path = f"{RELEASES}/{release['id']}/deliveries"
        for asked in ({}, {"action": "update"}, {"redeliver": True}):
            status, problem, _ = await live.call("POST", path, {"stores": ["fake"], **asked})
            assert status == 422 and "release_date_past" in str(problem), (asked, problem)
        assert fake.accepted == {}


async def test_presave_campaigns_are_public_v1_resources(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with FakeStore() as fake, signed_in(
            tmp_path, smtp_server, plugins=fake_store(fake)) as (
            app, (ada_person, ada), (bob_person, bob)):
        live = await key_of(ada_person, ada, SCOPES)
        bob_live = await key_of(bob_person, bob, SCOPES)
        _, release, _ = await create(live, new_release(app, live, 1))
        _, second, _ = await create(live, new_release(app, live, 2))
        path = f"{RELEASES}/{release['id']}/presave-campaigns"

        # a campaign from the release's own data, once per Idempotency-Key
        status, made, headers = await live.call("POST", path, {},
                                                headers={"Idempotency-Key": "ps-1"})
        assert status == 201, made
        assert headers["Location"] == f"{CAMPAIGNS}/{made['id']}"
        assert made["release_id"] == release["id"] and made["title"] == release["title"]
        assert made["release_date"] == release["release_date"]
        assert made["services"] == list(SERVICES) and made["presaves"] == 0
        assert made["presaves_by_service"] == {s: 0 for s in SERVICES}
        assert made["landing_page"] == f"/presave/{made['slug']}"
        assert made["released"] is False and made["created_at"].endswith("Z")
        status, replay, headers = await live.call("POST", path, {},
                                                  headers={"Idempotency-Key": "ps-1"})
        assert status == 201 and headers["Idempotent-Replayed"] == "true" and replay == made
        status, chosen, _ = await live.call("POST", path, {
            "title": "Night Drive (Live)", "services": ["spotify", "deezer"]})
        assert status == 201 and chosen["services"] == ["spotify", "deezer"], chosen
        status, elsewhere, _ = await live.call(
            "POST", f"{RELEASES}/{second['id']}/presave-campaigns", {})
        assert status == 201, elsewhere

        # fans pre-save on the public page; the counts follow, per service
        for fan, service in (("a@example.org", "spotify"), ("b@example.org", "spotify"),
                             ("a@example.org", "deezer")):
            status, _, _ = await live.call("POST", f"/api/presave/{chosen['slug']}",
                                           {"fan": fan, "service": service})
            assert status == 200
        status, one, headers = await live.call("GET", f"{CAMPAIGNS}/{chosen['id']}")
        assert status == 200 and one["presaves"] == 3, one
        assert one["presaves_by_service"] == {"spotify": 2, "deezer": 1}
        assert headers["ETag"]
        status, _, _ = await live.call("GET", f"{CAMPAIGNS}/{chosen['id']}",
                                       headers={"If-None-Match": headers["ETag"]})
        assert status == 304
        status, cut, _ = await live.call("GET", f"{CAMPAIGNS}/{chosen['id']}"
                                                "?fields=presaves")
        assert status == 200 and cut == {"id": chosen["id"], "presaves": 3}

        # the release's campaigns, oldest first, in cursor pages
        status, first, _ = await live.call("GET", f"{path}?limit=1&fields=title")
        assert status == 200, first
        assert first["data"] == [{"id": made["id"], "title": release["title"]}]
        status, rest, _ = await live.call(
            "GET", f"{path}?limit=1&cursor={first['next_cursor']}")
        assert status == 200 and [c["id"] for c in rest["data"]] == [chosen["id"]]
        assert rest["next_cursor"] is None and rest["data"][0]["presaves"] == 3
        # the account's, and filtered by release
        assert await ids(live, CAMPAIGNS) == [made["id"], chosen["id"], elsewhere["id"]]
        assert await ids(live, f"{CAMPAIGNS}?release_id={second['id']}") == [elsewhere["id"]]

        # refused: an unknown service, a malformed date, a missing release
        status, problem, _ = await live.call("POST", path, {"services": ["napster"]})
        assert status == 400 and "napster" in problem["detail"], problem
        status, problem, _ = await live.call("POST", path, {"release_date": "soon"})
        assert status == 400 and "YYYY-MM-DD" in problem["detail"], problem
        status, problem, _ = await live.call(
            "POST", f"{RELEASES}/no-such/presave-campaigns", {})
        assert status == 404, problem
        # scopes: reading takes distribution.read, starting one distribution.releases
        reader = await key_of(ada_person, ada, ["distribution.read"])
        assert (await reader.call("GET", CAMPAIGNS))[0] == 200
        assert (await reader.call("POST", path, {}))[0] == 403
        deliverer = await key_of(ada_person, ada, ["distribution.deliver"])
        assert (await deliverer.call("GET", CAMPAIGNS))[0] == 403

        # another account's campaigns and release are not there
        assert await ids(bob_live, CAMPAIGNS) == []
        assert await ids(bob_live, f"{CAMPAIGNS}?release_id={release['id']}") == []
        for method, url in (("GET", f"{CAMPAIGNS}/{made['id']}"), ("GET", path),
                            ("POST", path)):
            status, problem, _ = await bob_live.call(method, url, {} if method == "POST"
                                                     else None)
            assert status == 404 and problem["status"] == 404, (url, problem)
        assert await ids(live, CAMPAIGNS) == [made["id"], chosen["id"], elsewhere["id"]]


async def test_test_mode_keys_reach_sandbox_campaigns_only(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with FakeStore() as fake, signed_in(
            tmp_path, smtp_server, plugins=fake_store(fake)) as (
            app, (ada_person, ada), (bob_person, bob)):
        live = await key_of(ada_person, ada, SCOPES)
        test = await key_of(ada_person, ada, SCOPES, test=True)
        bob_test = await key_of(bob_person, bob, SCOPES, test=True)
        _, sandbox, _ = await create(test, new_release(app, test, 1))
        _, real, _ = await create(live, new_release(app, live, 2))
        status, sandboxed, _ = await test.call(
            "POST", f"{RELEASES}/{sandbox['id']}/presave-campaigns", {},
            headers={"Idempotency-Key": "ps"})
        assert status == 201, sandboxed
        status, lived, _ = await live.call(
            "POST", f"{RELEASES}/{real['id']}/presave-campaigns", {},
            headers={"Idempotency-Key": "ps"})
        assert status == 201 and "Idempotent-Replayed" not in lived, lived
        assert lived["id"] != sandboxed["id"]
        # the owner's session starts one on the sandbox release: a sandbox one too
        status, by_hand, _ = await ada_person.call(
            "POST", f"/api/distribution/releases/{sandbox['id']}/presave", {})
        assert status == 201, by_hand

        assert await ids(test, CAMPAIGNS) == [sandboxed["id"], by_hand["campaign_id"]]
        assert await ids(live, CAMPAIGNS) == [lived["id"]]
        assert await ids(test, f"{RELEASES}/{sandbox['id']}/presave-campaigns") == [
            sandboxed["id"], by_hand["campaign_id"]]
        for caller, own, other in ((test, sandboxed["id"], lived["id"]),
                                   (live, lived["id"], sandboxed["id"])):
            assert (await caller.call("GET", f"{CAMPAIGNS}/{own}"))[0] == 200
            status, problem, _ = await caller.call("GET", f"{CAMPAIGNS}/{other}")
            assert status == 404 and other in problem["detail"], problem
        # the other mode's release: neither its campaigns nor a new one
        for caller, other in ((test, real["id"]), (live, sandbox["id"])):
            url = f"{RELEASES}/{other}/presave-campaigns"
            assert (await caller.call("GET", url))[0] == 404
            assert (await caller.call("POST", url, {}))[0] == 404
        assert await ids(bob_test, CAMPAIGNS) == []
        assert (await bob_test.call("GET", f"{CAMPAIGNS}/{sandboxed['id']}"))[0] == 404
        marks = await app[PLUGIN_CONTEXT_KEY].database().fetch(
            "SELECT object_id FROM api_sandbox WHERE account_id = ?", ada.person_id)
        assert sorted(r["object_id"] for r in marks) == sorted(
            f"distribution:{i}" for i in (sandbox["id"], sandboxed["id"],
                                          by_hand["campaign_id"]))
