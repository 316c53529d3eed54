"""Test-mode keys see sandbox data only: on plug-ins' routes and in webhooks.

Over a real server: one person's live and test keys and another person's test key.
Plug-ins' ``/api/v1`` lists keep only the key's mode, items and what lies under them of
the other mode answer 404, and a plug-in's routes outside ``/api/v1`` (live data, money,
networks) refuse test keys. Webhooks: a key lists and manages only its mode's, and a
real receiver per webhook hears sandbox projects' events in test mode only.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from public_api_helpers import (
    SCOPES,
    ids,
    key_of,
    post_releases,
    release_body,
    signed_in,
    x_channel,
)
from smtp_server import SmtpServer
from test_public_api_plugins import PLUGIN_SCOPES, STATEMENT, _beat
from test_public_api_social_analytics import _post
from test_public_api_webhooks import FAST, HOOKS, heard, sale, subscribe
from webhook_receiver import Receiver

from business.analytics.services import services as analytics
from business.analytics.sources.records import Identity
from business.distribution.services import services as distribution
from business.distribution.stores.fakestore import FakeStore
from business.marketplace.services import services as marketplace
from business.social.services import services as social
from dawserver.keys import BACKGROUND, PLUGIN_CONTEXT_KEY
from dawserver.public_api.state import api_state
from dawserver.transcription_events import DONE_NAME, TranscriptionDone

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(240)]
V1 = "/api/v1"


async def test_plugin_routes_confine_test_keys_to_sandbox_data(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with FakeStore() as fake:
        plugins = {"distribution": {"stores": {"fake": {
            "url": fake.url, "token": "secret", "dpid": "PADPIDA0000000001Z"}}}}
        async with signed_in(tmp_path, smtp_server, plugins=plugins) as (
                app, (ada_person, ada), (bob_person, bob)):
            context = app[PLUGIN_CONTEXT_KEY]
            live = await key_of(ada_person, ada, PLUGIN_SCOPES)
            test = await key_of(ada_person, ada, PLUGIN_SCOPES, test=True)
            bob_test = await key_of(bob_person, bob, PLUGIN_SCOPES, test=True)
            await post_releases(live, tmp_path)
            # rel-3 is a sandbox object, as a plug-in marks what a test key makes
            await api_state(context).sandbox.add_object(ada.person_id, "distribution",
                                                        "rel-3")
            await distribution(context).royalties.import_statement(
                ada.person_id, STATEMENT, "nov.csv")
            store = marketplace(context).store
            await store.insert_beat(_beat(ada.person_id, "beat-1", time.time()))

            # lists: each key its own mode
            assert await ids(test, f"{V1}/releases") == ["rel-3"]
            assert await ids(live, f"{V1}/releases") == ["rel-1", "rel-2"]
            assert await ids(test, f"{V1}/royalty-statements") == []
            (statement,) = await ids(live, f"{V1}/royalty-statements")
            assert await ids(test, f"{V1}/beats") == []
            assert await ids(live, f"{V1}/beats") == ["beat-1"]
            # the signed-in person (not a key) sees both
            _, page, _ = await ada_person.call("GET", f"{V1}/releases")
            assert [r["id"] for r in page["data"]] == ["rel-1", "rel-2", "rel-3"]

            # items, and what lies under them, of the other mode answer 404
            for caller, own, other in ((test, "rel-3", "rel-1"), (live, "rel-1", "rel-3")):
                for tail in ("", "/deliveries"):
                    status, _, _ = await caller.call("GET", f"{V1}/releases/{own}{tail}")
                    assert status == 200, (own, tail)
                    status, problem, _ = await caller.call(
                        "GET", f"{V1}/releases/{other}{tail}")
                    assert status == 404 and other in problem["detail"], (other, tail)
            for path in (f"{V1}/royalty-statements/{statement}", f"{V1}/beats/beat-1"):
                status, problem, _ = await test.call("GET", path)
                assert status == 404, (path, problem)
                assert (await live.call("GET", path))[0] == 200

            # another account's test key reaches none of Ada's sandbox
            assert await ids(bob_test, f"{V1}/releases") == []
            status, _, _ = await bob_test.call("GET", f"{V1}/releases/rel-3")
            assert status == 404

            # a plug-in's routes outside /api/v1 serve live data: test keys refused
            status, body, _ = await test.call("GET", "/api/distribution/releases")
            assert status == 403 and "test-mode" in body["error"], body
            status, body, _ = await test.call(
                "POST", "/api/distribution/releases/rel-3/deliveries", {})
            assert status == 403 and "live key" in body["error"], body
            status, _, _ = await test.call("POST", "/api/distribution/releases",
                                           release_body(tmp_path, 4))
            assert status == 403
            status, _, _ = await test.call(  # nor upload files for them
                "PUT", "/api/distribution/files/cover.png", data=b"\x89PNG\r\n\x1a\n" * 4,
                headers={"Content-Type": "image/png"})
            assert status == 403
            assert await ids(live, f"{V1}/releases") == ["rel-1", "rel-2"]
            assert await distribution(context).pipeline.jobs(ada.person_id,
                                                             "rel-3") == []
            status, _, _ = await live.call("GET", "/api/distribution/releases")
            assert status == 200


async def settled(app: Any, timeout: float = 20.0) -> None:
    """Wait until every event was fanned out and every delivery job has run."""
    await heard(app, timeout)
    db = app[PLUGIN_CONTEXT_KEY].database()
    async with asyncio.timeout(timeout):
        while await db.fetchval("SELECT COUNT(*) FROM jobs WHERE queue = 'webhooks.deliver' "
                                "AND state NOT IN ('done', 'dead', 'cancelled')"):
            await asyncio.sleep(0.05)


async def transcribed(app: Any, account: str, project: str) -> str:
    """Publish ``transcription.done`` of ``project`` as the core does; the event id."""
    payload = TranscriptionDone(account_id=account, project_id=project, job_id=project,
                                clip_id=None, language="en", duration_s=1.0, words=2)
    return await app[BACKGROUND].bus.publish_now(DONE_NAME, payload, account_id=account)


def heard_by(receiver: Receiver) -> set[tuple[str, str]]:
    """What ``receiver`` got: (type, the project or order it names)."""
    bodies = [json.loads(r.body) for r in receiver.received]
    return {(b["type"], b["data"].get("project_id") or b["data"]["order_id"]) for b in bodies}


async def test_webhooks_are_kept_apart_by_mode(tmp_path: Path,
                                               smtp_server: SmtpServer) -> None:
    scopes = [*SCOPES, "webhooks.manage"]
    async with signed_in(tmp_path, smtp_server, webhooks=FAST) as (
            app, (ada_person, ada), (bob_person, bob)), \
            Receiver() as live_rx, Receiver() as test_rx, Receiver() as bob_rx:
        live = await key_of(ada_person, ada, scopes)
        test = await key_of(ada_person, ada, scopes, test=True)
        bob_test = await key_of(bob_person, bob, scopes, test=True)
        events = [DONE_NAME, "marketplace.sale"]
        live_hook = await subscribe(live, live_rx.url, events)
        test_hook = await subscribe(test, test_rx.url, events)
        await subscribe(bob_test, bob_rx.url, events)

        # each key lists and manages its own mode's webhooks; the person both
        assert await ids(live, HOOKS) == [live_hook["id"]]
        assert await ids(test, HOOKS) == [test_hook["id"]]
        _, page, _ = await ada_person.call("GET", HOOKS)
        assert {h["id"] for h in page["data"]} == {live_hook["id"], test_hook["id"]}
        for caller, other in ((test, live_hook), (live, test_hook), (bob_test, test_hook)):
            hook = f"{HOOKS}/{other['id']}"
            for method, path, body in (("GET", hook, None),
                                       ("PATCH", hook, {"description": "taken"}),
                                       ("POST", f"{hook}/test", {}),
                                       ("GET", f"{hook}/deliveries", None),
                                       ("DELETE", hook, None)):
                status, problem, _ = await caller.call(method, path, body)
                assert status == 404 and other["id"] in problem["detail"], (method, path)
        _, still, _ = await ada_person.call("GET", f"{HOOKS}/{live_hook['id']}")
        assert still["description"] == "shop"

        # a sandbox project's events reach test-mode webhooks only, live ones live only
        _, sandbox, _ = await test.call("POST", f"{V1}/projects", {"name": "Sandbox"})
        _, real, _ = await live.call("POST", f"{V1}/projects", {"name": "Real"})
        _, bobs, _ = await bob_test.call("POST", f"{V1}/projects", {"name": "Bob's"})
        await transcribed(app, ada.person_id, sandbox["id"])
        await transcribed(app, ada.person_id, real["id"])
        await transcribed(app, bob.person_id, bobs["id"])
        await sale(app, ada.person_id, "live-order")
        await live_rx.wait_for(2)
        await test_rx.wait_for(1)
        await bob_rx.wait_for(1)
        await settled(app)
        assert heard_by(test_rx) == {(DONE_NAME, sandbox["id"])}
        assert heard_by(live_rx) == {(DONE_NAME, real["id"]),
                                     ("marketplace.sale", "live-order")}
        assert heard_by(bob_rx) == {(DONE_NAME, bobs["id"])}


async def test_webhooks_and_their_deliveries_say_their_mode(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    scopes = [*SCOPES, "webhooks.manage"]
    async with signed_in(tmp_path, smtp_server, "ada@example.org", webhooks=FAST) as (
            app, (ada_person, ada)), Receiver() as live_rx, Receiver() as test_rx:
        live = await key_of(ada_person, ada, scopes)
        test = await key_of(ada_person, ada, scopes, test=True)
        live_hook = await subscribe(live, live_rx.url, [DONE_NAME])
        test_hook = await subscribe(test, test_rx.url, [DONE_NAME])
        assert (live_hook["test"], test_hook["test"]) == (False, True)
        for caller, hook, mode in ((live, live_hook, False), (test, test_hook, True)):
            _, got, _ = await caller.call("GET", f"{HOOKS}/{hook['id']}")
            assert got["test"] is mode
            _, page, _ = await caller.call("GET", HOOKS)
            assert [h["test"] for h in page["data"]] == [mode]

        # the signed-in person sees both, each saying its mode, and filters by it
        _, page, _ = await ada_person.call("GET", HOOKS)
        assert {h["id"]: h["test"] for h in page["data"]} == {
            live_hook["id"]: False, test_hook["id"]: True}
        assert await ids(ada_person, f"{HOOKS}?test=true") == [test_hook["id"]]
        assert await ids(ada_person, f"{HOOKS}?test=false") == [live_hook["id"]]
        # a key asking for the other mode's webhooks gets none
        assert await ids(test, f"{HOOKS}?test=false") == []
        assert await ids(live, f"{HOOKS}?test=true") == []

        # each delivery's body says its mode: events and webhook.test alike
        _, sandbox, _ = await test.call("POST", f"{V1}/projects", {"name": "Sandbox"})
        _, real, _ = await live.call("POST", f"{V1}/projects", {"name": "Real"})
        await transcribed(app, ada.person_id, sandbox["id"])
        await transcribed(app, ada.person_id, real["id"])
        for caller, hook in ((live, live_hook), (test, test_hook)):
            status, _, _ = await caller.call("POST", f"{HOOKS}/{hook['id']}/test", {})
            assert status == 202
        for receiver, mode in ((live_rx, False), (test_rx, True)):
            bodies = [json.loads(r.body) for r in await receiver.wait_for(2)]
            assert sorted((b["type"], b["test"]) for b in bodies) == [
                (DONE_NAME, mode), ("webhook.test", mode)]
        await settled(app)


async def test_social_posts_and_analytics_artists_keep_to_the_key_mode(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with signed_in(tmp_path, smtp_server, "ada@example.org") as (
            app, (ada_person, ada)):
        context = app[PLUGIN_CONTEXT_KEY]
        scopes = ["social.read", "social.compose", "analytics.read"]
        live = await key_of(ada_person, ada, scopes)
        test = await key_of(ada_person, ada, scopes, test=True)
        module = social(context)
        now = time.time()
        async with module.store.db.transaction() as tx:
            channel = await x_channel(module, tx, ada.person_id)
            for post_id in ("p-live", "p-sandbox"):
                await module.store.insert_post(tx, _post(ada.person_id, post_id, channel,
                                                         None, "draft", now))
        await api_state(context).sandbox.add_object(ada.person_id, "social", "p-sandbox")
        found = await analytics(context).catalog.resolve(ada.person_id, [
            Identity("spotify", "artist", "sp-ada", "Ada Lovelace Band")])
        artist = found[("spotify", "artist", "sp-ada")].entity_id

        assert await ids(test, f"{V1}/social-posts") == ["p-sandbox"]
        assert await ids(live, f"{V1}/social-posts") == ["p-live"]
        for caller, own, other in ((test, "p-sandbox", "p-live"),
                                   (live, "p-live", "p-sandbox")):
            assert (await caller.call("GET", f"{V1}/social-posts/{own}"))[0] == 200
            status, problem, _ = await caller.call("GET", f"{V1}/social-posts/{other}")
            assert status == 404 and other in problem["detail"], problem
        assert await ids(test, f"{V1}/analytics/artists") == []
        assert await ids(live, f"{V1}/analytics/artists") == [artist]
        for tail in ("", "/metrics"):
            path = f"{V1}/analytics/artists/{artist}{tail}"
            assert (await test.call("GET", path))[0] == 404, path
            assert (await live.call("GET", path))[0] == 200, path

        # outside /api/v1: live data and real networks, refused to the test key
        for method, path, body in (("GET", "/api/social/posts", None),
                                   ("POST", "/api/social/posts",
                                    {"text": "hi", "targets": [{"channel_id": channel}]}),
                                   ("GET", "/api/analytics/sources", None)):
            status, answer, _ = await test.call(method, path, body)
            assert status == 403 and "test-mode" in answer["error"], (path, answer)
        assert (await live.call("GET", "/api/social/posts"))[0] == 200
        assert await ids(live, f"{V1}/social-posts") == ["p-live"]


async def test_me_projects_answers_a_key_only_the_projects_of_its_mode(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with signed_in(tmp_path, smtp_server, "ada@example.org") as (_, ada):
        status, live, _ = await ada.key.call("POST", "/api/v1/projects", {"name": "Live"})
        assert status == 201, live
        test_key = await key_of(ada.person, ada.key,
                                ["account.self", "account.read", "projects.create"], test=True)
        live_key = await key_of(ada.person, ada.key, ["account.self", "account.read"])
        status, sandbox, _ = await test_key.call("POST", "/api/v1/projects", {"name": "Sbx"})
        assert status == 201, sandbox
        assert await ids(test_key, "/api/v1/projects") == [sandbox["id"]]
        for caller, seen in ((test_key, [sandbox["id"]]), (live_key, [live["id"]]),
                             (ada.person, [live["id"], sandbox["id"]])):
            status, listed, _ = await caller.call("GET", "/me/projects")
            assert status == 200, listed
            assert sorted(p["id"] for p in listed) == sorted(seen), listed
