"""Withdrawing forgotten channel grants at the network (``social.revoke``), against the
fake networks: a disconnect and an erasure each queue the withdrawal with the tokens
sealed, the fake sees it and the old tokens die there; a failing network is tried
again; one that fails for good leaves the deletion here, says so in the audit and mails
the account's owners and admins (through a real SMTP server) once."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pluggy
import pytest
from smtp_server import SmtpServer
from social_fakes import Dispatching, dispatching

from accounts.mail import Mailer, MailSettings
from business.social.dispatch import PUBLISH
from business.social.errors import NetworkError
from business.social.privacy import erase_account
from business.social.revocation import REVOKE, RevokeRun, revocable, run_revoke
from business.social.revoke_notices import RevokeNotices
from dawserver.account_mail import QUEUE as MAIL_QUEUE
from dawserver.account_mail import MailSender
from dawserver.context import PluginContext
from dawserver.plugin_api import Pseudonymiser, QueueSettings
from jobs import JobWorker

pytestmark = pytest.mark.timeout(60)
#: The networks with a revocation endpoint.
REVOCABLE = ["bluesky", "facebook", "tiktok", "x", "youtube"]
#: Tries with no wait between them, so a test steps the retries by hand.
QUICK = QueueSettings(max_attempts=3, backoff_base=0.0, backoff_cap=0.0, lease_s=30.0)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite://{tmp_path / 'social.sqlite3'}"


def revoking(h: Dispatching, notices: RevokeNotices | None = None) -> JobWorker:
    """Disconnects queue withdrawals on ``h``'s queue; a worker of that queue."""
    h.channels.queue = h.queue
    h.queue.configure(REVOKE, QUICK)

    async def handle(ctx: Any) -> dict:
        run = RevokeRun.model_validate(ctx.payload)
        return await run_revoke(h.channels, ctx.job.account_id, run, ctx, notices)

    return JobWorker(h.queue, {REVOKE: handle}, poll_s=0.02)


async def drain(jobs: JobWorker) -> None:
    """Run the revoke queue until no job of it is due (each run is one attempt)."""
    while await jobs.run_once(REVOKE):
        pass


async def opened_tokens(h: Dispatching, account: str, channel_id: str) -> tuple[str, str]:
    sealed = await h.store.sealed_tokens(account, channel_id)
    assert sealed is not None
    return h.channels.box.open(sealed.access_token), h.channels.box.open(sealed.refresh_token)


async def dead_at_the_network(h: Dispatching, network: str, access: str) -> bool:
    """Whether the network refuses the old access token now."""
    try:
        await h.connectors[network].profile(access)
    except NetworkError as exc:
        return not exc.retryable
    return False


@asynccontextmanager
async def one_channel(url: str, tmp_path: Path, network: str
                      ) -> AsyncIterator[tuple[Dispatching, JobWorker, str]]:
    """Fakes of ``network`` whose disconnects queue withdrawals: the harness, its revoke
    worker and the id of one channel of account "acc"."""
    async with dispatching(url, [network], tmp_path) as h:
        yield h, revoking(h), await h.channel(network)


async def revoke_job(h: Dispatching, account: str = "acc") -> Any:
    """The one revoke job queued under ``account``."""
    [job] = await h.queue.find(account_id=account, queue=REVOKE)
    return job


async def withdrawn(h: Dispatching, jobs: JobWorker, network: str, old: str, *,
                    live: str = "", account: str = "acc") -> Any:
    """Run the revoke queue and check that ``account``'s job withdrew the grant of access
    token ``old`` at ``network``, once, and left ``live`` (if given) working; the job."""
    await drain(jobs)
    job = await revoke_job(h, account)
    assert job.result == {"revoked": True}
    assert h.fake(network).stats.revocations == 1
    assert await dead_at_the_network(h, network, old)
    if live:
        assert not await dead_at_the_network(h, network, live)
    return job


async def kept_in_use(h: Dispatching, jobs: JobWorker, network: str, live: str) -> Any:
    """Run the revoke queue and check that the job of "acc" left the grant alone, the
    network never asked, as a channel still rests on it (``live`` works); the job."""
    await drain(jobs)
    job = await revoke_job(h)
    assert job.result == {"revoked": False, "reason": "still in use"}
    assert h.fake(network).stats.revoke_requests == 0
    assert not await dead_at_the_network(h, network, live)
    return job


async def reconnected(h: Dispatching, channel_id: str, sealed: Any) -> None:
    """Channel ``channel_id`` of "acc" connected again with ``sealed``, as finish() stores
    it."""
    async with h.db.transaction() as tx:
        await h.store.reconnect_channel(tx, "acc", channel_id, "Ada", "ada", sealed,
                                        time.time())


def test_only_networks_with_a_revocation_endpoint_are_revocable() -> None:
    assert [
        n
        for n in (
            "bluesky",
            "facebook",
            "instagram",
            "linkedin",
            "threads",
            "tiktok",
            "x",
            "youtube",
        )
        if revocable(n)
    ] == REVOCABLE


@pytest.mark.asyncio
@pytest.mark.parametrize("network", REVOCABLE)
async def test_disconnecting_a_channel_revokes_its_grant_at_the_network(
    sqlite_url: str, tmp_path: Path, network: str
) -> None:
    async with one_channel(sqlite_url, tmp_path, network) as (h, jobs, channel_id):
        access, refresh = await opened_tokens(h, "acc", channel_id)
        assert not await dead_at_the_network(h, network, access)

        await h.channels.disconnect("acc", channel_id, "p_ada")
        assert await h.store.sealed_tokens("acc", channel_id) is not None
        assert await opened_tokens(h, "acc", channel_id) == ("", "")
        job = await revoke_job(h)
        assert access not in json.dumps(job.payload) and refresh not in json.dumps(job.payload)
        assert h.fake(network).stats.revocations == 0

        job = await withdrawn(h, jobs, network, access)
        assert job.state == "done"


@pytest.mark.asyncio
async def test_bluesky_deletes_the_session_and_only_that_session_dies(
    sqlite_url: str, tmp_path: Path
) -> None:
    async with dispatching(sqlite_url, ["bluesky"], tmp_path) as h:
        fake, connector = h.fake("bluesky"), h.connectors["bluesky"]
        channel_id = await h.channel("bluesky")
        other = await h.channel("bluesky", "label")  # the same account, another session
        access, refresh = await opened_tokens(h, "acc", channel_id)
        rotated = await connector.refresh(refresh)  # a refresh keeps the session
        assert rotated.refresh_token and rotated.refresh_token != refresh

        await connector.revoke(access, rotated.refresh_token)
        assert (fake.stats.revoke_requests, fake.stats.revocations) == (1, 1)
        for token in (access, rotated.access_token):
            assert await dead_at_the_network(h, "bluesky", token)
        with pytest.raises(NetworkError) as refused:
            await connector.refresh(rotated.refresh_token)
        assert not refused.value.retryable
        other_access, _ = await opened_tokens(h, "label", other)
        assert not await dead_at_the_network(h, "bluesky", other_access)

        # ended already: the PDS's ExpiredToken counts as done; no refresh JWT cannot end it
        await connector.revoke(access, rotated.refresh_token)
        assert (fake.stats.revoke_requests, fake.stats.revocations) == (2, 1)
        with pytest.raises(NetworkError) as none:
            await connector.revoke(other_access, "")
        assert not none.value.retryable and "app password" in str(none.value)
        assert not await dead_at_the_network(h, "bluesky", other_access)


@pytest.mark.asyncio
async def test_erasure_revokes_the_own_channels_grants_without_waiting_for_them(
    db_url: str, tmp_path: Path
) -> None:
    async with dispatching(db_url, ["x", "youtube"], tmp_path) as h:
        jobs = revoking(h)
        ids = {n: await h.channel(n) for n in ("x", "youtube")}
        old = {n: (await opened_tokens(h, "acc", c))[0] for n, c in ids.items()}
        await erase_account(h.db, h.queue, PUBLISH, Pseudonymiser("acc", ("Ada",), "pz-acc"))
        assert await h.store.channels("acc") == []  # deleted before any network answered
        queued = await h.queue.find(account_id="pz-acc", queue=REVOKE)
        assert sorted(j.payload["network"] for j in queued) == ["x", "youtube"]

        await drain(jobs)
        for job in await h.queue.find(account_id="pz-acc", queue=REVOKE):
            assert (job.state, job.result) == ("done", {"revoked": True})
        for network, access in old.items():
            assert h.fake(network).stats.revocations == 1
            assert await dead_at_the_network(h, network, access)


@pytest.mark.asyncio
async def test_a_failing_revocation_is_tried_again_until_the_network_takes_it(
    sqlite_url: str, tmp_path: Path
) -> None:
    async with one_channel(sqlite_url, tmp_path, "x") as (h, jobs, channel_id):
        access, _ = await opened_tokens(h, "acc", channel_id)
        h.fake("x").fail_revoke("server", times=2)
        await h.channels.disconnect("acc", channel_id, "p_ada")

        job = await withdrawn(h, jobs, "x", access)
        assert (job.state, job.attempts) == ("done", 3)
        assert h.fake("x").stats.revoke_requests == 3


@pytest.mark.asyncio
async def test_a_revocation_that_fails_for_good_is_audited_and_the_deletion_stays(
    sqlite_url: str, tmp_path: Path
) -> None:
    async with one_channel(sqlite_url, tmp_path, "youtube") as (h, jobs, channel_id):
        fake = h.fake("youtube")
        access, _ = await opened_tokens(h, "acc", channel_id)
        fake.fail_revoke("server", times=QUICK.max_attempts)
        await h.channels.disconnect("acc", channel_id, "p_ada")

        await drain(jobs)
        job = await revoke_job(h)
        assert job.state == "done" and job.attempts == QUICK.max_attempts
        assert job.result["revoked"] is False
        assert fake.stats.revocations == 0
        assert not await dead_at_the_network(h, "youtube", access)  # hence the audit entry
        assert await opened_tokens(h, "acc", channel_id) == ("", "")
        actions = [
            step["action"] for step in await h.store.audit_of("acc", f"channel:{channel_id}")
        ]
        assert actions[-2:] == ["channel.disconnected", "channel.revoke_failed"]


@pytest.mark.asyncio
async def test_a_revocation_that_fails_for_good_mails_the_owners_and_admins_once(
    sqlite_url: str, tmp_path: Path, smtp_server: SmtpServer
) -> None:
    async with dispatching(sqlite_url, ["youtube"], tmp_path) as h:
        context = PluginContext(manager=pluggy.PluginManager("dawserver"))
        await context.background.prepare(h.db)  # the platform's mailer, on h's database
        admins = {"acc": ["Dee@example.org", " dee@example.org", "fay@example.org"],
                  "eve": ["eve@example.org"], "pz-eve": ["eve@example.org"]}

        async def admin_emails(account_id: str) -> list[str]:
            return admins.get(account_id, [])

        notices = RevokeNotices(context.send_mail, admin_emails,
                                base_url="https://studio.example")
        jobs, fake = revoking(h, notices), h.fake("youtube")
        mail = JobWorker(context.background.queue, {MAIL_QUEUE: MailSender(Mailer(
            MailSettings.from_url(smtp_server.url)))}, poll_s=0.02)
        org = await h.channel("youtube")
        await h.channel("youtube", "eve")
        fake.fail_revoke("server", times=2 * QUICK.max_attempts)
        await h.channels.disconnect("acc", org, "p_ada")
        await erase_account(h.db, h.queue, PUBLISH, Pseudonymiser("eve", ("Eve",), "pz-eve"))

        await drain(jobs)
        while await mail.run_once(MAIL_QUEUE):
            pass
        jobs_of = {a: await h.queue.find(account_id=a, queue=REVOKE) for a in ("acc", "pz-eve")}
        assert [j.result["revoked"] for js in jobs_of.values() for j in js] == [False, False]
        # each owner or admin once, whatever the spelling; never the erased person
        received = smtp_server.messages
        assert sorted(m["To"] for m in received) == ["dee@example.org", "fay@example.org"]
        name = (await h.channels.get("acc", org)).name
        for message in received:
            assert message["Subject"] == "Remove our access at youtube"
            body = message.get_body(("plain",)).get_content()
            assert name in body and "connected-apps settings" in body
            assert "https://studio.example/social?account=acc" in body

        # the same job telling again (a rerun after a crash) sends nothing more
        [job] = jobs_of["acc"]
        assert await notices.revoke_failed("acc", job.id, "youtube", name) == [
            "dee@example.org", "fay@example.org"]
        while await mail.run_once(MAIL_QUEUE):
            pass
        assert len(smtp_server.messages) == 2


async def _fresh_sealed(h: Dispatching, network: str) -> tuple[Any, str]:
    """New tokens of the fake's user, sealed as a connect stores them; the access token."""
    from business.social.models import ChannelTokens

    answer = h.fake(network).new_tokens(h.fake(network).user, "post")
    refresh = answer.get("refresh_token") or answer["access_token"]
    if network == "facebook":
        refresh = answer["access_token"]
    box, now = h.channels.box, time.time()
    return ChannelTokens(box.seal(answer["access_token"]), box.seal(refresh),
                         now + float(answer["expires_in"]), "post", 1, now, now), \
        answer["access_token"]


@pytest.mark.asyncio
@pytest.mark.parametrize("network", ["facebook", "youtube"])
async def test_a_channel_reconnected_before_the_job_runs_keeps_its_new_grant(
    sqlite_url: str, tmp_path: Path, network: str
) -> None:
    async with one_channel(sqlite_url, tmp_path, network) as (h, jobs, channel_id):
        await h.channels.disconnect("acc", channel_id, "p_ada")
        sealed, new = await _fresh_sealed(h, network)
        await reconnected(h, channel_id, sealed)

        job = await kept_in_use(h, jobs, network, new)
        assert job.state == "done"


@pytest.mark.asyncio
async def test_a_token_scoped_channel_reconnected_with_new_tokens_loses_only_the_old(
    sqlite_url: str, tmp_path: Path
) -> None:
    """X revokes the one token it is given: the old grant goes, the new one stays."""
    async with one_channel(sqlite_url, tmp_path, "x") as (h, jobs, channel_id):
        old, _ = await opened_tokens(h, "acc", channel_id)
        await h.channels.disconnect("acc", channel_id, "p_ada")
        sealed, new = await _fresh_sealed(h, "x")
        await reconnected(h, channel_id, sealed)

        job = await withdrawn(h, jobs, "x", old, live=new)
        assert job.state == "done"


@pytest.mark.asyncio
async def test_a_token_scoped_channel_holding_the_revoked_token_again_keeps_it(
    sqlite_url: str, tmp_path: Path
) -> None:
    async with one_channel(sqlite_url, tmp_path, "x") as (h, jobs, channel_id):
        held = await h.store.sealed_tokens("acc", channel_id)
        access, _ = await opened_tokens(h, "acc", channel_id)
        await h.channels.disconnect("acc", channel_id, "p_ada")
        await reconnected(h, channel_id, held)  # the very token is the live one again

        await kept_in_use(h, jobs, "x", access)


@pytest.mark.asyncio
async def test_an_x_channel_is_revoked_while_another_account_has_the_same_x_account(
    sqlite_url: str, tmp_path: Path
) -> None:
    async with one_channel(sqlite_url, tmp_path, "x") as (h, jobs, mine):
        theirs = await h.channel("x", "label")  # the same X account, its own token
        old, _ = await opened_tokens(h, "acc", mine)
        access, _ = await opened_tokens(h, "label", theirs)
        await h.channels.disconnect("acc", mine, "p_ada")

        await withdrawn(h, jobs, "x", old, live=access)


async def _page_channel(h: Dispatching, account: str, user: Any) -> str:
    """A channel of ``account`` on the fake's Page, connected by ``user`` (the Page's
    manager, stored as its remote user as a connect does); its id."""
    from business.social.models import ChannelTokens

    fake = h.fake("facebook")
    token = fake.new_tokens(user, "post")["access_token"]
    box, now = h.channels.box, time.time()
    sealed = ChannelTokens(box.seal(token), box.seal(token), now + 3600.0, "post", 1, now,
                           now)
    page = fake.pages[0]
    async with h.db.transaction() as tx:
        return await h.store.insert_channel(tx, account, "facebook", page.id, page.name,
                                            page.handle, sealed, "p_ada", now, user.id)


@pytest.mark.asyncio
@pytest.mark.parametrize("reason", ["disconnected", "erased"])
async def test_one_page_of_two_users_in_two_accounts_revokes_the_leaving_users_grant(
    sqlite_url: str, tmp_path: Path, reason: str
) -> None:
    """U1 connected the Page in one account, U2 in another: U1's grant is withdrawn
    (their disconnect or erasure must not leave it live), U2's channel keeps working."""
    from business.social.fakes.base import FakeUser

    async with dispatching(sqlite_url, ["facebook"], tmp_path) as h:
        jobs, fake = revoking(h), h.fake("facebook")
        u1, u2 = fake.user, FakeUser(id="2002", name="Bo", handle="bo")
        mine = await _page_channel(h, "acc", u1)
        theirs = await _page_channel(h, "label", u2)
        old, _ = await opened_tokens(h, "acc", mine)
        access, _ = await opened_tokens(h, "label", theirs)
        if reason == "disconnected":
            await h.channels.disconnect("acc", mine, "p_ada")
            account = "acc"
        else:
            await erase_account(h.db, h.queue, PUBLISH,
                                Pseudonymiser("acc", ("Ada",), "pz-acc"))
            account = "pz-acc"

        await withdrawn(h, jobs, "facebook", old, live=access, account=account)


@pytest.mark.asyncio
async def test_one_facebook_user_in_two_accounts_keeps_the_other_channel_live(
    sqlite_url: str, tmp_path: Path
) -> None:
    async with dispatching(sqlite_url, ["facebook"], tmp_path) as h:
        jobs, fake = revoking(h), h.fake("facebook")
        mine = await _page_channel(h, "acc", fake.user)
        theirs = await _page_channel(h, "label", fake.user)  # the same user, elsewhere
        access, _ = await opened_tokens(h, "label", theirs)
        await h.channels.disconnect("acc", mine, "p_ada")

        await kept_in_use(h, jobs, "facebook", access)

        await h.channels.disconnect("label", theirs, "p_eve")  # the last one: withdrawn
        await withdrawn(h, jobs, "facebook", access, account="label")


@pytest.mark.asyncio
async def test_two_pages_of_one_facebook_user_share_the_grant(
    sqlite_url: str, tmp_path: Path
) -> None:
    """Two Pages (two remote accounts) managed by one user: the grant is the user's, so
    disconnecting one Page's channel leaves it standing."""
    async with dispatching(sqlite_url, ["facebook"], tmp_path) as h:
        jobs, fake = revoking(h), h.fake("facebook")
        user = fake.user.id
        ids = []
        for account, page in (("acc", "page-1"), ("label", "page-2")):
            sealed, _ = await _fresh_sealed(h, "facebook")
            async with h.db.transaction() as tx:
                ids.append(await h.store.insert_channel(
                    tx, account, "facebook", page, page, page, sealed, "p_ada", time.time(),
                    user))
        access, _ = await opened_tokens(h, "label", ids[1])
        await h.channels.disconnect("acc", ids[0], "p_ada")
        job = await revoke_job(h)
        assert (job.payload["remote_id"], job.payload["remote_user"]) == ("page-1", user)

        await kept_in_use(h, jobs, "facebook", access)


@pytest.mark.asyncio
async def test_the_facebook_profile_names_the_user_whose_grant_the_page_rests_on(
    sqlite_url: str, tmp_path: Path
) -> None:
    async with dispatching(sqlite_url, ["facebook"], tmp_path) as h:
        fake = h.fake("facebook")
        access = fake.issue_access_token()
        profile = await h.connectors["facebook"].profile(access)
        assert profile["user_id"] == fake.user.id
        assert profile["id"] == fake.pages[0].id
