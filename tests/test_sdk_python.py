"""The Python SDK (sdk/python, ``maxbooster``) against a running server with real keys:
typed answers, pagination (projects and the plug-ins' releases, deliveries, statements,
beats, orders, licences, transcripts, transcription jobs, pre-save campaigns), idempotent
creates (a transcription job too, followed until it is finished; a dead delivery's retry, a
pre-save campaign, a sandbox order), If-Match (projects and tracks), retries honouring
``Retry-After`` on a real 429, no retry of a 404, and connection errors retried."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path

import aiohttp
import httpx
import pytest
from accounts_helpers import accounts_server
from loopback import free_port
from public_api_helpers import key_of, person_with_key
from sdk_seed import key_for_sdk, seed, store_settings
from smtp_server import SmtpServer
from transcript_seed import CLIP, queued_job, transcribed_project

from business.distribution.stores.fakestore import FakeStore
from dawserver.keys import ACCOUNTS, RATE_LIMITER

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sdk" / "python"))
from maxbooster import (  # noqa: E402
    ApiError,
    AsyncClient,
    Beat,
    Client,
    EditedTranscript,
    Licence,
    Order,
    Page,
    PresaveCampaign,
    Project,
    Release,
    ReleaseDelivery,
    Retries,
    RoyaltyStatement,
    Tier,
    Track,
    Transcript,
    TranscriptEditStep,
    TranscriptionJob,
    TranscriptSummary,
    Word,
)
from maxbooster.retries import parse_retry_after  # noqa: E402

pytestmark = pytest.mark.timeout(120)


@dataclass(frozen=True)
class Recorded(Retries):
    """Retries that remember each wait they chose (and still wait it)."""

    waits: list[float] = field(default_factory=list)

    def wait(self, attempt: int, retry_after: str | None) -> float:
        chosen = super().wait(attempt, retry_after)
        self.waits.append(chosen)
        return chosen


@pytest.mark.asyncio
async def test_the_async_client_pages_creates_once_and_honours_if_match(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with accounts_server(tmp_path, smtp_server) as (_, config), \
            aiohttp.ClientSession() as http:
        person, caller = await person_with_key(config.base_url, smtp_server, "ada@example.org",
                                               http)
        try:
            async with AsyncClient(config.base_url, caller.key) as api:
                first = await api.create_project("One", idempotency_key="make-one")
                again = await api.create_project("One", idempotency_key="make-one")
                assert isinstance(first, Project) and again == first
                made = [first] + [await api.create_project(n) for n in ("Two", "Three")]
                page = await api.list_projects(limit=2)
                assert isinstance(page, Page) and len(page.data) == 2 and page.next_cursor
                walked = [p async for p in api.iter_projects(page_size=2)]
                assert walked == made  # oldest first, each once, across two pages

                _, _, headers = await caller.call("GET", f"/api/v1/projects/{first.id}")
                renamed = await api.rename_project(first.id, "Uno", if_match=headers["ETag"])
                assert renamed.name == "Uno"
                with pytest.raises(ApiError) as stale:
                    await api.rename_project(first.id, "Eins", if_match=headers["ETag"])
                assert stale.value.status == 412 and stale.value.problem["etag"]
                assert await api.delete_project(first.id) is True
                with pytest.raises(ApiError) as gone:
                    await api.get_project(first.id)
                assert gone.value.status == 404 and first.id in gone.value.detail

            # the sync client, off the server's loop
            def sync_calls() -> list[str]:
                with Client(config.base_url, caller.key) as api:
                    api.create_project("Four")
                    return [p.name for p in api.iter_projects(page_size=1)]

            assert await asyncio.to_thread(sync_calls) == ["Two", "Three", "Four"]
        finally:
            await person.close()


@pytest.mark.asyncio
async def test_plugin_resources_page_and_tracks_are_written_once_and_if_match(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with FakeStore() as store, \
            accounts_server(tmp_path, smtp_server, plugins=store_settings(store.url)) as (
                app, config), aiohttp.ClientSession() as http:
        person, ada = await person_with_key(config.base_url, smtp_server, "ada@example.org", http)
        try:
            caller = await key_for_sdk(person, ada)
            await seed(app, ada.person_id)
            async with AsyncClient(config.base_url, caller.key) as api:
                first = await api.list_releases(limit=2)
                assert [r.id for r in first.data] == ["rel-1", "rel-2"] and first.next_cursor
                walked = [r async for r in api.iter_releases(page_size=2)]
                assert [r.id for r in walked] == ["rel-1", "rel-2", "rel-3"]
                assert all(isinstance(r, Release) for r in walked)
                assert [r.id async for r in api.iter_releases(status="ready")] == ["rel-2"]
                assert await api.get_release("rel-2") == walked[1]
                (delivery,) = [d async for d in api.iter_release_deliveries("rel-2")]
                assert isinstance(delivery, ReleaseDelivery) and delivery.store == "fake"
                assert delivery.release_id == "rel-2" and delivery.action == "new"
                (statement,) = [s async for s in api.iter_royalty_statements()]
                assert isinstance(statement, RoyaltyStatement)
                assert statement.totals == {"USD": 1000, "EUR": 350}
                assert await api.get_royalty_statement(statement.id) == statement

                beats = await api.list_beats(limit=2)
                assert [b.id for b in beats.data] == ["beat-3", "beat-2"] and beats.next_cursor
                assert [b.id async for b in api.iter_beats(page_size=2)] == [
                    "beat-3", "beat-2", "beat-1"]
                beat = await api.get_beat("beat-2")
                assert isinstance(beat, Beat) and isinstance(beat.tiers[0], Tier)
                assert beat.tiers[0].price == 2999 and beat.tiers[0].files == ["wav"]
                assert [b async for b in api.iter_beats(status="sold_exclusive")] == []
                (order,) = [o async for o in api.iter_orders(status="paid")]
                assert isinstance(order, Order) and order.amount == 2999 and order.paid_at
                assert await api.get_order("order-1") == order
                (licence,) = [x async for x in api.iter_licences()]
                assert isinstance(licence, Licence) and licence.seller == "seller-x"
                assert await api.get_licence("lic-1") == licence
                with pytest.raises(ApiError) as bad:
                    await api.list_orders(status="lost")
                assert bad.value.status == 422
                with pytest.raises(ApiError) as odd:  # encoded: never reaches /orders
                    await api.get_beat("../orders")
                assert odd.value.status == 404

                project = await api.create_project("Demo")
                track = await api.add_track(project.id, "Keys", channels=2,
                                            idempotency_key="keys-1")
                assert isinstance(track, Track) and track.channels == 2 and not track.mute
                assert await api.add_track(project.id, "Keys", channels=2,
                                           idempotency_key="keys-1") == track
                path = f"/api/v1/projects/{project.id}/tracks/{track.id}"
                _, _, headers = await caller.call("GET", path)
                changed = await api.change_track(project.id, track.id, gain_db=-3.5, mute=True,
                                                 if_match=headers["ETag"])
                assert (changed.gain_db, changed.mute, changed.pan) == (-3.5, True, track.pan)
                with pytest.raises(ApiError) as stale:
                    await api.change_track(project.id, track.id, pan=0.5,
                                           if_match=headers["ETag"])
                assert stale.value.status == 412 and stale.value.problem["etag"]
                with pytest.raises(ValueError, match="at least one"):
                    await api.change_track(project.id, track.id)

            def sync_calls() -> tuple[list[str], Track]:
                with Client(config.base_url, caller.key) as api:
                    renamed = api.change_track(project.id, track.id, name="Piano")
                    return [b.id for b in api.iter_beats(page_size=1)], renamed

            beat_ids, renamed = await asyncio.to_thread(sync_calls)
            assert beat_ids == ["beat-3", "beat-2", "beat-1"] and renamed.name == "Piano"
            _, tracks, _ = await caller.call("GET", f"/api/v1/projects/{project.id}/tracks")
            assert [t["name"] for t in tracks["data"]] == ["Piano"]  # the replay added none
        finally:
            await person.close()


async def _dead(api: AsyncClient, release_id: str) -> ReleaseDelivery:
    """The release's one delivery once it is dead (the store refused it)."""
    async with asyncio.timeout(60):
        while True:
            (found,) = (await api.list_release_deliveries(release_id)).data
            if found.state == "dead":
                return found
            await asyncio.sleep(0.05)


@pytest.mark.asyncio
async def test_deliveries_are_retried_campaigns_started_and_sandbox_orders_made_once(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    # the store refuses the configured token: rel-2's delivery dies at once
    async with FakeStore(token="other") as store, \
            accounts_server(tmp_path, smtp_server, plugins=store_settings(store.url)) as (
                app, config), aiohttp.ClientSession() as http:
        person, ada = await person_with_key(config.base_url, smtp_server, "ada@example.org", http)
        try:
            live = await key_of(person, ada, ["distribution.read", "distribution.deliver",
                                              "distribution.releases", "marketplace.read"])
            test = await key_of(person, ada, ["marketplace.read", "marketplace.library",
                                              "marketplace.sandbox"], test=True)
            await seed(app, ada.person_id)
            async with AsyncClient(config.base_url, live.key) as api, \
                    AsyncClient(config.base_url, test.key) as sandbox:
                dead = await _dead(api, "rel-2")
                store.token = "secret"  # the store takes it now
                again = await api.retry_delivery("rel-2", dead.id, idempotency_key="retry-1")
                assert isinstance(again, ReleaseDelivery) and again.id == dead.id
                assert (again.state, again.attempts, again.last_error) == ("queued", 0, "")
                assert await api.retry_delivery("rel-2", dead.id,
                                                idempotency_key="retry-1") == again
                with pytest.raises(ApiError) as elsewhere:  # not a delivery of rel-1
                    await api.retry_delivery("rel-1", dead.id)
                assert elsewhere.value.status == 404

                first = await api.create_presave_campaign("rel-1", idempotency_key="ps-1")
                assert isinstance(first, PresaveCampaign) and first.release_id == "rel-1"
                assert first.presaves == 0 and first.landing_page == f"/presave/{first.slug}"
                assert first.services and set(first.presaves_by_service) == set(first.services)
                assert await api.create_presave_campaign(
                    "rel-1", idempotency_key="ps-1") == first
                second = await api.create_presave_campaign(
                    "rel-1", title="Night, again", services=["spotify", "deezer"])
                third = await api.create_presave_campaign("rel-3", release_date="2031-01-02")
                assert second.title == "Night, again"
                assert second.services == ["spotify", "deezer"]
                assert third.release_date == "2031-01-02"
                page = await api.list_presave_campaigns(limit=2)
                assert [c.id for c in page.data] == [first.id, second.id] and page.next_cursor
                assert [c.id async for c in api.iter_presave_campaigns(page_size=2)] == [
                    first.id, second.id, third.id]
                assert [c.id async for c in api.iter_presave_campaigns(release_id="rel-3")] == [
                    third.id]
                mine = await api.list_release_presave_campaigns("rel-1")
                assert mine.data == [first, second] and mine.next_cursor is None
                assert await api.get_presave_campaign(second.id) == second
                with pytest.raises(ApiError) as unknown:
                    await api.create_presave_campaign("rel-1", services=["myspace"])
                assert unknown.value.status == 400

                sold = await sandbox.create_order("beat-1", "wav_lease",
                                                  buyer_reference="fan-7",
                                                  idempotency_key="sale-1")
                assert isinstance(sold, Order) and sold.status == "paid"
                assert (sold.beat_id, sold.tier, sold.amount) == ("beat-1", "wav_lease", 2999)
                assert await sandbox.create_order("beat-1", "wav_lease",
                                                  buyer_reference="fan-7",
                                                  idempotency_key="sale-1") == sold
                (licence,) = [x async for x in sandbox.iter_licences()]
                assert licence.order_id == sold.id and sold.licence_id == licence.id
                assert [o async for o in sandbox.iter_orders()] == [sold]
                with pytest.raises(ApiError) as live_sale:  # real orders are paid for
                    await api.create_order("beat-1", "wav_lease")
                assert live_sale.value.status == 403

            def sync_calls() -> tuple[Order, list[str], int]:
                with Client(config.base_url, test.key) as sale, \
                        Client(config.base_url, live.key) as api:
                    made = sale.create_order("beat-3", "wav_lease",
                                             buyer_email="fan@example.org")
                    campaigns = [c.id for c in api.iter_presave_campaigns(page_size=1)]
                    with pytest.raises(ApiError) as not_dead:  # queued again, or delivered
                        api.retry_delivery("rel-2", dead.id)
                    return made, campaigns, not_dead.value.status

            made, campaigns, refused = await asyncio.to_thread(sync_calls)
            assert refused == 409
            assert made.beat_id == "beat-3" and made.licence_id
            assert made.licence_id != sold.licence_id
            assert campaigns == [first.id, second.id, third.id]
        finally:
            await person.close()


@pytest.mark.asyncio
async def test_transcripts_page_and_a_transcription_job_is_started_once_and_followed(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with accounts_server(tmp_path, smtp_server) as (app, config), \
            aiohttp.ClientSession() as http:
        person, caller = await person_with_key(config.base_url, smtp_server, "ada@example.org",
                                               http)
        try:
            project = await transcribed_project(app, person.id, tmp_path, "Talk", ("hi", "there"),
                                                ("one",), ("two", "words"))
            async with AsyncClient(config.base_url, caller.key) as api:
                page = await api.list_transcripts(project, limit=2)
                assert [t.id for t in page.data] == [CLIP, f"{CLIP}-2"] and page.next_cursor
                walked = [t async for t in api.iter_transcripts(project, page_size=2)]
                assert [t.id for t in walked] == [CLIP, f"{CLIP}-2", f"{CLIP}-3"]
                assert all(isinstance(t, TranscriptSummary) for t in walked)
                assert (walked[0].text, walked[0].word_count, walked[0].language) == (
                    "hi there", 2, "en")
                full = await api.get_transcript(project, CLIP)
                assert isinstance(full, Transcript) and all(isinstance(w, Word)
                                                            for w in full.words)
                assert [(w.text, w.start_s, w.end_s) for w in full.words] == [
                    ("hi", 0.0, 0.4), ("there", 0.5, 0.9)]
                with pytest.raises(ApiError) as missing:
                    await api.get_transcript(project, "no/such clip")
                assert missing.value.status == 404

                job = await api.start_transcription(project, CLIP, language="English",
                                                    idempotency_key="talk-1")
                assert isinstance(job, TranscriptionJob) and job.language == "en"
                assert job.clip_id == CLIP and not job.finished
                again = await api.start_transcription(project, CLIP, language="English",
                                                      idempotency_key="talk-1")
                assert again.id == job.id
                with pytest.raises(ApiError) as unknown:
                    await api.start_transcription(project, CLIP, language="klingon")
                assert unknown.value.status == 422
                followed = await api.wait_for_transcription(project, job.id, poll_s=0.05,
                                                            timeout_s=100)
                assert followed.id == job.id and followed.finished
                assert [j.id async for j in api.iter_transcription_jobs(project)] == [job.id]
                status_page = await api.list_transcription_jobs(project, status=followed.status)
                assert [j.id for j in status_page.data] == [job.id]
                assert await api.get_transcription_job(project, job.id) == followed

            def sync_calls() -> tuple[list[str], TranscriptionJob, TranscriptionJob]:
                with Client(config.base_url, caller.key) as api:
                    ids = [t.id for t in api.iter_transcripts(project, page_size=1)]
                    started = api.start_transcription(project, f"{CLIP}-2")
                    return ids, started, api.wait_for_transcription(project, started.id,
                                                                    poll_s=0.05, timeout_s=100)

            ids, started, finished = await asyncio.to_thread(sync_calls)
            assert ids == [CLIP, f"{CLIP}-2", f"{CLIP}-3"]
            assert finished.id == started.id and finished.finished
        finally:
            await person.close()


@pytest.mark.asyncio
async def test_a_job_is_cancelled_and_a_transcript_edited_once_per_key(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with accounts_server(tmp_path, smtp_server) as (app, config), \
            aiohttp.ClientSession() as http:
        person, caller = await person_with_key(config.base_url, smtp_server, "ada@example.org",
                                               http)
        try:
            project = await transcribed_project(app, person.id, tmp_path, "Talk",
                                                ("one", "two", "three"), ("four", "five"))
            jobs = [await queued_job(app, project) for _ in range(2)]
            async with AsyncClient(config.base_url, caller.key) as api:
                cancelled = await api.cancel_transcription(project, jobs[0])
                assert isinstance(cancelled, TranscriptionJob)
                assert (cancelled.id, cancelled.status, cancelled.finished) == (
                    jobs[0], "cancelled", True)
                with pytest.raises(ApiError) as missing:
                    await api.cancel_transcription(project, "no-such-job")
                assert missing.value.status == 404

                edited = await api.edit_transcript(project, CLIP, delete=[1],
                                                   idempotency_key="cut-1")
                assert isinstance(edited, EditedTranscript) and len(edited.clips) == 2
                again = await api.edit_transcript(project, CLIP, delete=[1],
                                                  idempotency_key="cut-1")
                assert again == edited  # the first edit answered again, not a second cut
                texts = {t.id: t.text async for t in api.iter_transcripts(project)}
                assert " ".join(texts[c] for c in edited.clips) == "one three"
                with pytest.raises(ApiError) as outside:
                    await api.edit_transcript(project, f"{CLIP}-2", delete=[5])
                assert outside.value.status == 400
                with pytest.raises(ApiError) as overtaken:  # the words read are gone
                    await api.edit_transcript(project, CLIP, delete=[0],
                                              words=["one", "two", "three"])
                assert overtaken.value.status == 409

            def sync_calls() -> tuple[TranscriptionJob, EditedTranscript]:
                with Client(config.base_url, caller.key) as api:
                    return (api.cancel_transcription(project, jobs[1]),
                            api.edit_transcript(project, f"{CLIP}-2", order=[1, 0],
                                                words=["four", "five"]))

            stopped, reordered = await asyncio.to_thread(sync_calls)
            assert stopped.status == "cancelled" and reordered.clips
            _, shown, _ = await caller.call("GET", f"/api/v1/projects/{project}/transcripts")
            texts = {t["id"]: t["text"] for t in shown["data"]}
            # (the pieces between the words play silence, with empty transcripts)
            assert " ".join(texts[c] for c in reordered.clips).split() == ["five", "four"]
        finally:
            await person.close()


@pytest.mark.asyncio
async def test_text_edits_are_undone_and_redone_once_per_key(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with accounts_server(tmp_path, smtp_server) as (app, config), \
            aiohttp.ClientSession() as http:
        person, caller = await person_with_key(config.base_url, smtp_server, "ada@example.org",
                                               http)
        try:
            project = await transcribed_project(app, person.id, tmp_path, "Talk",
                                                ("one", "two", "three"), ("four", "five"))
            async with AsyncClient(config.base_url, caller.key) as api:
                before = {t.id: t.text async for t in api.iter_transcripts(project)}
                with pytest.raises(ApiError) as nothing:
                    await api.undo_transcript_edit(project)
                assert nothing.value.status == 409
                await api.edit_transcript(project, CLIP, delete=[1])
                cut = {t.id: t.text async for t in api.iter_transcripts(project)}
                await api.edit_transcript(project, f"{CLIP}-2", delete=[0])
                undone = await api.undo_transcript_edit(project, idempotency_key="undo-1")
                assert isinstance(undone, TranscriptEditStep)
                assert (undone.can_undo, undone.can_redo) == (True, True)
                again = await api.undo_transcript_edit(project, idempotency_key="undo-1")
                assert again == undone  # the first undo answered again, not a second one
                assert {t.id: t.text async for t in api.iter_transcripts(project)} == cut
                assert undone.clips == sorted(cut)

            def sync_calls() -> tuple[TranscriptEditStep, TranscriptEditStep]:
                with Client(config.base_url, caller.key) as api:
                    return api.undo_transcript_edit(project), api.redo_transcript_edit(project)

            first_undone, redone = await asyncio.to_thread(sync_calls)
            assert first_undone.clips == sorted(before) and first_undone.can_undo is False
            assert (redone.can_undo, redone.can_redo) == (True, True)
            _, shown, _ = await caller.call("GET", f"/api/v1/projects/{project}/transcripts")
            assert {t["id"]: t["text"] for t in shown["data"]} == cut
        finally:
            await person.close()


def test_waiting_for_a_transcription_asks_until_it_is_finished_or_gives_up() -> None:
    asked: list[str] = []
    states = ["queued", "running", "done"]

    def server(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.raw_path.decode())
        status = states[min(len(asked), len(states)) - 1]
        return httpx.Response(200, json={
            "id": "j1", "clip_id": "c1", "language": None, "status": status,
            "progress": 1.0 if status == "done" else 0.0, "error": None,
            "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
            "transcript_url": "/api/v1/projects/p/transcripts/c1" if status == "done" else None})

    with Client("http://api.test", "k", transport=httpx.MockTransport(server)) as api:
        done = api.wait_for_transcription("p/1", "j1", poll_s=0.001, timeout_s=600)
        assert done.status == "done" and done.transcript_url and len(asked) == 3
        assert set(asked) == {"/api/v1/projects/p%2F1/transcription-jobs/j1"}
        asked.clear()
        states[:] = ["running"]
        with pytest.raises(TimeoutError, match="still running"):
            api.wait_for_transcription("p/1", "j1", poll_s=0.001, timeout_s=0)
        assert len(asked) == 1


@pytest.mark.asyncio
async def test_a_429_is_retried_after_its_retry_after_and_a_404_is_not(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with accounts_server(tmp_path, smtp_server) as (app, config), \
            aiohttp.ClientSession() as http:
        person, caller = await person_with_key(config.base_url, smtp_server, "ada@example.org",
                                               http)
        try:
            [key] = await app[ACCOUNTS].store.keys_of(person.id)
            for _ in range(100):  # the key's free budget for this second, spent
                await app[RATE_LIMITER].hit(key.key_id, "free")
            retries = Recorded(attempts=3)
            async with AsyncClient(config.base_url, caller.key, retries=retries) as api:
                page = await api.list_projects()
                assert page.data == []
                assert retries.waits == [1.0]  # what the 429's Retry-After said
                with pytest.raises(ApiError) as missing:
                    await api.get_project("nope-00000000")
                assert missing.value.status == 404 and retries.waits == [1.0]

            # the retried 429 is in the key's usage as a refusal
            _, report, _ = await person.call("GET", "/api/v1/usage")
            total = report["keys"][0]["total"]
            assert total["rejected"] == 1 and total["requests"] == 3
        finally:
            await person.close()


def test_connection_errors_are_retried_then_raised() -> None:
    retries = Recorded(attempts=3, base_s=0.01, cap_s=0.01)
    with Client(f"http://127.0.0.1:{free_port()}", "mbk_live_x", retries=retries) as api, \
            pytest.raises(httpx.ConnectError):
        api.list_projects()
    assert len(retries.waits) == 2


def test_retry_after_is_read_as_seconds_or_an_http_date() -> None:
    assert parse_retry_after("3") == 3.0
    in_a_while = parse_retry_after(formatdate(time.time() + 30, usegmt=True))
    assert in_a_while is not None and 25 <= in_a_while <= 30
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None
    assert Retries(max_wait_s=5).wait(1, "600") == 5


class LossyServer:
    """An httpx transport standing in for the server when the network loses an answer:
    the first request is applied, then its answer is lost (a read time-out); later
    requests are answered from the state it left."""

    def __init__(self) -> None:
        self.projects = {"p1": "Old"}
        self.version = 1
        self.paths: list[str] = []
        self.lose_next = True

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.raw_path.decode())
        project_id = request.url.path.rsplit("/", 1)[1]
        if request.method == "GET":
            if project_id not in self.projects:
                return httpx.Response(404, json={"detail": "no such project"})
            return httpx.Response(200, json={
                "id": project_id, "name": self.projects[project_id], "role": "owner",
                "created_at": "2026-01-01T00:00:00Z"})
        if project_id not in self.projects:
            return httpx.Response(404, json={"detail": "no such project"})
        if request.method == "PATCH" and request.headers.get("If-Match") != f'"v{self.version}"':
            return httpx.Response(412, json={"detail": "changed since"})
        if request.method == "DELETE":
            del self.projects[project_id]
        else:
            self.projects[project_id] = json.loads(request.content)["name"]
            self.version += 1
        if self.lose_next:
            self.lose_next = False
            raise httpx.ReadTimeout("the answer was lost", request=request)
        return httpx.Response(200, json={"deleted": True})


def test_a_retry_meeting_the_lost_attempts_effect_reports_success() -> None:
    retries = Retries(attempts=3, base_s=0.01, cap_s=0.01)
    server = LossyServer()
    with Client("http://api.test", "k", retries=retries,
                transport=httpx.MockTransport(server)) as api:
        renamed = api.rename_project("p1", "New", if_match='"v1"')  # 412 on the retry
        assert renamed.name == "New" and server.projects == {"p1": "New"}
        server.lose_next = True
        assert api.delete_project("p1") is True  # 404 on the retry: it was deleted
        with pytest.raises(ApiError) as missing:  # no lost answer: a 404 is a 404
            api.delete_project("p1")
        assert missing.value.status == 404


def test_ids_are_percent_encoded_into_paths() -> None:
    server = LossyServer()
    server.lose_next = False
    with Client("http://api.test", "k", transport=httpx.MockTransport(server)) as api, \
            pytest.raises(ApiError):
        api.get_project("../usage?days=1")
    assert server.paths == ["/api/v1/projects/..%2Fusage%3Fdays%3D1"]


def test_the_new_writes_encode_ids_and_always_send_an_idempotency_key() -> None:
    sent: list[httpx.Request] = []

    def server(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(404, json={"detail": "not here"})

    with Client("http://api.test", "k", transport=httpx.MockTransport(server)) as api:
        for call in (lambda: api.retry_delivery("r/1", "d?2"),
                     lambda: api.create_presave_campaign("../orders", title="T"),
                     lambda: api.create_order("b 1", "wav", idempotency_key="mine"),
                     lambda: api.get_presave_campaign("c#1"),
                     lambda: api.list_release_presave_campaigns("r/1")):
            with pytest.raises(ApiError):
                call()
    assert [r.url.raw_path.decode() for r in sent] == [
        "/api/v1/releases/r%2F1/deliveries/d%3F2/retry",
        "/api/v1/releases/..%2Forders/presave-campaigns",
        "/api/v1/orders",
        "/api/v1/presave-campaigns/c%231",
        "/api/v1/releases/r%2F1/presave-campaigns?limit=50"]
    assert [r.headers.get("Idempotency-Key") is not None for r in sent] == [
        True, True, True, False, False]
    assert sent[2].headers["Idempotency-Key"] == "mine"
    assert json.loads(sent[1].content) == {"title": "T"}
    assert json.loads(sent[2].content) == {"beat_id": "b 1", "tier": "wav"}


def test_a_retried_track_change_meeting_its_own_effect_reports_success() -> None:
    track = {"id": "t1", "name": "Keys", "position": 0, "channels": 2, "gain_db": 0.0,
             "pan": 0.0, "mute": False, "solo": False}
    state = {"version": 1, "lose": True}

    def server(request: httpx.Request) -> httpx.Response:
        """Applies the first PATCH, then loses its answer; later ones meet the new ETag."""
        if request.method == "GET":
            return httpx.Response(200, json=track)
        if request.headers["If-Match"] != f'"v{state["version"]}"':
            return httpx.Response(412, json={"detail": "changed since"})
        track.update(json.loads(request.content))
        state["version"] += 1
        if state["lose"]:
            state["lose"] = False
            raise httpx.ReadTimeout("the answer was lost", request=request)
        return httpx.Response(200, json=track)

    retries = Retries(attempts=3, base_s=0.01, cap_s=0.01)
    with Client("http://api.test", "k", retries=retries,
                transport=httpx.MockTransport(server)) as api:
        changed = api.change_track("p1", "t1", gain_db=-6.0, if_match='"v1"')
        assert changed.gain_db == -6.0 and track["gain_db"] == -6.0
        with pytest.raises(ApiError) as stale:  # no lost answer: a 412 is a 412
            api.change_track("p1", "t1", gain_db=-1.0, if_match='"v1"')
        assert stale.value.status == 412
