"""Withdrawing forgotten grants at the platform (``analytics.revoke``), against the fake
YouTube's Google-style revocation endpoint: a disconnect and an erasure each queue the
withdrawal, the fake sees it and the old tokens die there; a failing platform is tried
again; one that fails for good leaves the deletion here and the owners are mailed; and
the payload never holds a token in clear."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from analytics_helpers import migrated, plugin_context, worker

from business.analytics import plugin
from business.analytics.alerts import recipient_key
from business.analytics.connections import DISCONNECTED, NEEDS_RECONNECT
from business.analytics.errors import TokenRevoked
from business.analytics.fakes import FAKES, FakeSources
from business.analytics.reconnect import ReconnectNotices
from business.analytics.revocation import REVOKE_JOB, revocable
from business.analytics.services import services
from business.analytics.sources import connector_for
from business.analytics.sources.base import Connector, Credentials
from business.analytics.sources.youtube import YouTubeConnector
from dawserver.plugin_api import QueueSettings

pytestmark = [pytest.mark.timeout(120)]

SECRET = "label-client-secret-0b3e"
REFRESH = "eve-refresh-token-5d21c9"
OWNERS = ["ada@example.org", "eve@example.org"]
#: Tries with no wait between them, so a test steps the retries by hand.
QUICK = QueueSettings(max_attempts=3, backoff_base=0.0, backoff_cap=0.0, lease_s=30.0)


class Mailbox:
    """Records what the notices send, as the mail queue would take it."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, list[str]]] = []

    async def send(self, to: str, subject: str, paragraphs: list[str], **_: Any) -> None:
        self.sent.append((to, subject, paragraphs))

    async def recipients(self, account_id: str) -> list[str]:
        return OWNERS if account_id == "label" else []


@pytest_asyncio.fixture
async def running(db_url: str, tmp_path: Path) -> AsyncIterator[tuple[Any, ...]]:
    """A started plug-in whose YouTube is a fake, its mail recorded."""
    fake = FAKES["youtube"](client_secret=SECRET, refresh_token=REFRESH)
    async with FakeSources([fake]) as fakes, migrated(db_url) as db:
        context = await plugin_context(
            db,
            tmp_path,
            {
                "sources": {"youtube": {"base_url": fakes.base_url("youtube")}},
                "revoke_timeout_s": 0.5,
            },
        )
        module = services(context)
        mailbox = Mailbox()
        module.notices = ReconnectNotices(mailbox.send, mailbox.recipients)
        assert module.revoker is not None
        module.revoker.notices = module.notices
        context.background.queue.configure(REVOKE_JOB, QUICK)
        try:
            yield context, fake, fakes, mailbox
        finally:
            await module.close()


def _grant() -> Credentials:
    return Credentials(client_id="client-id", client_secret=SECRET, refresh_token=REFRESH)


async def _revoke_jobs(context: Any, account_id: str) -> list[Any]:
    return await context.background.queue.find(account_id=account_id, queue=REVOKE_JOB)


async def _connected_youtube(running: tuple[Any, ...], account: str = "label"
                             ) -> tuple[Any, Any]:
    """Eve's YouTube source of ``account``, connected with :func:`_grant`; the plug-in's
    connections service and the source."""
    context, fake, _fakes, _mailbox = running
    connections = services(context).connections
    source = await connections.connect(account, "youtube", "artist", fake.artist_id,
                                       _grant(), "eve")
    return connections, source


async def _disconnected_youtube(running: tuple[Any, ...]) -> Any:
    """Eve's YouTube source of the label, connected then disconnected (its revoke job
    queued); the plug-in's connections service."""
    connections, source = await _connected_youtube(running)
    await connections.disconnect("label", source.source_id)
    return connections


async def _drain(context: Any) -> None:
    """Run the revoke queue until no job of it is due (each run is one attempt)."""
    jobs = worker(context)
    while await jobs.run_once(REVOKE_JOB):
        pass


async def _drained_job(context: Any, account_id: str = "label") -> Any:
    """Run the revoke queue (:func:`_drain`); then the one revoke job of ``account_id``."""
    await _drain(context)
    [job] = await _revoke_jobs(context, account_id)
    return job


async def _erase_eve(context: Any) -> None:
    """Erase Eve (her account and what she granted), as the erasure job does."""
    await plugin.account_erased(
        context=context, account_id="eve", pseudonym="pz-eve", names=["Eve", "eve@example.org"]
    )


def _told_to_remove(mailbox: Mailbox) -> list[str]:
    """Who was mailed to remove the app's access at the platform, in order."""
    return [to for to, subject, _ in mailbox.sent if "Remove" in subject]


async def _kept(running: tuple[Any, ...], job: Any) -> None:
    """Check that ``job`` left the grant alone, the platform never asked: it is live."""
    _context, fake, fakes, _mailbox = running
    assert job.result == {"revoked": False, "reason": "still in use"}
    assert fake.stats.revoke_requests == 0
    assert not await _token_dead(fakes)


async def _token_dead(fakes: FakeSources) -> bool:
    """Whether the grant is dead at the fake: refreshing it is refused."""
    async with aiohttp.ClientSession() as session:
        connector = connector_for("youtube", fakes.base_url("youtube"), _grant(), session)
        try:
            await connector.token()
        except TokenRevoked:
            return True
        return False


def test_only_platforms_with_a_revocation_endpoint_are_revocable() -> None:
    assert revocable("youtube")
    assert not revocable("spotify")  # client credentials: the app's own, no user grant
    assert not revocable("amazon_music")  # Login with Amazon has no revocation endpoint
    assert not revocable("no-such-source")


@pytest.mark.asyncio
async def test_the_connector_revokes_and_the_old_access_token_then_fails_as_google_does() -> None:
    fake = FAKES["youtube"](client_secret=SECRET, refresh_token=REFRESH)
    async with FakeSources([fake]) as fakes, aiohttp.ClientSession() as session:
        connector = connector_for("youtube", fakes.base_url("youtube"), _grant(), session)
        access = await connector.token()
        await connector.revoke()
        assert (fake.stats.revocations, fake.revoked) == (1, True)
        async with session.get(
            f"{fakes.base_url('youtube')}/v2/reports", headers={"Authorization": f"Bearer {access}"}
        ) as answer:
            body = await answer.json()
        assert answer.status == 401
        assert body["error"]["errors"][0]["reason"] == "authError"
        with pytest.raises(TokenRevoked):
            await connector_for("youtube", fakes.base_url("youtube"), _grant(), session).token()
        await connector.revoke()  # already dead: Google's 400 invalid_token counts as done
        assert (fake.stats.revoke_requests, fake.stats.revocations) == (2, 1)


@pytest.mark.asyncio
async def test_disconnecting_a_source_revokes_its_grant_at_the_platform(
    running: tuple[Any, ...],
) -> None:
    context, fake, fakes, mailbox = running
    connections, source = await _connected_youtube(running)
    await connections.disconnect("label", source.source_id)
    after = await connections.get("label", source.source_id)
    assert (after.state, after.credentials) == (DISCONNECTED, "")
    [job] = await _revoke_jobs(context, "label")
    assert REFRESH not in json.dumps(job.payload)  # sealed as stored, never in clear
    assert connections.box.open(job.payload["credentials"]).refresh_token == REFRESH
    assert not fake.revoked

    job = await _drained_job(context)
    assert (job.state, job.result) == ("done", {"revoked": True})
    assert fake.stats.revocations == 1
    assert await _token_dead(fakes)
    assert mailbox.sent == []


@pytest.mark.asyncio
async def test_erasure_revokes_every_grant_of_the_person_without_waiting_for_it(
    running: tuple[Any, ...],
) -> None:
    context, fake, fakes, mailbox = running
    connections, label = await _connected_youtube(running)
    await _connected_youtube(running, "eve")
    await _erase_eve(context)
    # erased here before any platform answered
    assert (await connections.get("label", label.source_id)).credentials == ""
    assert await connections.list("eve") == []
    [org_job] = await _revoke_jobs(context, "label")
    [own_job] = await _revoke_jobs(context, "pz-eve")
    assert org_job.payload["exclude_keys"] == [recipient_key("eve@example.org")]
    assert own_job.payload["notify"] is False
    for job in (org_job, own_job):
        assert REFRESH not in json.dumps(job.payload)
    assert not fake.revoked

    await _drain(context)
    for account in ("label", "pz-eve"):
        [job] = await _revoke_jobs(context, account)
        assert (job.state, job.result) == ("done", {"revoked": True})
    # one grant, withdrawn once; the second request found it dead already
    assert (fake.stats.revoke_requests, fake.stats.revocations) == (2, 1)
    assert await _token_dead(fakes)
    # the owners had the reconnect mail only, never Eve
    assert sorted(to for to, _, _ in mailbox.sent) == ["ada@example.org"]


@pytest.mark.asyncio
async def test_a_failing_revocation_is_tried_again_until_the_platform_takes_it(
    running: tuple[Any, ...],
) -> None:
    context, fake, fakes, mailbox = running
    connections, source = await _connected_youtube(running)
    fake.fail_revoke("server")
    fake.fail_revoke("timeout")
    await connections.disconnect("label", source.source_id)
    assert (await connections.get("label", source.source_id)).credentials == ""

    job = await _drained_job(context)
    assert (job.state, job.attempts, job.result) == ("done", 3, {"revoked": True})
    assert fake.stats.injected == ["revoke:server", "revoke:timeout"]
    assert (fake.stats.revoke_requests, fake.stats.revocations) == (3, 1)
    assert await _token_dead(fakes)
    assert mailbox.sent == []


@pytest.mark.asyncio
async def test_a_revocation_that_fails_for_good_is_told_to_the_owners_and_the_deletion_stays(
    running: tuple[Any, ...],
) -> None:
    context, fake, fakes, mailbox = running
    connections, source = await _connected_youtube(running)
    fake.fail_revoke("server", times=QUICK.max_attempts)
    await _erase_eve(context)

    job = await _drained_job(context)
    assert job.state == "done" and job.attempts == QUICK.max_attempts
    assert job.result["revoked"] is False and "503" in job.result["error"]
    assert not fake.revoked  # the platform still holds it: hence the mail
    after = await connections.get("label", source.source_id)
    assert (after.state, after.credentials) == (NEEDS_RECONNECT, "")
    told = [(to, subject) for to, subject, _ in mailbox.sent if "Remove" in subject]
    assert told == [
        ("ada@example.org", f"Remove our access to youtube artist {fake.artist_id} at youtube")
    ]


@pytest.mark.asyncio
async def test_each_failed_revocation_of_one_source_has_its_own_mail_id() -> None:
    """A source disconnected, reconnected and disconnected again holds two grants; if
    both fail to be withdrawn, the second is mailed too (the mail is keyed by the revoke
    job, so a mail queue de-duplicating by ``mail_id`` does not swallow it)."""
    ids: list[str] = []

    async def send(to: str, subject: str, paragraphs: list[str], **kw: Any) -> None:
        ids.append(kw["mail_id"])

    async def recipients(account_id: str) -> list[str]:
        return ["ada@example.org"]

    notices = ReconnectNotices(send, recipients)
    source = {"source": "youtube", "source_id": "src-1", "entity_kind": "artist",
              "entity_id": "UC1"}
    await notices.revoke_failed("label", source, "job-1")
    await notices.revoke_failed("label", source, "job-1")  # the same job rerun
    await notices.revoke_failed("label", source, "job-2")  # the next grant's job
    assert ids[0] == ids[1] and ids[2] != ids[0]


@pytest.mark.asyncio
async def test_a_source_that_can_no_longer_revoke_is_told_at_once_not_dead_lettered(
    running: tuple[Any, ...], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Queued while YouTube could revoke, run after a change took its endpoint away: no
    retry can help, so the first attempt ends done, revoked false, and the owners are
    mailed (no dead letter keeping the sealed credentials)."""
    context, fake, fakes, mailbox = running
    await _disconnected_youtube(running)
    monkeypatch.setattr(YouTubeConnector, "revoke_url", "")

    job = await _drained_job(context)
    assert (job.state, job.attempts, job.result["revoked"]) == ("done", 1, False)
    assert "revocation" in job.result["error"]
    assert fake.stats.revoke_requests == 0
    assert _told_to_remove(mailbox) == OWNERS


@pytest.mark.asyncio
async def test_a_connector_whose_revoke_is_missing_is_a_refusal(
    running: tuple[Any, ...],
) -> None:
    context, fake, fakes, mailbox = running
    await _disconnected_youtube(running)

    class NoRevoke:
        async def revoke(self) -> None:
            raise NotImplementedError

    revoker = services(context).revoker
    assert revoker is not None
    revoker.connector = lambda source, credentials: NoRevoke()  # type: ignore[assignment,return-value]
    job = await _drained_job(context)
    assert (job.state, job.attempts, job.result["revoked"]) == ("done", 1, False)
    assert _told_to_remove(mailbox) == OWNERS


@pytest.mark.asyncio
async def test_a_connector_that_cannot_be_built_is_retried_then_told(
    running: tuple[Any, ...],
) -> None:
    context, fake, fakes, mailbox = running
    await _disconnected_youtube(running)

    def broken(source: str, credentials: Credentials) -> Connector:
        raise ValueError("bad youtube settings")

    revoker = services(context).revoker
    assert revoker is not None
    revoker.connector = broken
    job = await _drained_job(context)
    assert (job.state, job.attempts) == ("done", QUICK.max_attempts)
    assert job.result["revoked"] is False and "bad youtube settings" in job.result["error"]
    assert _told_to_remove(mailbox) == OWNERS


@pytest.mark.asyncio
async def test_a_source_reconnected_before_the_job_runs_keeps_its_grant(
    running: tuple[Any, ...],
) -> None:
    context, fake, fakes, mailbox = running
    await _disconnected_youtube(running)
    await _connected_youtube(running)

    job = await _drained_job(context)
    await _kept(running, job)
    assert job.state == "done"
    assert mailbox.sent == []


@pytest.mark.asyncio
async def test_another_accounts_source_on_the_same_grant_keeps_it(
    running: tuple[Any, ...],
) -> None:
    """Two accounts on one Google user's grant (the same refresh token), for different
    entities: disconnecting one leaves the other's grant live; the last one withdraws."""
    context, fake, fakes, mailbox = running
    connections, mine = await _connected_youtube(running)
    theirs = await connections.connect("other", "youtube", "artist", "UC-another-artist",
                                       _grant(), "eve")
    await connections.disconnect("label", mine.source_id)

    await _kept(running, await _drained_job(context))

    await connections.disconnect("other", theirs.source_id)
    job = await _drained_job(context, "other")
    assert job.result == {"revoked": True}
    assert await _token_dead(fakes)


@pytest.mark.asyncio
async def test_the_same_entity_in_another_account_on_another_grant_does_not_keep_it(
    running: tuple[Any, ...],
) -> None:
    """One channel connected by one Google user in the label and by another user in
    another account: the label's disconnect withdraws its own user's grant."""
    context, fake, fakes, mailbox = running
    connections, mine = await _connected_youtube(running)
    await connections.connect("other", "youtube", "artist", fake.artist_id, Credentials(
        client_id="client-id", client_secret=SECRET, refresh_token="another-users-grant"),
        "bo")
    await connections.disconnect("label", mine.source_id)

    job = await _drained_job(context)
    assert job.result == {"revoked": True}
    assert fake.stats.revoke_requests == 1
    assert await _token_dead(fakes)
