"""Per-channel rights over HTTP: a person who may only view a channel puts nothing on
it; one who schedules for approval only never reaches the schedule unapproved; people
a channel does not name keep their role's rights."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from social_helpers import InTestNetwork, connect, social_app, who

pytestmark = pytest.mark.timeout(120)
OWNER = who("acc", "p_dee", "owner")
#: The people of the organisation "acc" (a channel's rights name only them).
MEMBERS = {**{("acc", p): "member" for p in ("p_ada", "p_bo", "p_cy")}, ("acc", "p_dee"): "owner"}


def as_(person: str) -> dict[str, str]:
    return who("acc", person, "editor")


def soon(hours: float = 24) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(hours=hours)).isoformat()


@contextlib.asynccontextmanager
async def x_and_bluesky(tmp_path: Path, db_url: str) -> AsyncIterator[tuple[Any, str, str]]:
    """The social app with the account's members, and an X and a Bluesky channel Dee
    connected: ``(client, x_id, bsky_id)``."""
    x, bsky = InTestNetwork("x"), InTestNetwork("bluesky")
    async with social_app(tmp_path, db_url, x, bsky, memberships=MEMBERS) as (
            client, _context):
        x_id = (await connect(client, x, "acc", "p_dee"))["channel_id"]
        bsky_id = (await connect(client, bsky, "acc", "p_dee"))["channel_id"]
        yield client, x_id, bsky_id


def test_viewers_put_nothing_on_a_channel_and_approval_only_posts_wait_for_approvers(
        tmp_path: Path, db_url: str) -> None:
    async def go() -> None:
        async with x_and_bluesky(tmp_path, db_url) as (client, x_id, bsky_id):
            rights = f"/api/social/channels/{x_id}/rights"

            async def compose(person: str, channel: str, text: str) -> Any:
                return await client.post("/api/social/posts", headers=as_(person), json={
                    "text": text, "publish_at": soon(), "targets": [{"channel_id": channel}]})

            ada = await compose("p_ada", x_id, "Release day")
            assert ada.status == 201
            ada_post = f"/api/social/posts/{(await ada.json())['post_id']}"

            assert (await client.put(rights, headers=as_("p_ada"), json={
                "rights": [{"person": "p_ada", "access": "publish"}]})).status == 403
            twice = await client.put(rights, headers=OWNER, json={"rights": [
                {"person": "p_bo", "access": "view"}, {"person": "p_bo", "access": "publish"}]})
            assert twice.status == 400 and "p_bo" in (await twice.json())["error"]
            # review 153: only the account's people can be named
            stranger = await client.put(rights, headers=OWNER, json={"rights": [
                {"person": "p_bo", "access": "view"}, {"person": "p_zed", "access": "view"}]})
            assert stranger.status == 422 and "p_zed" in (await stranger.json())["error"]
            assert (await (await client.get(rights, headers=OWNER)).json())["rights"] == []
            named = [{"person": "p_bo", "access": "view"},
                     {"person": "p_cy", "access": "approval"}]
            saved = await client.put(rights, headers=OWNER, json={"rights": named})
            assert saved.status == 200, await saved.text()
            read = await client.get(rights, headers=OWNER)
            assert (await read.json())["rights"] == named

            # a viewer of X: nothing new on it, no edit, delete or retry of what is there
            refused = await compose("p_bo", x_id, "My own take")
            assert refused.status == 403
            assert "you may only view channel(s)" in (await refused.json())["error"]
            assert (await compose("p_bo", bsky_id, "Elsewhere is fine")).status == 201
            both = await client.post("/api/social/posts", headers=as_("p_bo"), json={
                "text": "Both", "targets": [{"channel_id": bsky_id}, {"channel_id": x_id}]})
            assert both.status == 403
            assert (await client.patch(ada_post, headers=as_("p_bo"),
                                       json={"text": "Hijacked"})).status == 403
            assert (await client.delete(ada_post, headers=as_("p_bo"))).status == 403
            kept = await (await client.get(ada_post, headers=as_("p_ada"))).json()
            assert (kept["text"], kept["state"], kept["version"]) == ("Release day", "draft", 1)

            # a person the channel does not name keeps the editor's right to schedule
            direct = await client.post(f"{ada_post}/submit", headers=as_("p_ada"), json={})
            assert (await direct.json())["state"] == "scheduled"

            # approval only: no workflow on X refuses the submission and says why
            cy = await compose("p_cy", x_id, "Tour dates")
            assert cy.status == 201
            cy_post = f"/api/social/posts/{(await cy.json())['post_id']}"
            held = await client.post(f"{cy_post}/submit", headers=as_("p_cy"), json={})
            assert held.status == 409
            assert "need approval" in (await held.json())["error"]
            assert (await (await client.get(cy_post, headers=as_("p_cy"))).json()
                    )["state"] == "draft"
            # nor can an edit of her own words put Ada's scheduled post out unapproved
            rewrite = await client.patch(ada_post, headers=as_("p_cy"),
                                         json={"text": "Release day, new artwork"})
            assert rewrite.status == 409
            assert (await (await client.get(ada_post, headers=as_("p_ada"))).json()
                    )["text"] == "Release day"
            workflow = await client.put(f"/api/social/channels/{x_id}/approvals",
                                        headers=OWNER, json={"tiers": [[{"person": "p_dee"}]]})
            assert workflow.status == 200
            pending = await client.post(f"{cy_post}/submit", headers=as_("p_cy"), json={})
            assert (await pending.json())["state"] == "pending_approval"
            approved = await client.post(f"{cy_post}/approve", headers=as_("p_dee"), json={})
            assert (await approved.json())["state"] == "scheduled"

            # the owner lifts the limits: Bo composes on X again
            cleared = await client.put(rights, headers=OWNER, json={"rights": []})
            assert (await cleared.json())["rights"] == []
            assert (await compose("p_bo", x_id, "Back on X")).status == 201

    asyncio.run(go())


def test_each_member_sees_their_own_rights_on_each_channel_and_nobody_elses(
        tmp_path: Path, db_url: str) -> None:
    async def go() -> None:
        async with x_and_bluesky(tmp_path, db_url) as (client, x_id, bsky_id):
            named = [{"person": "p_ada", "access": "publish"},
                     {"person": "p_bo", "access": "view"},
                     {"person": "p_cy", "access": "approval"}]
            saved = await client.put(f"/api/social/channels/{x_id}/rights", headers=OWNER,
                                     json={"rights": named})
            assert saved.status == 200, await saved.text()

            async def mine(headers: dict[str, str]) -> dict[str, Any]:
                listed = await client.get("/api/social/channels", headers=headers)
                assert listed.status == 200, await listed.text()
                return {c["channel_id"]: c["my_rights"] for c in await listed.json()}

            unnamed = {"access": "publish", "named": False, "manage": False}
            assert await mine(as_("p_cy")) == {
                x_id: {"access": "approval", "named": True, "manage": False},
                bsky_id: unnamed}
            assert await mine(as_("p_bo")) == {
                x_id: {"access": "view", "named": True, "manage": False}, bsky_id: unnamed}
            # the role caps the channel's right: a viewer named to publish only views
            assert await mine(who("acc", "p_ada", "viewer")) == {
                x_id: {"access": "view", "named": True, "manage": False},
                bsky_id: {"access": "view", "named": False, "manage": False}}
            assert await mine(OWNER) == {
                x_id: {"access": "publish", "named": False, "manage": True},
                bsky_id: {"access": "publish", "named": False, "manage": True}}
            one = await client.get(f"/api/social/channels/{x_id}", headers=as_("p_cy"))
            assert (await one.json())["my_rights"] == {
                "access": "approval", "named": True, "manage": False}

            # the channel's grants: all of them to who manages it, one's own to the rest
            grants = f"/api/social/channels/{x_id}/rights"
            for person, role in (("p_cy", "editor"), ("p_bo", "viewer")):
                read = await client.get(grants, headers=who("acc", person, role))
                assert read.status == 200
                assert (await read.json())["rights"] == [
                    r for r in named if r["person"] == person]
            assert (await (await client.get(f"/api/social/channels/{bsky_id}/rights",
                                            headers=as_("p_cy"))).json())["rights"] == []
            assert (await (await client.get(grants, headers=OWNER)).json())["rights"] == named

    asyncio.run(go())
