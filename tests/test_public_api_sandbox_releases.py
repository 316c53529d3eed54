"""Distribution's sandbox releases: the release flow of ``/api/v1`` with test-mode keys.

Over a real server with a real fake store (``FakeStore``, counting every request) and
real webhook receivers: a test-mode key creates a release through
``POST /api/v1/releases`` (a sandbox object, which only test-mode keys reach), and
delivers it through ``POST /api/v1/releases/{id}/deliveries``: simulated, no request
reaches the store, and only test-mode webhooks hear ``distribution.release_delivered``.
A live key's release is delivered to the store for real, heard by live webhooks only.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from public_api_helpers import account_folder, ids, key_of, release_body, signed_in
from smtp_server import SmtpServer
from test_public_api_plugins import PLUGIN_SCOPES
from test_public_api_test_mode import settled
from test_public_api_webhooks import FAST, subscribe
from webhook_receiver import Receiver

from business.distribution.delivery import DELIVERED_EVENT, SIMULATED
from business.distribution.services import services as distribution
from business.distribution.stores.fakestore import FakeStore
from dawserver.keys import PLUGIN_CONTEXT_KEY

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(240)]
V1 = "/api/v1"
RELEASES = f"{V1}/releases"
SCOPES = [*PLUGIN_SCOPES, "webhooks.manage"]


def new_release(app: Any, caller: Any, n: int) -> dict[str, Any]:
    """A release's data as ``POST /api/v1/releases`` takes it (no id: the server's), its
    files in the distribution folder of ``caller``'s account (so they are its own)."""
    body = release_body(account_folder(app, caller.person_id), n)
    del body["release_id"]
    return body


def fake_store(fake: FakeStore) -> dict[str, Any]:
    return {"distribution": {"stores": {"fake": {
        "url": fake.url, "token": "secret", "dpid": "PADPIDA0000000001Z"}}}}


async def create(caller: Any, body: dict[str, Any], key: str | None = None
                 ) -> tuple[int, Any, Any]:
    headers = {"Idempotency-Key": key} if key else None
    return await caller.call("POST", RELEASES, body, headers=headers)


async def delivered(caller: Any, release_id: str, timeout: float = 30.0) -> list[dict]:
    """The release's deliveries once every one has settled (delivered or dead)."""
    async with asyncio.timeout(timeout):
        while True:
            status, page, _ = await caller.call("GET", f"{RELEASES}/{release_id}/deliveries")
            assert status == 200, page
            if page["data"] and all(d["state"] in ("delivered", "dead") for d in page["data"]):
                return page["data"]
            await asyncio.sleep(0.05)


async def test_a_test_key_makes_sandbox_releases_a_live_key_never_sees(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with FakeStore() as fake, signed_in(
            tmp_path, smtp_server, plugins=fake_store(fake)) as (
            app, (ada_person, ada), (bob_person, bob)):
        live = await key_of(ada_person, ada, SCOPES)
        test = await key_of(ada_person, ada, SCOPES, test=True)
        bob_test = await key_of(bob_person, bob, SCOPES, test=True)

        status, made, headers = await create(test, new_release(app, test, 1))
        assert status == 201, made
        assert made["status"] == "draft" and made["title"]
        sandbox_id = made["id"]
        assert headers["Location"] == f"{RELEASES}/{sandbox_id}"
        status, real, _ = await create(live, new_release(app, live, 2))
        assert status == 201, real
        live_id = real["id"]
        assert sandbox_id != live_id

        # each key lists and reaches its own mode's release only
        assert await ids(test, RELEASES) == [sandbox_id]
        assert await ids(live, RELEASES) == [live_id]
        assert sorted(await ids(ada_person, RELEASES)) == sorted([sandbox_id, live_id])
        for caller, own, other in ((test, sandbox_id, live_id), (live, live_id, sandbox_id)):
            status, got, _ = await caller.call("GET", f"{RELEASES}/{own}")
            assert status == 200 and got["id"] == own
            status, problem, _ = await caller.call("GET", f"{RELEASES}/{other}")
            assert status == 404 and other in problem["detail"], problem
            status, problem, _ = await caller.call(
                "POST", f"{RELEASES}/{other}/deliveries", {"stores": ["fake"]})
            assert status == 404 and other in problem["detail"], problem
        # another account's test key reaches none of it
        assert await ids(bob_test, RELEASES) == []
        assert (await bob_test.call("GET", f"{RELEASES}/{sandbox_id}"))[0] == 404
        # the module sees both, and marks only the test key's release
        context = app[PLUGIN_CONTEXT_KEY]
        rows = await distribution(context).catalog.list_releases(ada.person_id)
        assert sorted(r["release_id"] for r in rows) == sorted([sandbox_id, live_id])
        marks = await context.database().fetch(
            "SELECT object_id, kind FROM api_sandbox WHERE account_id = ?", ada.person_id)
        assert [(r["object_id"], r["kind"]) for r in marks] == [
            (f"distribution:{sandbox_id}", "distribution")]
        assert fake.stats.requests == 0


async def test_a_sandbox_release_is_delivered_in_simulation_and_heard_in_test_mode(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with FakeStore() as fake, signed_in(
            tmp_path, smtp_server, "ada@example.org", plugins=fake_store(fake),
            webhooks=FAST) as (app, (ada_person, ada)), \
            Receiver() as live_rx, Receiver() as test_rx:
        live = await key_of(ada_person, ada, SCOPES)
        test = await key_of(ada_person, ada, SCOPES, test=True)
        await subscribe(live, live_rx.url, [DELIVERED_EVENT])
        await subscribe(test, test_rx.url, [DELIVERED_EVENT])

        _, sandbox, _ = await create(test, new_release(app, test, 1))
        status, queued, _ = await test.call(
            "POST", f"{RELEASES}/{sandbox['id']}/deliveries", {"stores": ["fake"]})
        assert status == 202, queued
        assert [(d["store"], d["action"]) for d in queued["data"]] == [("fake", "new")]
        (done,) = await delivered(test, sandbox["id"])
        assert done["state"] == "delivered" and done["last_error"] == SIMULATED, done
        assert done["delivered_at"] is not None
        await test_rx.wait_for(1)
        await settled(app)
        # no request of any kind reached the store: neither an upload nor a probe
        assert fake.stats.requests == 0 and not fake.stats.acceptances
        (heard,) = [json.loads(r.body) for r in test_rx.received]
        assert heard["type"] == DELIVERED_EVENT and heard["test"] is True
        assert heard["data"]["release_id"] == sandbox["id"]
        assert heard["data"]["store"] == "fake" and heard["data"]["store_had_it"] is False
        assert live_rx.received == []

        # a live key's release goes to the store for real, heard by live webhooks only
        _, real, _ = await create(live, new_release(app, live, 2))
        status, queued, _ = await live.call(
            "POST", f"{RELEASES}/{real['id']}/deliveries", {"stores": ["fake"]})
        assert status == 202, queued
        (done,) = await delivered(live, real["id"])
        assert done["state"] == "delivered" and done["last_error"] == "", done
        await live_rx.wait_for(1)
        await settled(app)
        assert len(fake.stats.acceptances) == 1 and fake.stats.requests > 0
        (heard,) = [json.loads(r.body) for r in live_rx.received]
        assert heard["test"] is False and heard["data"]["release_id"] == real["id"]
        assert len(test_rx.received) == 1


async def test_an_idempotency_key_replays_one_release(tmp_path: Path,
                                                     smtp_server: SmtpServer) -> None:
    async with FakeStore() as fake, signed_in(
            tmp_path, smtp_server, "ada@example.org", plugins=fake_store(fake)) as (
            app, (ada_person, ada)):
        test = await key_of(ada_person, ada, SCOPES, test=True)
        body = new_release(app, test, 1)
        status, first, headers = await create(test, body, "release-1")
        assert status == 201 and "Idempotent-Replayed" not in headers
        status, again, headers = await create(test, body, "release-1")
        assert status == 201 and headers["Idempotent-Replayed"] == "true"
        assert again == first
        assert await ids(test, RELEASES) == [first["id"]]
        # the same key for another request is refused, and makes nothing
        status, problem, _ = await create(test, {**body, "title": "Other"}, "release-1")
        assert status == 422 and "another request" in problem["detail"], problem
        assert await ids(test, RELEASES) == [first["id"]]
        rows = await distribution(app[PLUGIN_CONTEXT_KEY]).catalog.list_releases(
            ada.person_id)
        assert [r["release_id"] for r in rows] == [first["id"]]
        # the same person's live key with that key and body makes a live release: a
        # sandbox answer is never replayed to a live key (nor the other way)
        live = await key_of(ada_person, ada, SCOPES)
        status, real, headers = await create(live, body, "release-1")
        assert status == 201 and "Idempotent-Replayed" not in headers, real
        assert real["id"] != first["id"]
        assert await ids(live, RELEASES) == [real["id"]]
        assert await ids(test, RELEASES) == [first["id"]]


async def test_bad_releases_are_refused_with_a_clear_message(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with FakeStore() as fake, signed_in(
            tmp_path, smtp_server, "ada@example.org", plugins=fake_store(fake)) as (
            app, (ada_person, ada)):
        test = await key_of(ada_person, ada, SCOPES, test=True)
        # the id is the server's: naming one is an unknown field
        status, problem, _ = await create(test, {**new_release(app, test, 1),
                                                 "release_id": "mine"})
        assert status == 422 and "release_id" in json.dumps(problem), problem
        # a malformed credit says what is missing
        status, problem, _ = await create(test, {"title": "T",
                                                 "artists": [{"role": "primary"}]})
        assert status == 422 and "name" in json.dumps(problem), problem
        # a draft may be incomplete, but the gate stops its delivery, saying why
        status, draft, _ = await create(test, {"title": "Unfinished"})
        assert status == 201 and draft["status"] == "draft", draft
        status, problem, _ = await test.call(
            "POST", f"{RELEASES}/{draft['id']}/deliveries", {"stores": ["fake"]})
        assert status == 422 and problem["detail"] and problem["issues"], problem
        assert await distribution(app[PLUGIN_CONTEXT_KEY]).pipeline.jobs(
            ada.person_id, draft["id"]) == []
        # a store that is not configured
        _, made, _ = await create(test, new_release(app, test, 1))
        status, problem, _ = await test.call(
            "POST", f"{RELEASES}/{made['id']}/deliveries", {"stores": ["nowhere"]})
        assert status == 400 and "nowhere" in problem["detail"], problem
        # a key without the module's scope for writes is refused
        reader = await key_of(ada_person, ada, ["distribution.read"], test=True)
        status, problem, _ = await create(reader, new_release(app, reader, 2))
        assert status == 403, problem
        assert sorted(await ids(test, RELEASES)) == sorted([draft["id"], made["id"]])
        assert fake.stats.requests == 0


async def test_sandbox_marks_are_per_account(tmp_path: Path,
                                             smtp_server: SmtpServer) -> None:
    """Another account's live release that has the same id as a sandbox release (the
    module's own route lets its owner choose ids) is delivered for real and heard live."""
    async with FakeStore() as fake, signed_in(
            tmp_path, smtp_server, plugins=fake_store(fake), webhooks=FAST) as (
            app, (ada_person, ada), (bob_person, bob)), \
            Receiver() as bob_live_rx, Receiver() as bob_test_rx:
        ada_test = await key_of(ada_person, ada, SCOPES, test=True)
        bob_live = await key_of(bob_person, bob, SCOPES)
        bob_test = await key_of(bob_person, bob, SCOPES, test=True)
        await subscribe(bob_live, bob_live_rx.url, [DELIVERED_EVENT])
        await subscribe(bob_test, bob_test_rx.url, [DELIVERED_EVENT])
        _, sandbox, _ = await create(ada_test, new_release(app, ada_test, 1))
        status, made, _ = await bob_live.call(
            "POST", "/api/distribution/releases",
            {**new_release(app, bob_live, 2), "release_id": sandbox["id"]})
        assert status == 201 and made["release_id"] == sandbox["id"], made

        assert await ids(bob_live, RELEASES) == [sandbox["id"]]
        assert await ids(bob_test, RELEASES) == []
        status, queued, _ = await bob_live.call(
            "POST", f"{RELEASES}/{sandbox['id']}/deliveries", {"stores": ["fake"]})
        assert status == 202, queued
        (done,) = await delivered(bob_live, sandbox["id"])
        assert done["state"] == "delivered" and done["last_error"] == "", done
        await bob_live_rx.wait_for(1)
        await settled(app)
        assert len(fake.stats.acceptances) == 1
        (heard,) = [json.loads(r.body) for r in bob_live_rx.received]
        assert heard["test"] is False and heard["data"]["release_id"] == sandbox["id"]
        assert bob_test_rx.received == []
