"""Social's sandbox posts: scheduling posts through ``/api/v1`` with test-mode keys.

Over a real server with a real fake network (``FakeX``, counting every request) and
real webhook receivers: a test-mode key schedules a post through
``POST /api/v1/social-posts`` (a sandbox object, which only test-mode keys reach); when
it comes due its publishing is simulated: no request reaches the network, the target
ends ``published`` as ``sandbox-<post id>``, and only test-mode webhooks hear
``social.post_published``. A live key's post is published at the network for real,
heard by live webhooks only.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from public_api_helpers import ids, key_of, signed_in
from smtp_server import SmtpServer
from test_public_api_test_mode import settled
from test_public_api_webhooks import FAST, subscribe
from webhook_receiver import Receiver

from business.social.approvals import APPROVED_EVENT
from business.social.dispatch import PUBLISHED_EVENT
from business.social.errors import NotAllowedError
from business.social.fakes import FakeNetworks, FakeX
from business.social.models import ChannelTokens
from business.social.services import services as social
from dawserver.keys import PLUGIN_CONTEXT_KEY
from dawserver.public_api.portal import guides

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(240)]
V1 = "/api/v1"
POSTS = f"{V1}/social-posts"
SCOPES = ["social.read", "social.compose", "webhooks.manage"]
CLIENT_ID, CLIENT_SECRET = "studio-client", "studio-secret"


def settings(networks: FakeNetworks) -> dict[str, Any]:
    return {"social": {"networks": {"x": {
        "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
        "base_url": networks.base_url("x"), "timeout_s": 10.0}}}}


async def x_channel(app: Any, fake: FakeX, account_id: str, *,
                    tiers: list[list[dict[str, str]]] | None = None) -> str:
    """A connected X channel of ``account_id`` holding a token the fake takes; its id."""
    module = social(app[PLUGIN_CONTEXT_KEY])
    box = module.channels.box
    sealed = ChannelTokens(box.seal(fake.issue_access_token()), box.seal("r"),
                           time.time() + 3600, "tweet.write", 1, time.time(), time.time())
    async with module.store.db.transaction() as tx:
        channel = await module.store.insert_channel(tx, account_id, "x", "remote-ada",
                                                    "Ada", "@ada", sealed, account_id,
                                                    time.time())
    if tiers:
        await module.approvals.set_workflow(account_id, channel, tiers, account_id)
    return channel


def post_body(channel: str, text: str = "New single out now", *, after_s: float = 1.0
              ) -> dict[str, Any]:
    when = datetime.fromtimestamp(time.time() + after_s, UTC).isoformat()
    return {"text": text, "publish_at": when, "targets": [{"channel_id": channel}]}


async def create(caller: Any, body: dict[str, Any], key: str | None = None
                 ) -> tuple[int, Any, Any]:
    headers = {"Idempotency-Key": key} if key else None
    return await caller.call("POST", POSTS, body, headers=headers)


async def published(caller: Any, post_id: str, timeout: float = 30.0) -> dict[str, Any]:
    """The post once it has settled (published or failed)."""
    async with asyncio.timeout(timeout):
        while True:
            status, post, _ = await caller.call("GET", f"{POSTS}/{post_id}")
            assert status == 200, post
            if post["state"] in ("published", "failed"):
                return post
            await asyncio.sleep(0.05)


async def test_a_test_key_schedules_sandbox_posts_a_live_key_never_sees(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    fake = FakeX(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    async with FakeNetworks([fake]) as networks, signed_in(
            tmp_path, smtp_server, plugins=settings(networks)) as (
            app, (ada_person, ada), (bob_person, bob)):
        channel = await x_channel(app, fake, ada.person_id)
        live = await key_of(ada_person, ada, SCOPES)
        test = await key_of(ada_person, ada, SCOPES, test=True)
        bob_test = await key_of(bob_person, bob, SCOPES, test=True)

        status, made, headers = await create(test, post_body(channel, after_s=3600))
        assert status == 201, made
        assert made["state"] == "scheduled" and made["text"] == "New single out now"
        assert [(t["channel_id"], t["network"], t["state"]) for t in made["targets"]] == [
            (channel, "x", "scheduled")]
        sandbox_id = made["id"]
        assert headers["Location"] == f"{POSTS}/{sandbox_id}"
        status, real, _ = await create(live, post_body(channel, after_s=3600))
        assert status == 201, real
        live_id = real["id"]

        # each key lists and reaches its own mode's post only
        assert await ids(test, POSTS) == [sandbox_id]
        assert await ids(live, POSTS) == [live_id]
        assert sorted(await ids(ada_person, POSTS)) == sorted([sandbox_id, live_id])
        for caller, own, other in ((test, sandbox_id, live_id), (live, live_id, sandbox_id)):
            status, got, _ = await caller.call("GET", f"{POSTS}/{own}")
            assert status == 200 and got["id"] == own
            status, problem, _ = await caller.call("GET", f"{POSTS}/{other}")
            assert status == 404 and other in problem["detail"], problem
        # another account's test key reaches none of it
        assert await ids(bob_test, POSTS) == []
        assert (await bob_test.call("GET", f"{POSTS}/{sandbox_id}"))[0] == 404
        # the module holds both, and marks only the test key's post
        context = app[PLUGIN_CONTEXT_KEY]
        marks = await context.database().fetch(
            "SELECT object_id, kind FROM api_sandbox WHERE account_id = ?", ada.person_id)
        assert [(r["object_id"], r["kind"]) for r in marks] == [
            (f"social:{sandbox_id}", "social")]
        for post_id in (sandbox_id, live_id):
            assert (await social(context).store.post(ada.person_id, post_id)).state \
                == "scheduled"
        assert fake.stats.requests == 0


async def test_a_sandbox_post_is_published_in_simulation_and_heard_in_test_mode(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    fake = FakeX(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    async with FakeNetworks([fake]) as networks, signed_in(
            tmp_path, smtp_server, "ada@example.org", plugins=settings(networks),
            webhooks=FAST) as (app, (ada_person, ada)), \
            Receiver() as live_rx, Receiver() as test_rx:
        channel = await x_channel(app, fake, ada.person_id)
        live = await key_of(ada_person, ada, SCOPES)
        test = await key_of(ada_person, ada, SCOPES, test=True)
        await subscribe(live, live_rx.url, [PUBLISHED_EVENT])
        await subscribe(test, test_rx.url, [PUBLISHED_EVENT])

        status, sandbox, _ = await create(test, post_body(channel, "Sandbox hello"))
        assert status == 201, sandbox
        done = await published(test, sandbox["id"])
        assert done["state"] == "published", done
        (target,) = done["targets"]
        assert target["state"] == "published" and target["error"] == ""
        assert target["remote_id"] == f"sandbox-{sandbox['id']}" and target["url"] == ""
        assert target["published_at"] is not None
        await test_rx.wait_for(1)
        await settled(app)
        # no request of any kind reached the network: no token, quota or publish call
        assert fake.stats.requests == 0 and fake.posts == []
        (heard,) = [json.loads(r.body) for r in test_rx.received]
        assert heard["type"] == PUBLISHED_EVENT and heard["test"] is True
        assert heard["data"]["post_id"] == sandbox["id"]
        assert heard["data"]["remote_id"] == f"sandbox-{sandbox['id']}"
        assert live_rx.received == []

        # a live key's post goes to the network for real, heard by live webhooks only
        status, real, _ = await create(live, post_body(channel, "Live hello"))
        assert status == 201, real
        done = await published(live, real["id"])
        assert done["state"] == "published", done
        (target,) = done["targets"]
        assert target["remote_id"] and not target["remote_id"].startswith("sandbox-")
        await live_rx.wait_for(1)
        await settled(app)
        assert fake.stats.requests > 0
        assert [p["text"] for p in fake.posts] == ["Live hello"], fake.posts
        (heard,) = [json.loads(r.body) for r in live_rx.received]
        assert heard["test"] is False and heard["data"]["post_id"] == real["id"]
        assert len(test_rx.received) == 1


async def test_a_sandbox_post_waits_for_its_channels_approvers(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    """Approval is the same workflow for a sandbox post: pending until approved."""
    fake = FakeX(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    async with FakeNetworks([fake]) as networks, signed_in(
            tmp_path, smtp_server, "ada@example.org", plugins=settings(networks)) as (
            app, (ada_person, ada)):
        channel = await x_channel(app, fake, ada.person_id,
                                  tiers=[[{"person": ada.person_id}]])
        test = await key_of(ada_person, ada, SCOPES, test=True)
        status, made, _ = await create(test, post_body(channel, after_s=3600))
        assert status == 201, made
        assert made["state"] == "pending_approval", made
        assert [t["state"] for t in made["targets"]] == ["pending_approval"]
        module = social(app[PLUGIN_CONTEXT_KEY])
        assert [t.job_id for t in (await module.store.post(
            ada.person_id, made["id"])).targets] == [""]
        assert fake.stats.requests == 0


async def test_a_sandbox_post_approved_is_published_in_simulation(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    """A sandbox post through its channel's approval workflow: pending, approved by the
    tier's approver (not its author), then published in simulation when due. The
    approval and the publishing are heard by test-mode webhooks only, and no request
    reaches the network."""
    fake = FakeX(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    async with FakeNetworks([fake]) as networks, signed_in(
            tmp_path, smtp_server, plugins=settings(networks), webhooks=FAST) as (
            app, (ada_person, ada), (_, bob)), \
            Receiver() as live_rx, Receiver() as test_rx:
        channel = await x_channel(app, fake, ada.person_id,
                                  tiers=[[{"person": bob.person_id}]])
        live = await key_of(ada_person, ada, SCOPES)
        test = await key_of(ada_person, ada, SCOPES, test=True)
        events = [APPROVED_EVENT, PUBLISHED_EVENT]
        await subscribe(live, live_rx.url, events)
        await subscribe(test, test_rx.url, events)
        status, made, _ = await create(test, post_body(channel, "Approved hello",
                                                       after_s=4.0))
        assert status == 201 and made["state"] == "pending_approval", made
        module = social(app[PLUGIN_CONTEXT_KEY])
        with pytest.raises(NotAllowedError):  # nobody approves their own post
            await module.approvals.decide(ada.person_id, made["id"], ada.person_id,
                                          approve=True)
        approved = await module.approvals.decide(ada.person_id, made["id"], bob.person_id,
                                                 approve=True)
        assert approved.state == "scheduled"
        done = await published(test, made["id"])
        assert done["state"] == "published", done
        (target,) = done["targets"]
        assert target["remote_id"] == f"sandbox-{made['id']}" and target["url"] == ""
        await test_rx.wait_for(2)
        await settled(app)
        assert fake.stats.requests == 0 and fake.posts == []
        heard = [json.loads(r.body) for r in test_rx.received]
        assert sorted(h["type"] for h in heard) == sorted(events)
        assert all(h["test"] is True and h["data"]["post_id"] == made["id"] for h in heard)
        assert live_rx.received == []


async def test_an_idempotency_key_replays_one_post(tmp_path: Path,
                                                  smtp_server: SmtpServer) -> None:
    fake = FakeX(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    async with FakeNetworks([fake]) as networks, signed_in(
            tmp_path, smtp_server, "ada@example.org", plugins=settings(networks)) as (
            app, (ada_person, ada)):
        channel = await x_channel(app, fake, ada.person_id)
        test = await key_of(ada_person, ada, SCOPES, test=True)
        body = post_body(channel, after_s=3600)
        status, first, headers = await create(test, body, "post-1")
        assert status == 201 and "Idempotent-Replayed" not in headers, first
        status, again, headers = await create(test, body, "post-1")
        assert status == 201 and headers["Idempotent-Replayed"] == "true"
        assert again == first
        assert await ids(test, POSTS) == [first["id"]]
        # the same key for another request is refused, and makes nothing
        status, problem, _ = await create(test, {**body, "text": "Other"}, "post-1")
        assert status == 422 and "another request" in problem["detail"], problem
        rows = await social(app[PLUGIN_CONTEXT_KEY]).store.posts(ada.person_id)
        assert [p.post_id for p in rows] == [first["id"]]
        # the same person's live key with that key and body makes a live post
        live = await key_of(ada_person, ada, SCOPES)
        status, real, headers = await create(live, body, "post-1")
        assert status == 201 and "Idempotent-Replayed" not in headers, real
        assert real["id"] != first["id"]
        assert await ids(live, POSTS) == [real["id"]]
        assert await ids(test, POSTS) == [first["id"]]


async def test_bad_posts_are_refused_with_a_clear_message(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    fake = FakeX(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    async with FakeNetworks([fake]) as networks, signed_in(
            tmp_path, smtp_server, "ada@example.org", plugins=settings(networks)) as (
            app, (ada_person, ada)):
        channel = await x_channel(app, fake, ada.person_id)
        test = await key_of(ada_person, ada, SCOPES, test=True)
        # no publish time: a scheduled post needs one
        body = post_body(channel)
        del body["publish_at"]
        status, problem, _ = await create(test, body)
        assert status == 422 and "publish_at" in json.dumps(problem), problem
        # a time in the past
        status, problem, _ = await create(test, post_body(channel, after_s=-3600))
        assert status == 400 and "past" in problem["detail"], problem
        # a channel the account has not connected
        status, problem, _ = await create(test, post_body("ch-nowhere", after_s=3600))
        assert status == 404 and "ch-nowhere" in problem["detail"], problem
        # a text the network refuses, named by channel and field
        status, problem, _ = await create(test, post_body(channel, "x" * 400, after_s=3600))
        assert status == 422 and problem["problems"], problem
        assert problem["problems"][0]["channel_id"] == channel
        assert problem["problems"][0]["field"] == "text"
        # the id is the server's: naming one is an unknown field
        status, problem, _ = await create(test, {**post_body(channel, after_s=3600),
                                                 "post_id": "mine"})
        assert status == 422 and "post_id" in json.dumps(problem), problem
        # a key without the module's scope for writing posts is refused
        reader = await key_of(ada_person, ada, ["social.read"], test=True)
        status, problem, _ = await create(reader, post_body(channel, after_s=3600))
        assert status == 403 and "social.compose" in json.dumps(problem), problem
        assert await ids(test, POSTS) == []
        assert await social(app[PLUGIN_CONTEXT_KEY]).store.posts(ada.person_id) == []
        assert fake.stats.requests == 0


async def test_the_docs_tell_developers_about_sandbox_posts() -> None:
    """The portal's webhook guide and the docs name sandbox posts and their fake id."""
    guides.render.cache_clear()
    webhooks = guides.render("webhooks")
    assert "POST /api/v1/social-posts" in webhooks and PUBLISHED_EVENT in webhooks
    docs = Path(__file__).resolve().parent.parent / "docs"
    social_md = (docs / "social.md").read_text()
    assert "## Public API (`/api/v1`) and test mode" in social_md
    assert "`sandbox-<post id>`" in social_md
    public_api = (docs / "public-api.md").read_text()
    assert "| `POST /api/v1/social-posts` `NewSocialPost` |" in public_api
    assert "`post_id` of\n`social.post_published`" in public_api
