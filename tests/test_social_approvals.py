"""Approvals: tiers per channel naming people, teams and roles; nobody approves their own
post; edits send an approved post back; expiry tells the author; every step audited."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from pathlib import Path
from typing import Any

import pytest
from accounts_helpers import Person, accounts_server
from smtp_server import SmtpServer
from social_helpers import InTestNetwork, connect, social_app, who

from business.social.errors import ConflictError
from business.social.services import services
from dawserver.keys import ACCOUNTS, PLUGIN_CONTEXT_KEY

pytestmark = pytest.mark.timeout(120)
#: Who is in which organisation or team (the account "acc" is an organisation).
MEMBERS = {("acc", "p_ada"): "member", ("acc", "p_bo"): "member",
           ("acc", "p_dee"): "owner", ("acc", "p_cy"): "viewer",
           ("acc", "p_fay"): "approver", ("t_review", "p_eve"): "member"}


def as_(person: str, role: str = "editor") -> dict[str, str]:
    return who("acc", person, role)


def soon(hours: float = 24) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(hours=hours)).isoformat()


async def _setup(client: Any, tiers: list[list[dict[str, str]]]) -> str:
    channel = (await connect(client, client.network, "acc", "p_dee"))["channel_id"]
    saved = await client.put(f"/api/social/channels/{channel}/approvals",
                             headers=as_("p_dee", "owner"), json={"tiers": tiers})
    assert saved.status == 200, await saved.text()
    return channel


async def _submitted(client: Any, channel: str, *, publish_at: str | None = None) -> str:
    post = await (await client.post("/api/social/posts", headers=as_("p_ada"), json={
        "text": "Listening party tonight", "publish_at": publish_at or soon(),
        "targets": [{"channel_id": channel}]})).json()
    submitted = await client.post(f"/api/social/posts/{post['post_id']}/submit",
                                  headers=as_("p_ada"), json={})
    assert (await submitted.json())["state"] == "pending_approval"
    return post["post_id"]


def _app(tmp_path: Path, db_url: str) -> Any:
    network = InTestNetwork("x")
    manager = social_app(tmp_path, db_url, network, memberships=MEMBERS)

    class Wrapped:
        async def __aenter__(self) -> Any:
            client, context = await manager.__aenter__()
            client.network = network
            return client, context

        async def __aexit__(self, *exc: object) -> None:
            await manager.__aexit__(*exc)

    return Wrapped()


async def _events(context: Any) -> list[str]:
    rows = await context.database().fetch(
        "SELECT name FROM events_outbox WHERE account_id = ? ORDER BY created_at, id", "acc")
    return [r["name"] for r in rows]


def test_two_tiers_approve_in_turn_and_nobody_approves_their_own_post(
        tmp_path: Path, db_url: str) -> None:
    async def go() -> None:
        async with _app(tmp_path, db_url) as (client, context):
            channel = await _setup(client, [[{"person": "p_bo"}], [{"role": "admin"}]])
            post_id = await _submitted(client, channel)
            path = f"/api/social/posts/{post_id}"

            async def decide(person: str, verb: str = "approve", **body: Any) -> Any:
                return await client.post(f"{path}/{verb}", headers=as_(person), json=body)

            own = await decide("p_ada")
            assert own.status == 403 and "you wrote this post" in (await own.json())["error"]
            assert (await decide("p_cy")).status == 403       # no tier names a viewer
            assert (await decide("p_dee")).status == 403      # tier 2 is not open yet
            first = await (await decide("p_bo", note="nice")).json()
            assert (first["state"], first["targets"][0]["approval_tier"]) == (
                "pending_approval", 2)
            assert (await decide("p_bo")).status == 403       # one tier per person
            done = await (await decide("p_dee")).json()       # an owner holds "admin"
            assert done["state"] == "scheduled"
            assert done["targets"][0]["state"] == "scheduled"
            assert (await decide("p_dee")).status == 409      # nothing left to approve
            assert await _events(context) == ["social.post_approved"]
            audit = await (await client.get(f"{path}/audit", headers=as_("p_cy", "viewer"))
                           ).json()
            steps = [(a["action"], a["actor"]) for a in audit]
            assert steps == [("post.created", "p_ada"), ("post.submitted", "p_ada"),
                             ("approval.approved", "p_bo"), ("approval.approved", "p_dee"),
                             ("post.approved", "p_dee")]
            assert audit[2]["detail"]["note"] == "nice"

            # an edit of the content sends it back to the first tier; a new time does not
            moved = await (await client.patch(path, headers=as_("p_ada"),
                                              json={"publish_at": soon(30)})).json()
            assert moved["state"] == "scheduled"
            edited = await (await client.patch(path, headers=as_("p_ada"),
                                               json={"text": "Party moved to Friday"})).json()
            assert edited["state"] == "pending_approval"
            assert edited["targets"][0]["approval_tier"] == 1
            again = await (await decide("p_bo")).json()  # a new version: decide afresh
            assert again["targets"][0]["approval_tier"] == 2
            other = await client.post(f"{path}/approve", headers=who("eve", "p_bo"), json={})
            assert other.status == 404

    asyncio.run(go())


def test_a_new_time_does_not_let_one_person_approve_two_tiers_nor_editors_approve(
        tmp_path: Path, db_url: str) -> None:
    async def go() -> None:
        async with _app(tmp_path, db_url) as (client, _context):
            channel = await _setup(client, [[{"role": "member"}],
                                            [{"role": "member"}, {"team": "t_review"}]])
            post_id = await _submitted(client, channel)
            path = f"/api/social/posts/{post_id}"

            async def decide(person: str) -> Any:
                return await client.post(f"{path}/approve", headers=as_(person), json={})

            first = await (await decide("p_bo")).json()
            assert first["targets"][0]["approval_tier"] == 2
            moved = await (await client.patch(path, headers=as_("p_ada"),
                                              json={"publish_at": soon(30)})).json()
            assert (moved["state"], moved["targets"][0]["approval_tier"]) == (
                "pending_approval", 2)
            assert moved["version"] > first["version"]
            twice = await decide("p_bo")       # tier 1 was his, whatever the version
            assert twice.status == 403, await twice.text()
            assert "earlier tier" in (await twice.json())["error"]
            done = await (await decide("p_dee")).json()
            assert done["state"] == "scheduled"

            # whoever rewrote the post does not approve it, at any tier
            edited = await (await client.patch(path, headers=as_("p_dee"),
                                               json={"text": "Party moved to Friday"})).json()
            assert (edited["state"], edited["targets"][0]["approval_tier"]) == (
                "pending_approval", 1)
            own = await decide("p_dee")
            assert own.status == 403
            assert "you edited this post's content" in (await own.json())["error"]
            assert (await decide("p_bo")).status == 200
            assert (await decide("p_dee")).status == 403
            assert (await (await decide("p_eve")).json())["state"] == "scheduled"

    asyncio.run(go())


def test_a_shorter_workflow_moves_on_the_posts_it_has_no_tier_left_for(
        tmp_path: Path, db_url: str) -> None:
    async def go() -> None:
        async with _app(tmp_path, db_url) as (client, context):
            channel = await _setup(client, [[{"person": "p_bo"}], [{"person": "p_dee"}],
                                            [{"person": "p_cy"}]])
            climbed, fresh = await _submitted(client, channel), await _submitted(client, channel)
            first = await client.post(f"/api/social/posts/{climbed}/approve",
                                      headers=as_("p_bo"), json={})
            assert (await first.json())["targets"][0]["approval_tier"] == 2
            workflow = f"/api/social/channels/{channel}/approvals"

            one = await client.put(workflow, headers=as_("p_dee", "owner"),
                                   json={"tiers": [[{"person": "p_bo"}]]})
            assert one.status == 200
            done = await (await client.get(f"/api/social/posts/{climbed}",
                                           headers=as_("p_ada"))).json()
            assert (done["state"], done["targets"][0]["state"]) == ("scheduled", "scheduled")
            waiting = await (await client.get(f"/api/social/posts/{fresh}",
                                              headers=as_("p_ada"))).json()
            assert waiting["state"] == "pending_approval"     # tier 1 is still there
            assert await _events(context) == ["social.post_approved"]
            audit = await (await client.get(f"/api/social/posts/{climbed}/audit",
                                            headers=as_("p_ada"))).json()
            assert ("approval.workflow_changed", "p_dee") in [
                (a["action"], a["actor"]) for a in audit]

            removed = await client.put(workflow, headers=as_("p_dee", "owner"),
                                       json={"tiers": []})
            assert removed.status == 200
            late = await (await client.get(f"/api/social/posts/{fresh}",
                                           headers=as_("p_ada"))).json()
            assert late["state"] == "scheduled"
            nothing = await client.post(f"/api/social/posts/{fresh}/approve",
                                        headers=as_("p_bo"), json={})
            assert nothing.status == 409

    asyncio.run(go())


def test_removing_a_workflow_sends_approval_only_posts_back_to_draft(
        tmp_path: Path, db_url: str) -> None:
    """Review 153: a post written by someone the channel lets post only with approval
    does not reach the schedule unapproved when the workflow is removed: it goes back to
    draft and its author is told why; another author's post is scheduled; a post whose
    time passed stays pending for the expiry sweep."""
    async def go() -> None:
        async with _app(tmp_path, db_url) as (client, context):
            channel = await _setup(client, [[{"person": "p_dee"}]])
            limited = await client.put(f"/api/social/channels/{channel}/rights",
                                       headers=as_("p_dee", "owner"),
                                       json={"rights": [{"person": "p_ada",
                                                         "access": "approval"}]})
            assert limited.status == 200
            held = await _submitted(client, channel)                  # by p_ada
            post = await (await client.post("/api/social/posts", headers=as_("p_bo"), json={
                "text": "free to go", "publish_at": soon(),
                "targets": [{"channel_id": channel}]})).json()
            free = post["post_id"]
            await client.post(f"/api/social/posts/{free}/submit", headers=as_("p_bo"),
                              json={})
            post = await (await client.post("/api/social/posts", headers=as_("p_bo"), json={
                "text": "too late", "publish_at": soon(),
                "targets": [{"channel_id": channel}]})).json()
            late = post["post_id"]
            await client.post(f"/api/social/posts/{late}/submit", headers=as_("p_bo"),
                              json={})
            await context.database().execute(
                "UPDATE social_posts SET publish_at = ? WHERE post_id = ?",
                time.time() - 60, late)

            removed = await client.put(f"/api/social/channels/{channel}/approvals",
                                       headers=as_("p_dee", "owner"), json={"tiers": []})
            assert removed.status == 200
            states = {}
            for post_id in (held, free, late):
                states[post_id] = (await (await client.get(
                    f"/api/social/posts/{post_id}", headers=as_("p_dee"))).json())["state"]
            assert states == {held: "draft", free: "scheduled", late: "pending_approval"}
            rows = await context.database().fetch(
                "SELECT payload FROM events_outbox WHERE name = 'social.post_rejected'")
            [told] = [r["payload"] for r in rows]
            assert held in told and "only with approval" in told

    asyncio.run(go())


def test_decisions_and_workflow_changes_never_write_over_each_other(
        tmp_path: Path, db_url: str) -> None:
    """Review 153: a decision made on a copy read before another decision, or before the
    channel's workflow changed, is refused (409) instead of writing over it: a rejection
    is not turned into a schedule, nor a post left pending at a tier its channel lost."""
    async def go() -> None:
        async with _app(tmp_path, db_url) as (client, context):
            channel = await _setup(client, [[{"person": "p_bo"}, {"team": "t_review"}],
                                            [{"person": "p_dee"}]])
            approvals = services(context).approvals
            load = approvals._load

            def stale(copy: Any) -> None:
                async def loaded(account_id: str, post_id: str) -> Any:
                    approvals._load = load       # once: as if read before the other write
                    return copy
                approvals._load = loaded

            # p_bo read a post to two channels; p_eve rejected it on the other channel;
            # p_bo's approval must not put it back to pending (nor schedule it)
            client.network.account = "remote-2"
            other = await _setup(client, [[{"team": "t_review"}]])
            post = await (await client.post("/api/social/posts", headers=as_("p_ada"), json={
                "text": "Two channels", "publish_at": soon(),
                "targets": [{"channel_id": channel}, {"channel_id": other}]})).json()
            rejected = post["post_id"]
            await client.post(f"/api/social/posts/{rejected}/submit", headers=as_("p_ada"),
                              json={})
            copy = await load("acc", rejected)
            no = await client.post(f"/api/social/posts/{rejected}/reject",
                                   headers=as_("p_eve"),
                                   json={"note": "no", "channel_ids": [other]})
            assert (await no.json())["state"] == "draft"
            stale(copy)
            with pytest.raises(ConflictError, match="changed meanwhile"):
                await approvals.decide("acc", rejected, "p_bo", approve=True,
                                       channel_ids=[channel])
            got = await (await client.get(f"/api/social/posts/{rejected}",
                                          headers=as_("p_ada"))).json()
            assert got["state"] == "draft"

            # p_bo read the post; the workflow lost its second tier; p_bo's approval of
            # the first tier, made for two tiers, is refused, then made again
            climbing = await _submitted(client, channel)
            copy = await load("acc", climbing)
            cut = await client.put(f"/api/social/channels/{channel}/approvals",
                                   headers=as_("p_dee", "owner"),
                                   json={"tiers": [[{"person": "p_bo"}]]})
            assert cut.status == 200
            stale(copy)
            with pytest.raises(ConflictError, match="workflow or rights changed meanwhile"):
                await approvals.decide("acc", climbing, "p_bo", approve=True)
            again = await client.post(f"/api/social/posts/{climbing}/approve",
                                      headers=as_("p_bo"), json={})
            assert (await again.json())["state"] == "scheduled"

    asyncio.run(go())


def test_two_workflows_removed_at_once_both_move_the_post_on(
        tmp_path: Path, db_url: str) -> None:
    """Review 154: a post on two channels whose workflows are removed at once (each
    change holds only its own channel): the second change read the post before the
    first moved it on, its write fails, and it reads the post again and moves its own
    target on instead of leaving it pending past the last tier."""
    async def go() -> None:
        async with _app(tmp_path, db_url) as (client, context):
            channel = await _setup(client, [[{"person": "p_bo"}]])
            client.network.account = "remote-2"
            other = await _setup(client, [[{"team": "t_review"}]])
            post = await (await client.post("/api/social/posts", headers=as_("p_ada"), json={
                "text": "Two channels", "publish_at": soon(),
                "targets": [{"channel_id": channel}, {"channel_id": other}]})).json()
            post_id = post["post_id"]
            await client.post(f"/api/social/posts/{post_id}/submit", headers=as_("p_ada"),
                              json={})
            approvals = services(context).approvals
            store = approvals.store
            stale = await store.post("acc", post_id)
            assert stale is not None and stale.state == "pending_approval"
            assert await approvals.set_workflow("acc", channel, [], "p_dee") == []
            listed = store.posts

            async def read_before(*args: Any, **kwargs: Any) -> Any:
                store.posts = listed             # once: as read before the first change
                return [stale]

            store.posts = read_before
            try:
                assert await approvals.set_workflow("acc", other, [], "p_dee") == [post_id]
            finally:
                store.posts = listed
            got = await (await client.get(f"/api/social/posts/{post_id}",
                                          headers=as_("p_ada"))).json()
            assert got["state"] == "scheduled"
            assert {t["state"] for t in got["targets"]} == {"scheduled"}

    asyncio.run(go())


def test_a_submission_made_from_a_workflow_that_changed_meanwhile_is_refused(
        tmp_path: Path, db_url: str) -> None:
    """Review 153: a submission that read the channel's workflow before an owner removed
    it is refused (409) rather than left pending on a channel with no tier to approve
    it; submitted again, it goes where the new workflow sends it."""
    async def go() -> None:
        async with _app(tmp_path, db_url) as (client, context):
            channel = await _setup(client, [[{"person": "p_bo"}]])
            post = await (await client.post("/api/social/posts", headers=as_("p_ada"), json={
                "text": "Listening party tonight", "publish_at": soon(),
                "targets": [{"channel_id": channel}]})).json()
            posts = services(context).posts
            read = posts._channels

            async def then_removed(*args: Any) -> Any:
                found = await read(*args)
                posts._channels = read                  # once
                removed = await client.put(f"/api/social/channels/{channel}/approvals",
                                           headers=as_("p_dee", "owner"), json={"tiers": []})
                assert removed.status == 200
                return found
            posts._channels = then_removed
            with pytest.raises(ConflictError, match="changed meanwhile"):
                await posts.submit("acc", post["post_id"], "p_ada")
            again = await client.post(f"/api/social/posts/{post['post_id']}/submit",
                                      headers=as_("p_ada"), json={})
            assert (await again.json())["state"] == "scheduled"

    asyncio.run(go())


def test_a_workflow_change_that_fails_changes_nothing(tmp_path: Path) -> None:
    """Review 153: the workflow and the posts it moves on are written in one transaction,
    so a failure part way leaves the old workflow and its posts as they were."""
    async def go() -> None:
        async with _app(tmp_path, f"sqlite://{tmp_path / 's.db'}") as (client, context):
            channel = await _setup(client, [[{"person": "p_bo"}]])
            post_id = await _submitted(client, channel)
            approvals = services(context).approvals
            publish = approvals.publish

            async def broken(*args: Any) -> None:
                raise RuntimeError("event bus down")
            approvals.publish = broken
            failed = await client.put(f"/api/social/channels/{channel}/approvals",
                                      headers=as_("p_dee", "owner"), json={"tiers": []})
            assert failed.status == 500
            approvals.publish = publish
            kept = await (await client.get(f"/api/social/channels/{channel}/approvals",
                                           headers=as_("p_dee", "owner"))).json()
            assert kept["tiers"] == [[{"person": "p_bo"}]]
            got = await (await client.get(f"/api/social/posts/{post_id}",
                                          headers=as_("p_ada"))).json()
            assert (got["state"], got["targets"][0]["approval_tier"]) == (
                "pending_approval", 1)

    asyncio.run(go())


def test_without_accounts_a_person_a_token_names_may_approve(tmp_path: Path) -> None:
    """A server without accounts has no memberships to check a named approver against:
    the workflow takes any person a token names, and that person approves (a server with
    accounts refuses a stranger: see the team test)."""
    async def go() -> None:
        async with _app(tmp_path, f"sqlite://{tmp_path / 's.db'}") as (client, context):
            context.membership = None  # as on a server without accounts
            channel = await _setup(client, [[{"person": "p_zed"}]])
            post_id = await _submitted(client, channel)
            approved = await client.post(f"/api/social/posts/{post_id}/approve",
                                         headers=as_("p_zed"), json={})
            assert (await approved.json())["state"] == "scheduled"

    asyncio.run(go())


def test_a_team_approves_and_a_rejection_sends_the_post_back(tmp_path: Path) -> None:
    async def go() -> None:
        async with _app(tmp_path, f"sqlite://{tmp_path / 's.db'}") as (client, context):
            channel = await _setup(client, [[{"team": "t_review"}, {"person": "p_cy"}]])
            post_id = await _submitted(client, channel)
            path = f"/api/social/posts/{post_id}"
            rejected = await client.post(f"{path}/reject", headers=as_("p_eve"),
                                         json={"note": "wrong date"})
            assert (await rejected.json())["state"] == "draft"
            assert await _events(context) == ["social.post_rejected"]
            await client.post(f"{path}/submit", headers=as_("p_ada"), json={})
            approved = await client.post(f"{path}/approve", headers=as_("p_eve"), json={})
            assert (await approved.json())["state"] == "scheduled"
            too_many = await client.put(f"/api/social/channels/{channel}/approvals",
                                        headers=as_("p_dee", "owner"),
                                        json={"tiers": [[{"person": "p_bo"}]] * 4})
            assert too_many.status == 422
            # a person outside the account could never reach a post to approve it
            stranger = await client.put(f"/api/social/channels/{channel}/approvals",
                                        headers=as_("p_dee", "owner"), json={"tiers": [
                                            [{"person": "p_bo"}],
                                            [{"person": "p_zed"}, {"role": "owner"}]]})
            assert stranger.status == 422
            assert "['p_zed'] are not people of this account" in (
                await stranger.json())["error"]
            kept = await (await client.get(f"/api/social/channels/{channel}/approvals",
                                           headers=as_("p_dee", "owner"))).json()
            assert kept["tiers"] == [[{"team": "t_review"}, {"person": "p_cy"}]], kept
            two_kinds = await client.put(f"/api/social/channels/{channel}/approvals",
                                         headers=as_("p_dee", "owner"),
                                         json={"tiers": [[{"person": "p_bo", "role": "x"}]]})
            assert two_kinds.status == 400
            no_workflow = await client.put(f"/api/social/channels/{channel}/approvals",
                                           headers=as_("p_dee", "owner"), json={"tiers": []})
            assert no_workflow.status == 200
            post = await (await client.post("/api/social/posts", headers=as_("p_ada"), json={
                "text": "straight out", "targets": [{"channel_id": channel}]})).json()
            direct = await client.post(f"/api/social/posts/{post['post_id']}/submit",
                                       headers=as_("p_ada"), json={})
            assert (await direct.json())["state"] == "approved"   # no time yet: held

    asyncio.run(go())


def test_the_declared_approver_role_reads_and_approves_and_nothing_else(
        tmp_path: Path) -> None:
    async def go() -> None:
        async with _app(tmp_path, f"sqlite://{tmp_path / 's.db'}") as (client, _):
            channel = await _setup(client, [[{"role": "approver"}]])
            post_id = await _submitted(client, channel)
            fay = as_("p_fay", "approver")
            assert (await client.get("/api/social/posts", headers=fay)).status == 200
            # no other role is an approver: not a member, not the organisation's owner
            for person, role in (("p_bo", "editor"), ("p_dee", "owner")):
                refused = await client.post(f"/api/social/posts/{post_id}/approve",
                                            headers=as_(person, role), json={})
                assert refused.status == 403, person
            approved = await client.post(f"/api/social/posts/{post_id}/approve",
                                         headers=fay, json={})
            assert (await approved.json())["state"] == "scheduled"
            # the role holds nothing else: it writes no post and sets up no channel
            wrote = await client.post("/api/social/posts", headers=fay, json={
                "text": "mine", "targets": [{"channel_id": channel}]})
            assert wrote.status == 403 and "social.compose" in (await wrote.json())["error"]
            slots = await client.put(f"/api/social/channels/{channel}/approvals",
                                     headers=fay, json={"tiers": []})
            assert slots.status == 403

    asyncio.run(go())


@pytest.mark.asyncio
async def test_an_organisation_gives_the_declared_approver_role_over_http(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with accounts_server(tmp_path, smtp_server) as (app, config):
        ada = Person(config.base_url, smtp_server, "ada@example.org")
        bo = Person(config.base_url, smtp_server, "bo@example.org")
        try:
            await ada.sign_up_and_in("Ada")
            await bo.sign_up_and_in("Bo")
            _, org, _ = await ada.call("POST", "/accounts", {"name": "Ada Label"})
            await app[ACCOUNTS].admin_set_member(org["id"], bo.id, "member")
            member = f"/accounts/{org['id']}/members/{bo.id}"
            status, body, _ = await ada.call("PUT", member, {"role": "finance"})
            assert status == 409 and "approver" in body["error"]  # declared roles listed
            status, body, _ = await ada.call("PUT", member, {"role": "approver"})
            assert status == 200, body
            assert await app[PLUGIN_CONTEXT_KEY].role_in(org["id"], bo.id) == "approver"
            # acting for the organisation, the approver reads its posts but opens no project
            status, _, _ = await bo.call("GET", f"/api/social/posts?account={org['id']}")
            assert status == 200
            status, _, _ = await bo.call("POST", f"/accounts/{org['id']}/projects",
                                         {"name": "x"})
            assert status == 403
        finally:
            await ada.close()
            await bo.close()


def test_posts_not_approved_in_time_expire_and_the_author_is_told(tmp_path: Path,
                                                                 db_url: str) -> None:
    async def go() -> None:
        async with _app(tmp_path, db_url) as (client, context):
            channel = await _setup(client, [[{"person": "p_bo"}]])
            due_soon = await _submitted(client, channel, publish_at=soon(1))
            far = await _submitted(client, channel, publish_at=soon(24 * 200))
            approvals = services(context).approvals
            assert await approvals.expire_due() == 0
            approvals.clock = lambda: time.time() + 2 * 3600        # past the first's time
            assert await approvals.expire_due() == 1
            approvals.clock = lambda: time.time() + 91 * 86_400     # pending over 90 days
            assert await approvals.expire_due() == 1
            states = {}
            for post_id in (due_soon, far):
                states[post_id] = (await (await client.get(
                    f"/api/social/posts/{post_id}", headers=as_("p_ada"))).json())["state"]
            assert states == {due_soon: "expired", far: "expired"}
            rows = await context.database().fetch(
                "SELECT payload FROM events_outbox WHERE name = 'social.post_expired'")
            reasons = sorted(r["payload"] for r in rows)
            assert len(reasons) == 2
            assert any("publish time" in r for r in reasons)
            assert any("90 days" in r for r in reasons)
            assert all("p_ada" in r for r in reasons)                # the author
            late = await client.post(f"/api/social/posts/{far}/approve",
                                     headers=as_("p_bo"), json={})
            assert late.status == 409
            redo = await client.patch(f"/api/social/posts/{far}", headers=as_("p_ada"),
                                      json={"text": "Try again"})
            assert (await redo.json())["state"] == "draft"

    asyncio.run(go())


def test_an_approval_after_the_publish_time_expires_the_post_and_sends_nothing(
        tmp_path: Path, db_url: str) -> None:
    """An approver deciding after the post's publish time, before the expiry sweep's
    turn, gets 409 and the post expires at once (its author told): it never goes out
    late."""
    async def go() -> None:
        async with _app(tmp_path, db_url) as (client, context):
            channel = await _setup(client, [[{"person": "p_bo"}]])
            post_id = await _submitted(client, channel, publish_at=soon(1))
            approvals = services(context).approvals
            approvals.clock = lambda: time.time() + 2 * 3600  # past its time, no sweep
            late = await client.post(f"/api/social/posts/{post_id}/approve",
                                     headers=as_("p_bo"), json={})
            body = await late.json()
            assert late.status == 409 and "expired" in str(body), body
            found = await (await client.get(f"/api/social/posts/{post_id}",
                                            headers=as_("p_ada"))).json()
            assert found["state"] == "expired"
            assert {t["state"] for t in found["targets"]} == {"expired"}
            rows = await context.database().fetch(
                "SELECT payload FROM events_outbox WHERE name = 'social.post_expired'")
            assert len(rows) == 1 and "publish time" in rows[0]["payload"]
            assert await approvals.expire_due() == 0  # nothing left for the sweep

    asyncio.run(go())


@pytest.mark.asyncio
async def test_plug_ins_read_memberships_from_the_accounts(tmp_path: Path,
                                                          smtp_server: SmtpServer) -> None:
    async with accounts_server(tmp_path, smtp_server) as (app, config):
        ada = Person(config.base_url, smtp_server, "ada@example.org")
        bo = Person(config.base_url, smtp_server, "bo@example.org")
        try:
            await ada.sign_up_and_in("Ada")
            await bo.sign_up_and_in("Bo")
            _, org, _ = await ada.call("POST", "/accounts", {"name": "Ada Label"})
            await app[ACCOUNTS].admin_set_member(org["id"], bo.id, "member")
            context = app[PLUGIN_CONTEXT_KEY]
            assert await context.role_in(org["id"], bo.id) == "member"
            assert await context.role_in(org["id"], ada.id) == "owner"
            assert await context.role_in(org["id"], "p_nobody") is None
            assert await context.role_in(bo.id, bo.id) == "owner"
        finally:
            await ada.close()
            await bo.close()


def test_the_90_days_of_approval_count_from_the_latest_submission(tmp_path: Path,
                                                                  db_url: str) -> None:
    """A post whose content changed while it waited (sent back to its approvers) is a
    new submission: it waits 90 days from then, not from the first submission."""
    async def go() -> None:
        async with _app(tmp_path, db_url) as (client, context):
            channel = await _setup(client, [[{"person": "p_bo"}]])
            post_id = await _submitted(client, channel, publish_at=soon(24 * 300))
            post = f"/api/social/posts/{post_id}"
            first = (await (await client.get(post, headers=as_("p_ada"))).json()
                     )["submitted_at"]
            module = services(context)
            day = 86_400
            module.posts.clock = lambda: time.time() + 60 * day
            changed = await client.patch(post, headers=as_("p_ada"),
                                         json={"text": "Listening party, new venue"})
            body = await changed.json()
            assert changed.status == 200, body
            assert body["state"] == "pending_approval"
            assert body["submitted_at"] >= first + 60 * day - 5
            # 91 days after the first submission, 31 after the latest: still waiting
            module.approvals.clock = lambda: time.time() + 91 * day
            assert await module.approvals.expire_due() == 0
            assert (await (await client.get(post, headers=as_("p_ada"))).json()
                    )["state"] == "pending_approval"
            # 91 days after the latest: expired
            module.approvals.clock = lambda: time.time() + 151 * day
            assert await module.approvals.expire_due() == 1
            assert (await (await client.get(post, headers=as_("p_ada"))).json()
                    )["state"] == "expired"

    asyncio.run(go())


def test_a_post_submitted_anew_after_the_sweep_listed_it_is_not_expired(
        tmp_path: Path, db_url: str) -> None:
    """Review R3: the sweep lists the posts due, then expires them one by one; one whose
    content changed in between (a new submission, its 90 days anew) is read again and
    left waiting, not expired on the strength of the old listing."""
    async def go() -> None:
        async with _app(tmp_path, db_url) as (client, context):
            channel = await _setup(client, [[{"person": "p_bo"}]])
            post_id = await _submitted(client, channel, publish_at=soon(24 * 300))
            post = f"/api/social/posts/{post_id}"
            module = services(context)
            day = 86_400
            module.approvals.clock = lambda: time.time() + 91 * day
            module.posts.clock = lambda: time.time() + 91 * day
            store = module.approvals.store
            listed = store.expiring

            async def listed_then_changed(*args: Any) -> Any:
                due = await listed(*args)
                changed = await client.patch(post, headers=as_("p_ada"),
                                             json={"text": "Listening party, new venue"})
                assert changed.status == 200, await changed.json()
                return due

            store.expiring = listed_then_changed
            assert await module.approvals.expire_due() == 0
            assert (await (await client.get(post, headers=as_("p_ada"))).json()
                    )["state"] == "pending_approval"

    asyncio.run(go())
