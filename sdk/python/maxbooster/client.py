"""The sync and async clients: one request plan, two transports (httpx).

Every call is planned once (:class:`Call`: method, path, query, body, headers) and
turned into a typed answer once (``decode``); :class:`Client` and :class:`AsyncClient`
only send it, retrying what :class:`~.retries.Retries` allows. Every POST carries an
``Idempotency-Key`` (yours, or a fresh UUID per call), so a retry of a create replays
the first answer instead of creating again.

A retry after a *lost* answer (the connection broke after the request was sent) may meet
the first attempt's own effect: a DELETE then answers 404 and a PATCH with ``If-Match``
answers 412. Such an answer is taken as success when it is explained by the lost attempt
(:attr:`Call.lost_statuses`): a 404 of a retried DELETE means deleted, and a 412 of a
retried rename is checked with a GET (the project has the new name: success).
Ids go into paths percent-encoded, so an id with ``/``, ``..`` or ``?`` cannot change
the endpoint.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar

import httpx

from .errors import ApiError
from .models import (
    Beat,
    EditedTranscript,
    Licence,
    Order,
    Page,
    PresaveCampaign,
    Project,
    Release,
    ReleaseDelivery,
    RoyaltyStatement,
    Track,
    Transcript,
    TranscriptEditStep,
    TranscriptionJob,
    TranscriptSummary,
    UsageReport,
)
from .plans import Call, Plans
from .retries import RETRY_STATUSES, Retries

T = TypeVar("T")
USER_AGENT = "maxbooster-python/0.1.0"

#: Transport errors raised before the request could reach the server.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
NOT_FINISHED = ("transcription job {job_id!r} of project {project_id!r} is still {status} "
                "after {waited:.0f} s; wait longer (timeout_s) or look again later")


def _finish(call: Call[T], response: httpx.Response) -> T:
    if response.is_success:
        return call.decode(response.json())
    try:
        problem = response.json()
    except ValueError:
        problem = {"detail": response.text[:500]}
    raise ApiError(response.status_code, problem if isinstance(problem, dict) else {})


def _retryable(call: Call[Any]) -> bool:
    """GET, PATCH, DELETE are safe to repeat; a POST only with its Idempotency-Key."""
    return call.method != "POST" or "Idempotency-Key" in call.headers


class Client:
    """The sync client: ``Client(base_url, api_key)``; a context manager closing its pool.

    Each method raises :class:`ApiError` on an error answer (after the retries
    :class:`Retries` allows).
    """

    def __init__(self, base_url: str, api_key: str, *, retries: Retries | None = None,
                 timeout: float = 30.0, transport: httpx.BaseTransport | None = None) -> None:
        self.retries = retries or Retries()
        self._http = httpx.Client(base_url=base_url, timeout=timeout, transport=transport,
                                  headers={"Authorization": f"Bearer {api_key}",
                                           "User-Agent": USER_AGENT})

    def send(self, call: Call[T]) -> T:
        """Send ``call``, retrying as allowed; its decoded answer."""
        lost = False
        for attempt in range(1, self.retries.attempts + 1):
            last = attempt == self.retries.attempts or not _retryable(call)
            try:
                response = self._http.request(call.method, call.path, params=call.params,
                                              json=call.json, headers=call.headers)
            except httpx.TransportError as exc:
                if last:
                    raise
                lost = lost or not isinstance(exc, _NOT_SENT)
                time.sleep(self.retries.wait(attempt, None))
                continue
            if response.status_code in RETRY_STATUSES and not last:
                time.sleep(self.retries.wait(attempt, response.headers.get("Retry-After")))
                continue
            if lost and response.status_code in call.lost_statuses:
                found = self.send(call.confirm) if call.confirm is not None else None
                done = call.confirmed(found)
                if done is not None:
                    return done
            return _finish(call, response)
        raise AssertionError("unreachable")

    def list_projects(self, limit: int = 50, cursor: str | None = None, **filters: Any
                      ) -> Page[Project]:
        """One page of the projects you may open (filters: ``role``, ``name_contains``,
        ``created_after``, ``created_before``)."""
        return self.send(Plans.list_projects(limit, cursor, **filters))

    def get_project(self, project_id: str) -> Project:
        """One project."""
        return self.send(Plans.get_project(project_id))

    def create_project(self, name: str, idempotency_key: str | None = None) -> Project:
        """A new project (retried safely under ``idempotency_key``, a fresh one if None)."""
        return self.send(Plans.create_project(name, idempotency_key))

    def rename_project(self, project_id: str, name: str, if_match: str | None = None
                       ) -> Project:
        """Rename; with ``if_match`` (an ETag) only if unchanged since (else 412)."""
        return self.send(Plans.rename_project(project_id, name, if_match))

    def delete_project(self, project_id: str, if_match: str | None = None) -> bool:
        """Delete for good."""
        return self.send(Plans.delete_project(project_id, if_match))

    def usage(self, days: int = 30, account: str | None = None) -> UsageReport:
        """The account's keys' usage per day (needs ``account.admin``)."""
        return self.send(Plans.usage(days, account))

    def iter_projects(self, page_size: int = 200, **filters: Any) -> Iterator[Project]:
        """Every project, page after page."""
        cursor = None
        while True:
            page = self.send(Plans.list_projects(page_size, cursor, **filters))
            yield from page.data
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def walk(self, page: Callable[[str | None], Call[Page[T]]]) -> Iterator[T]:
        """Every item of the pages ``page(cursor)`` plans, fetched as they are consumed."""
        cursor = None
        while True:
            found = self.send(page(cursor))
            yield from found.data
            if found.next_cursor is None:
                return
            cursor = found.next_cursor

    def get_track(self, project_id: str, track_id: str) -> Track:
        """One track of a project."""
        return self.send(Plans.get_track(project_id, track_id))

    def add_track(self, project_id: str, name: str, channels: int | None = None,
                  idempotency_key: str | None = None) -> Track:
        """A new track at the end of the project (retried safely under ``idempotency_key``)."""
        return self.send(Plans.add_track(project_id, name, channels, idempotency_key))

    def change_track(self, project_id: str, track_id: str, *, name: str | None = None,
                     gain_db: float | None = None, pan: float | None = None,
                     mute: bool | None = None, if_match: str | None = None) -> Track:
        """Rename or remix a track (only what is not None); with ``if_match`` only if unchanged
        since (else 412). ValueError when nothing is to change."""
        change = {"name": name, "gain_db": gain_db, "pan": pan, "mute": mute}
        return self.send(Plans.change_track(project_id, track_id, change, if_match))

    def list_releases(self, limit: int = 50, cursor: str | None = None,
                      status: str | None = None) -> Page[Release]:
        """One page of the account's releases (``status``: draft, ready, blocked)."""
        return self.send(Plans.list_releases(limit, cursor, status))

    def get_release(self, release_id: str) -> Release:
        """One release."""
        return self.send(Plans.get_release(release_id))

    def list_release_deliveries(self, release_id: str, limit: int = 50, cursor: str | None = None,
                                state: str | None = None) -> Page[ReleaseDelivery]:
        """One page of a release's deliveries to stores (filter ``state``)."""
        return self.send(Plans.list_release_deliveries(release_id, limit, cursor, state))

    def retry_delivery(self, release_id: str, delivery_id: str,
                       idempotency_key: str | None = None) -> ReleaseDelivery:
        """Send a dead delivery of a release again (needs ``distribution.deliver``): the same
        message, attempts reset; it comes back ``queued``. A 409 :class:`ApiError` when it
        is not dead. Retried safely under ``idempotency_key`` (a fresh one if None)."""
        return self.send(Plans.retry_delivery(release_id, delivery_id, idempotency_key))

    def list_presave_campaigns(self, limit: int = 50, cursor: str | None = None,
                               release_id: str | None = None) -> Page[PresaveCampaign]:
        """One page of the account's pre-save campaigns, oldest first (filter
        ``release_id``; needs ``distribution.read``)."""
        return self.send(Plans.list_presave_campaigns(limit, cursor, release_id))

    def list_release_presave_campaigns(self, release_id: str, limit: int = 50,
                                       cursor: str | None = None) -> Page[PresaveCampaign]:
        """One page of a release's pre-save campaigns, oldest first (a 404
        :class:`ApiError` for a release the account does not have)."""
        return self.send(Plans.list_release_presave_campaigns(release_id, limit, cursor))

    def get_presave_campaign(self, campaign_id: str) -> PresaveCampaign:
        """One pre-save campaign with its pre-saves per service."""
        return self.send(Plans.get_presave_campaign(campaign_id))

    def create_presave_campaign(self, release_id: str, *, title: str | None = None,
                                artist: str | None = None, release_date: str | None = None,
                                services: list[str] | None = None,
                                idempotency_key: str | None = None) -> PresaveCampaign:
        """Start a pre-save campaign for a release (needs ``distribution.releases``);
        what is None comes from the release (its title, artists and date; every service).
        A 400 :class:`ApiError` for an unknown service or a date not YYYY-MM-DD. Retried
        safely under ``idempotency_key`` (a fresh one if None)."""
        return self.send(Plans.create_presave_campaign(
            release_id, title, artist, release_date, services, idempotency_key))

    def list_royalty_statements(self, limit: int = 50,
                                cursor: str | None = None) -> Page[RoyaltyStatement]:
        """One page of the imported royalty statements (needs ``distribution.royalties``)."""
        return self.send(Plans.list_royalty_statements(limit, cursor))

    def get_royalty_statement(self, statement_id: str) -> RoyaltyStatement:
        """One royalty statement."""
        return self.send(Plans.get_royalty_statement(statement_id))

    def list_beats(self, limit: int = 50, cursor: str | None = None,
                   status: str | None = None) -> Page[Beat]:
        """One page of the beats the account sells, newest first (filter ``status``)."""
        return self.send(Plans.list_beats(limit, cursor, status))

    def get_beat(self, beat_id: str) -> Beat:
        """One beat with its licence tiers."""
        return self.send(Plans.get_beat(beat_id))

    def list_orders(self, limit: int = 50, cursor: str | None = None,
                    status: str | None = None) -> Page[Order]:
        """One page of the sales of the account's beats (filter ``status``)."""
        return self.send(Plans.list_orders(limit, cursor, status))

    def get_order(self, order_id: str) -> Order:
        """One order."""
        return self.send(Plans.get_order(order_id))

    def create_order(self, beat_id: str, tier: str, *, buyer_email: str | None = None,
                     buyer_reference: str | None = None,
                     idempotency_key: str | None = None) -> Order:
        """A sandbox sale of one of the account's beats on sale in ``tier`` (a test-mode
        key with ``marketplace.sandbox`` only: a live key gets a 403 :class:`ApiError`):
        a paid ``Order`` and its licence, simulated (no Stripe, no money).
        ``buyer_email`` and ``buyer_reference`` are kept in the order's note. Retried
        safely under ``idempotency_key`` (a fresh one if None)."""
        return self.send(Plans.create_order(beat_id, tier, buyer_email, buyer_reference,
                                             idempotency_key))

    def list_licences(self, limit: int = 50, cursor: str | None = None) -> Page[Licence]:
        """One page of the licences the account bought (needs ``marketplace.library``)."""
        return self.send(Plans.list_licences(limit, cursor))

    def get_licence(self, licence_id: str) -> Licence:
        """One licence."""
        return self.send(Plans.get_licence(licence_id))

    def iter_releases(self, status: str | None = None, page_size: int = 200) -> Iterator[Release]:
        """Every release, page after page."""
        return self.walk(lambda c: Plans.list_releases(limit=page_size, cursor=c, status=status))

    def iter_release_deliveries(self, release_id: str, state: str | None = None,
                                page_size: int = 200) -> Iterator[ReleaseDelivery]:
        """Every delivery of a release."""
        return self.walk(lambda c: Plans.list_release_deliveries(release_id, limit=page_size,
                                                                 cursor=c, state=state))

    def iter_presave_campaigns(self, release_id: str | None = None, page_size: int = 200
                               ) -> Iterator[PresaveCampaign]:
        """Every pre-save campaign of the account (or of ``release_id``), oldest first."""
        return self.walk(lambda c: Plans.list_presave_campaigns(limit=page_size, cursor=c,
                                                                release_id=release_id))

    def iter_royalty_statements(self, page_size: int = 200) -> Iterator[RoyaltyStatement]:
        """Every royalty statement."""
        return self.walk(lambda c: Plans.list_royalty_statements(limit=page_size, cursor=c))

    def iter_beats(self, status: str | None = None, page_size: int = 200) -> Iterator[Beat]:
        """Every beat, newest first."""
        return self.walk(lambda c: Plans.list_beats(limit=page_size, cursor=c, status=status))

    def iter_orders(self, status: str | None = None, page_size: int = 200) -> Iterator[Order]:
        """Every order."""
        return self.walk(lambda c: Plans.list_orders(limit=page_size, cursor=c, status=status))

    def iter_licences(self, page_size: int = 200) -> Iterator[Licence]:
        """Every licence bought."""
        return self.walk(lambda c: Plans.list_licences(limit=page_size, cursor=c))

    def list_transcripts(self, project_id: str, limit: int = 50,
                         cursor: str | None = None) -> Page[TranscriptSummary]:
        """One page of a project's transcripts (one per transcribed clip, by clip id),
        without their words."""
        return self.send(Plans.list_transcripts(project_id, limit, cursor))

    def iter_transcripts(self, project_id: str, page_size: int = 200
                         ) -> Iterator[TranscriptSummary]:
        """Every transcript of a project, by clip id."""
        return self.walk(lambda c: Plans.list_transcripts(project_id, limit=page_size,
                                                          cursor=c))

    def get_transcript(self, project_id: str, clip_id: str) -> Transcript:
        """A clip's transcript with every word and its timing (404 until one is made)."""
        return self.send(Plans.get_transcript(project_id, clip_id))

    def list_transcription_jobs(self, project_id: str, limit: int = 50,
                                cursor: str | None = None,
                                status: str | None = None) -> Page[TranscriptionJob]:
        """One page of a project's transcription jobs, oldest first (filter ``status``)."""
        return self.send(Plans.list_transcription_jobs(project_id, limit, cursor, status))

    def iter_transcription_jobs(self, project_id: str, status: str | None = None,
                                page_size: int = 200) -> Iterator[TranscriptionJob]:
        """Every transcription job of a project, oldest first."""
        return self.walk(lambda c: Plans.list_transcription_jobs(
            project_id, limit=page_size, cursor=c, status=status))

    def get_transcription_job(self, project_id: str, job_id: str) -> TranscriptionJob:
        """One transcription job's state and progress."""
        return self.send(Plans.get_transcription_job(project_id, job_id))

    def start_transcription(self, project_id: str, clip_id: str, language: str | None = None,
                            idempotency_key: str | None = None) -> TranscriptionJob:
        """Queue the transcription of a clip (needs ``project.edit`` and the editor role) in
        ``language`` (a code, alias or English name; None: detect it); retried safely under
        ``idempotency_key`` (a fresh one if None)."""
        return self.send(Plans.start_transcription(project_id, clip_id, language,
                                                   idempotency_key))

    def wait_for_transcription(self, project_id: str, job_id: str, *, poll_s: float = 1.0,
                               timeout_s: float = 600.0) -> TranscriptionJob:
        """The job once it is finished (done, failed or cancelled), asked every ``poll_s``
        seconds; :class:`TimeoutError` if it is not after ``timeout_s``."""
        started = time.monotonic()
        while True:
            job = self.get_transcription_job(project_id, job_id)
            waited = time.monotonic() - started
            if job.finished:
                return job
            if waited >= timeout_s:
                raise TimeoutError(NOT_FINISHED.format(job_id=job_id, project_id=project_id,
                                                       status=job.status, waited=waited))
            time.sleep(min(poll_s, max(timeout_s - waited, 0.0)))

    def cancel_transcription(self, project_id: str, job_id: str,
                             idempotency_key: str | None = None) -> TranscriptionJob:
        """Cancel a queued or running job (needs ``project.edit`` and the editor role); a
        finished job comes back unchanged."""
        return self.send(Plans.cancel_transcription(project_id, job_id, idempotency_key))

    def edit_transcript(self, project_id: str, clip_id: str, *,
                        delete: list[int] | None = None, order: list[int] | None = None,
                        ripple: bool = True, idempotency_key: str | None = None,
                        words: list[str] | None = None) -> EditedTranscript:
        """Edit a clip's audio through its words (needs ``project.edit`` and the editor
        role): delete the words at these indices (from 0, as ``Transcript.words`` lists
        them) or play them in this ``order``; ``ripple=False`` leaves gaps. Pass the
        ``words`` you read (their texts, in order) and an edit that another one overtook
        raises a 409 :class:`ApiError` instead of landing on other words. Retried safely
        under ``idempotency_key`` (a fresh one if None): a repeated deletion would delete
        more words."""
        return self.send(Plans.edit_transcript(project_id, clip_id, delete, order, ripple,
                                               idempotency_key, words))

    def undo_transcript_edit(self, project_id: str, idempotency_key: str | None = None
                             ) -> TranscriptEditStep:
        """Undo the project's last text edit, whichever clip it edited (needs
        ``project.edit`` and the editor role); a 409 :class:`ApiError` when none is left.
        Retried safely under ``idempotency_key`` (a fresh one if None): a repeated undo
        would take back one more edit."""
        return self.send(Plans.undo_transcript_edit(project_id, idempotency_key))

    def redo_transcript_edit(self, project_id: str, idempotency_key: str | None = None
                             ) -> TranscriptEditStep:
        """Redo the project's last undone text edit (needs ``project.edit`` and the editor
        role); a 409 :class:`ApiError` when none is left. Retried safely under
        ``idempotency_key`` (a fresh one if None)."""
        return self.send(Plans.redo_transcript_edit(project_id, idempotency_key))

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncClient:
    """The asyncio client: the same methods as :class:`Client`, awaited; ``async with``."""

    def __init__(self, base_url: str, api_key: str, *, retries: Retries | None = None,
                 timeout: float = 30.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.retries = retries or Retries()
        self._http = httpx.AsyncClient(base_url=base_url, timeout=timeout, transport=transport,
                                       headers={"Authorization": f"Bearer {api_key}",
                                                "User-Agent": USER_AGENT})

    async def send(self, call: Call[T]) -> T:
        """Send ``call``, retrying as allowed; its decoded answer."""
        lost = False
        for attempt in range(1, self.retries.attempts + 1):
            last = attempt == self.retries.attempts or not _retryable(call)
            try:
                response = await self._http.request(call.method, call.path, params=call.params,
                                                    json=call.json, headers=call.headers)
            except httpx.TransportError as exc:
                if last:
                    raise
                lost = lost or not isinstance(exc, _NOT_SENT)
                await asyncio.sleep(self.retries.wait(attempt, None))
                continue
            if response.status_code in RETRY_STATUSES and not last:
                await asyncio.sleep(self.retries.wait(attempt,
                                                      response.headers.get("Retry-After")))
                continue
            if lost and response.status_code in call.lost_statuses:
                found = await self.send(call.confirm) if call.confirm is not None else None
                done = call.confirmed(found)
                if done is not None:
                    return done
            return _finish(call, response)
        raise AssertionError("unreachable")

    async def list_projects(self, limit: int = 50, cursor: str | None = None, **filters: Any
                      ) -> Page[Project]:
        """One page of the projects you may open (filters: ``role``, ``name_contains``,
        ``created_after``, ``created_before``)."""
        return await self.send(Plans.list_projects(limit, cursor, **filters))

    async def get_project(self, project_id: str) -> Project:
        """One project."""
        return await self.send(Plans.get_project(project_id))

    async def create_project(self, name: str, idempotency_key: str | None = None) -> Project:
        """A new project (retried safely under ``idempotency_key``, a fresh one if None)."""
        return await self.send(Plans.create_project(name, idempotency_key))

    async def rename_project(self, project_id: str, name: str, if_match: str | None = None
                       ) -> Project:
        """Rename; with ``if_match`` (an ETag) only if unchanged since (else 412)."""
        return await self.send(Plans.rename_project(project_id, name, if_match))

    async def delete_project(self, project_id: str, if_match: str | None = None) -> bool:
        """Delete for good."""
        return await self.send(Plans.delete_project(project_id, if_match))

    async def usage(self, days: int = 30, account: str | None = None) -> UsageReport:
        """The account's keys' usage per day (needs ``account.admin``)."""
        return await self.send(Plans.usage(days, account))

    async def iter_projects(self, page_size: int = 200, **filters: Any
                            ) -> AsyncIterator[Project]:
        """Every project, page after page."""
        cursor = None
        while True:
            page = await self.send(Plans.list_projects(page_size, cursor, **filters))
            for project in page.data:
                yield project
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def walk(self, page: Callable[[str | None], Call[Page[T]]]) -> AsyncIterator[T]:
        """Every item of the pages ``page(cursor)`` plans, fetched as they are consumed."""
        cursor = None
        while True:
            found = await self.send(page(cursor))
            for item in found.data:
                yield item
            if found.next_cursor is None:
                return
            cursor = found.next_cursor

    async def get_track(self, project_id: str, track_id: str) -> Track:
        """One track of a project."""
        return await self.send(Plans.get_track(project_id, track_id))

    async def add_track(self, project_id: str, name: str, channels: int | None = None,
                  idempotency_key: str | None = None) -> Track:
        """A new track at the end of the project (retried safely under ``idempotency_key``)."""
        return await self.send(Plans.add_track(project_id, name, channels, idempotency_key))

    async def change_track(self, project_id: str, track_id: str, *, name: str | None = None,
                     gain_db: float | None = None, pan: float | None = None,
                     mute: bool | None = None, if_match: str | None = None) -> Track:
        """Rename or remix a track (only what is not None); with ``if_match`` only if unchanged
        since (else 412). ValueError when nothing is to change."""
        change = {"name": name, "gain_db": gain_db, "pan": pan, "mute": mute}
        return await self.send(Plans.change_track(project_id, track_id, change, if_match))

    async def list_releases(self, limit: int = 50, cursor: str | None = None,
                            status: str | None = None) -> Page[Release]:
        """One page of the account's releases (``status``: draft, ready, blocked)."""
        return await self.send(Plans.list_releases(limit, cursor, status))

    async def get_release(self, release_id: str) -> Release:
        """One release."""
        return await self.send(Plans.get_release(release_id))

    async def list_release_deliveries(self, release_id: str, limit: int = 50,
                                      cursor: str | None = None,
                                state: str | None = None) -> Page[ReleaseDelivery]:
        """One page of a release's deliveries to stores (filter ``state``)."""
        return await self.send(Plans.list_release_deliveries(release_id, limit, cursor, state))

    async def retry_delivery(self, release_id: str, delivery_id: str,
                             idempotency_key: str | None = None) -> ReleaseDelivery:
        """Send a dead delivery of a release again (needs ``distribution.deliver``): the same
        message, attempts reset; it comes back ``queued``. A 409 :class:`ApiError` when it
        is not dead. Retried safely under ``idempotency_key`` (a fresh one if None)."""
        return await self.send(Plans.retry_delivery(release_id, delivery_id, idempotency_key))

    async def list_presave_campaigns(self, limit: int = 50, cursor: str | None = None,
                                     release_id: str | None = None) -> Page[PresaveCampaign]:
        """One page of the account's pre-save campaigns, oldest first (filter
        ``release_id``; needs ``distribution.read``)."""
        return await self.send(Plans.list_presave_campaigns(limit, cursor, release_id))

    async def list_release_presave_campaigns(self, release_id: str, limit: int = 50,
                                             cursor: str | None = None) -> Page[PresaveCampaign]:
        """One page of a release's pre-save campaigns, oldest first (a 404
        :class:`ApiError` for a release the account does not have)."""
        return await self.send(Plans.list_release_presave_campaigns(release_id, limit, cursor))

    async def get_presave_campaign(self, campaign_id: str) -> PresaveCampaign:
        """One pre-save campaign with its pre-saves per service."""
        return await self.send(Plans.get_presave_campaign(campaign_id))

    async def create_presave_campaign(self, release_id: str, *, title: str | None = None,
                                      artist: str | None = None, release_date: str | None = None,
                                      services: list[str] | None = None,
                                      idempotency_key: str | None = None) -> PresaveCampaign:
        """Start a pre-save campaign for a release (needs ``distribution.releases``);
        what is None comes from the release (its title, artists and date; every service).
        A 400 :class:`ApiError` for an unknown service or a date not YYYY-MM-DD. Retried
        safely under ``idempotency_key`` (a fresh one if None)."""
        return await self.send(Plans.create_presave_campaign(
            release_id, title, artist, release_date, services, idempotency_key))

    async def list_royalty_statements(self, limit: int = 50,
                                      cursor: str | None = None) -> Page[RoyaltyStatement]:
        """One page of the imported royalty statements (needs ``distribution.royalties``)."""
        return await self.send(Plans.list_royalty_statements(limit, cursor))

    async def get_royalty_statement(self, statement_id: str) -> RoyaltyStatement:
        """One royalty statement."""
        return await self.send(Plans.get_royalty_statement(statement_id))

    async def list_beats(self, limit: int = 50, cursor: str | None = None,
                         status: str | None = None) -> Page[Beat]:
        """One page of the beats the account sells, newest first (filter ``status``)."""
        return await self.send(Plans.list_beats(limit, cursor, status))

    async def get_beat(self, beat_id: str) -> Beat:
        """One beat with its licence tiers."""
        return await self.send(Plans.get_beat(beat_id))

    async def list_orders(self, limit: int = 50, cursor: str | None = None,
                          status: str | None = None) -> Page[Order]:
        """One page of the sales of the account's beats (filter ``status``)."""
        return await self.send(Plans.list_orders(limit, cursor, status))

    async def get_order(self, order_id: str) -> Order:
        """One order."""
        return await self.send(Plans.get_order(order_id))

    async def create_order(self, beat_id: str, tier: str, *, buyer_email: str | None = None,
                           buyer_reference: str | None = None,
                           idempotency_key: str | None = None) -> Order:
        """A sandbox sale of one of the account's beats on sale in ``tier`` (a test-mode
        key with ``marketplace.sandbox`` only: a live key gets a 403 :class:`ApiError`):
        a paid ``Order`` and its licence, simulated (no Stripe, no money).
        ``buyer_email`` and ``buyer_reference`` are kept in the order's note. Retried
        safely under ``idempotency_key`` (a fresh one if None)."""
        return await self.send(Plans.create_order(beat_id, tier, buyer_email,
                                                  buyer_reference, idempotency_key))

    async def list_licences(self, limit: int = 50, cursor: str | None = None) -> Page[Licence]:
        """One page of the licences the account bought (needs ``marketplace.library``)."""
        return await self.send(Plans.list_licences(limit, cursor))

    async def get_licence(self, licence_id: str) -> Licence:
        """One licence."""
        return await self.send(Plans.get_licence(licence_id))

    def iter_releases(self, status: str | None = None,
                      page_size: int = 200) -> AsyncIterator[Release]:
        """Every release, page after page."""
        return self.walk(lambda c: Plans.list_releases(limit=page_size, cursor=c, status=status))

    def iter_release_deliveries(self, release_id: str, state: str | None = None,
                                page_size: int = 200) -> AsyncIterator[ReleaseDelivery]:
        """Every delivery of a release."""
        return self.walk(lambda c: Plans.list_release_deliveries(release_id, limit=page_size,
                                                                 cursor=c, state=state))

    def iter_presave_campaigns(self, release_id: str | None = None, page_size: int = 200
                               ) -> AsyncIterator[PresaveCampaign]:
        """Every pre-save campaign of the account (or of ``release_id``), oldest first."""
        return self.walk(lambda c: Plans.list_presave_campaigns(limit=page_size, cursor=c,
                                                                release_id=release_id))

    def iter_royalty_statements(self, page_size: int = 200) -> AsyncIterator[RoyaltyStatement]:
        """Every royalty statement."""
        return self.walk(lambda c: Plans.list_royalty_statements(limit=page_size, cursor=c))

    def iter_beats(self, status: str | None = None, page_size: int = 200) -> AsyncIterator[Beat]:
        """Every beat, newest first."""
        return self.walk(lambda c: Plans.list_beats(limit=page_size, cursor=c, status=status))

    def iter_orders(self, status: str | None = None, page_size: int = 200) -> AsyncIterator[Order]:
        """Every order."""
        return self.walk(lambda c: Plans.list_orders(limit=page_size, cursor=c, status=status))

    def iter_licences(self, page_size: int = 200) -> AsyncIterator[Licence]:
        """Every licence bought."""
        return self.walk(lambda c: Plans.list_licences(limit=page_size, cursor=c))

    async def list_transcripts(self, project_id: str, limit: int = 50,
                         cursor: str | None = None) -> Page[TranscriptSummary]:
        """One page of a project's transcripts (one per transcribed clip, by clip id),
        without their words."""
        return await self.send(Plans.list_transcripts(project_id, limit, cursor))

    def iter_transcripts(self, project_id: str, page_size: int = 200
                         ) -> AsyncIterator[TranscriptSummary]:
        """Every transcript of a project, by clip id."""
        return self.walk(lambda c: Plans.list_transcripts(project_id, limit=page_size,
                                                          cursor=c))

    async def get_transcript(self, project_id: str, clip_id: str) -> Transcript:
        """A clip's transcript with every word and its timing (404 until one is made)."""
        return await self.send(Plans.get_transcript(project_id, clip_id))

    async def list_transcription_jobs(self, project_id: str, limit: int = 50,
                                cursor: str | None = None,
                                status: str | None = None) -> Page[TranscriptionJob]:
        """One page of a project's transcription jobs, oldest first (filter ``status``)."""
        return await self.send(Plans.list_transcription_jobs(project_id, limit, cursor, status))

    def iter_transcription_jobs(self, project_id: str, status: str | None = None,
                                page_size: int = 200) -> AsyncIterator[TranscriptionJob]:
        """Every transcription job of a project, oldest first."""
        return self.walk(lambda c: Plans.list_transcription_jobs(
            project_id, limit=page_size, cursor=c, status=status))

    async def get_transcription_job(self, project_id: str, job_id: str) -> TranscriptionJob:
        """One transcription job's state and progress."""
        return await self.send(Plans.get_transcription_job(project_id, job_id))

    async def start_transcription(self, project_id: str, clip_id: str, language: str | None = None,
                            idempotency_key: str | None = None) -> TranscriptionJob:
        """Queue the transcription of a clip (needs ``project.edit`` and the editor role) in
        ``language`` (a code, alias or English name; None: detect it); retried safely under
        ``idempotency_key`` (a fresh one if None)."""
        return await self.send(Plans.start_transcription(project_id, clip_id, language,
                                                         idempotency_key))

    async def wait_for_transcription(self, project_id: str, job_id: str, *, poll_s: float = 1.0,
                               timeout_s: float = 600.0) -> TranscriptionJob:
        """The job once it is finished (done, failed or cancelled), asked every ``poll_s``
        seconds; :class:`TimeoutError` if it is not after ``timeout_s``."""
        started = time.monotonic()
        while True:
            job = await self.get_transcription_job(project_id, job_id)
            waited = time.monotonic() - started
            if job.finished:
                return job
            if waited >= timeout_s:
                raise TimeoutError(NOT_FINISHED.format(job_id=job_id, project_id=project_id,
                                                       status=job.status, waited=waited))
            await asyncio.sleep(min(poll_s, max(timeout_s - waited, 0.0)))

    async def cancel_transcription(self, project_id: str, job_id: str,
                                   idempotency_key: str | None = None) -> TranscriptionJob:
        """Cancel a queued or running job (needs ``project.edit`` and the editor role); a
        finished job comes back unchanged."""
        return await self.send(Plans.cancel_transcription(project_id, job_id,
                                                          idempotency_key))

    async def edit_transcript(self, project_id: str, clip_id: str, *,
                              delete: list[int] | None = None,
                              order: list[int] | None = None, ripple: bool = True,
                              idempotency_key: str | None = None,
                              words: list[str] | None = None) -> EditedTranscript:
        """Edit a clip's audio through its words (needs ``project.edit`` and the editor
        role): delete the words at these indices (from 0, as ``Transcript.words`` lists
        them) or play them in this ``order``; ``ripple=False`` leaves gaps. Pass the
        ``words`` you read (their texts, in order) and an edit that another one overtook
        raises a 409 :class:`ApiError` instead of landing on other words. Retried safely
        under ``idempotency_key`` (a fresh one if None): a repeated deletion would delete
        more words."""
        return await self.send(Plans.edit_transcript(project_id, clip_id, delete, order,
                                                     ripple, idempotency_key, words))

    async def undo_transcript_edit(self, project_id: str, idempotency_key: str | None = None
                                   ) -> TranscriptEditStep:
        """Undo the project's last text edit, whichever clip it edited (needs
        ``project.edit`` and the editor role); a 409 :class:`ApiError` when none is left.
        Retried safely under ``idempotency_key`` (a fresh one if None): a repeated undo
        would take back one more edit."""
        return await self.send(Plans.undo_transcript_edit(project_id, idempotency_key))

    async def redo_transcript_edit(self, project_id: str, idempotency_key: str | None = None
                                   ) -> TranscriptEditStep:
        """Redo the project's last undone text edit (needs ``project.edit`` and the editor
        role); a 409 :class:`ApiError` when none is left. Retried safely under
        ``idempotency_key`` (a fresh one if None)."""
        return await self.send(Plans.redo_transcript_edit(project_id, idempotency_key))

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

