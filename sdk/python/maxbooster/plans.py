"""Every call of the API planned once as a :class:`Call` (method, path, query, body,
headers, and how its JSON answer becomes a typed value), shared by both clients.

Lists are planned as one page (``limit``, ``cursor``, filters); ids go into paths
percent-encoded. A POST carries an ``Idempotency-Key`` (yours, or a fresh UUID); a PATCH
with ``If-Match`` that meets 412 on a retry after a lost answer is confirmed with a GET.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote

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

T = TypeVar("T")
V1 = "/api/v1"


@dataclass
class Call(Generic[T]):
    """One planned request and how its JSON answer becomes ``T``."""

    method: str
    path: str
    decode: Callable[[Any], T]
    params: dict[str, Any] = field(default_factory=dict)
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    #: Error statuses that, on a retry after a lost answer, may be the lost attempt's
    #: own effect; then ``confirm`` (a follow-up call, or None) and ``confirmed`` (its
    #: answer → this call's answer, None when it is not confirmed) decide.
    lost_statuses: tuple[int, ...] = ()
    confirm: Call[Any] | None = None
    confirmed: Callable[[Any], T | None] = lambda _: None


def _project_path(project_id: str) -> str:
    return f"{V1}/projects/{quote(project_id, safe='')}"


def _pages(item: Callable[[Any], T]) -> Callable[[Any], Page[T]]:
    """A page decoder of items decoded with ``item``."""
    return lambda data: Page([item(x) for x in data["data"]], data.get("next_cursor"))


_page = _pages(Project.from_json)


def _id_path(collection: str, item_id: str) -> str:
    return f"{V1}/{collection}/{quote(item_id, safe='')}"


def _track_path(project_id: str, track_id: str | None = None) -> str:
    tracks = f"{_project_path(project_id)}/tracks"
    return tracks if track_id is None else f"{tracks}/{quote(track_id, safe='')}"


def _transcripts_path(project_id: str, clip_id: str | None = None) -> str:
    found = f"{_project_path(project_id)}/transcripts"
    return found if clip_id is None else f"{found}/{quote(clip_id, safe='')}"


def _jobs_path(project_id: str, job_id: str | None = None) -> str:
    jobs = f"{_project_path(project_id)}/transcription-jobs"
    return jobs if job_id is None else f"{jobs}/{quote(job_id, safe='')}"


def _edits_path(project_id: str, direction: str) -> str:
    return f"{_project_path(project_id)}/transcript-edits/{direction}"


def _presaves_path(release_id: str | None = None) -> str:
    """The account's pre-save campaigns, or one release's."""
    if release_id is None:
        return f"{V1}/presave-campaigns"
    return f"{_id_path('releases', release_id)}/presave-campaigns"


def _idempotent(key: str | None) -> dict[str, str]:
    """The ``Idempotency-Key`` header of a POST: ``key``, or a fresh UUID."""
    return {"Idempotency-Key": key or str(uuid.uuid4())}


def _list(path: str, item: Callable[[Any], T], limit: int, cursor: str | None,
          **filters: Any) -> Call[Page[T]]:
    return Call("GET", path, _pages(item),
                params=_clean({"limit": limit, "cursor": cursor, **filters}))


def _clean(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}


class Plans:
    """The API's calls as :class:`Call` s (shared by both clients)."""

    @staticmethod
    def list_projects(limit: int = 50, cursor: str | None = None, **filters: Any
                      ) -> Call[Page[Project]]:
        return Call("GET", f"{V1}/projects", _page,
                    params=_clean({"limit": limit, "cursor": cursor, **filters}))

    @staticmethod
    def get_project(project_id: str) -> Call[Project]:
        return Call("GET", _project_path(project_id), Project.from_json)

    @staticmethod
    def create_project(name: str, idempotency_key: str | None = None) -> Call[Project]:
        return Call("POST", f"{V1}/projects", Project.from_json, json={"name": name},
                    headers={"Idempotency-Key": idempotency_key or str(uuid.uuid4())})

    @staticmethod
    def rename_project(project_id: str, name: str, if_match: str | None = None
                       ) -> Call[Project]:
        return Call("PATCH", _project_path(project_id), Project.from_json,
                    json={"name": name}, headers={"If-Match": if_match} if if_match else {},
                    lost_statuses=(412,) if if_match else (),
                    confirm=Plans.get_project(project_id),
                    confirmed=lambda found: found if found.name == name.strip() else None)

    @staticmethod
    def delete_project(project_id: str, if_match: str | None = None) -> Call[bool]:
        return Call("DELETE", _project_path(project_id), lambda d: bool(d["deleted"]),
                    headers={"If-Match": if_match} if if_match else {},
                    lost_statuses=(404,), confirmed=lambda _: True)

    @staticmethod
    def usage(days: int = 30, account: str | None = None) -> Call[UsageReport]:
        return Call("GET", f"{V1}/usage", UsageReport.from_json,
                    params=_clean({"days": days, "account": account}))

    @staticmethod
    def get_track(project_id: str, track_id: str) -> Call[Track]:
        return Call("GET", _track_path(project_id, track_id), Track.from_json)

    @staticmethod
    def add_track(project_id: str, name: str, channels: int | None = None,
                  idempotency_key: str | None = None) -> Call[Track]:
        return Call("POST", _track_path(project_id), Track.from_json,
                    json=_clean({"name": name, "channels": channels}),
                    headers={"Idempotency-Key": idempotency_key or str(uuid.uuid4())})

    @staticmethod
    def change_track(project_id: str, track_id: str, change: dict[str, Any],
                     if_match: str | None = None) -> Call[Track]:
        """``change``: some of ``name``, ``gain_db``, ``pan``, ``mute`` (None: unchanged)."""
        wanted = _clean(change)
        if not wanted:
            raise ValueError("change_track needs at least one of name, gain_db, pan, mute")

        expected = {**wanted, "name": wanted["name"].strip()} if "name" in wanted else wanted

        def confirmed(found: Track) -> Track | None:
            return found if all(getattr(found, k) == v for k, v in expected.items()) else None

        return Call("PATCH", _track_path(project_id, track_id), Track.from_json, json=wanted,
                    headers={"If-Match": if_match} if if_match else {},
                    lost_statuses=(412,) if if_match else (),
                    confirm=Plans.get_track(project_id, track_id), confirmed=confirmed)

    @staticmethod
    def list_releases(limit: int = 50, cursor: str | None = None, status: str | None = None
                      ) -> Call[Page[Release]]:
        return _list(f"{V1}/releases", Release.from_json, limit, cursor, status=status)

    @staticmethod
    def get_release(release_id: str) -> Call[Release]:
        return Call("GET", _id_path("releases", release_id), Release.from_json)

    @staticmethod
    def list_release_deliveries(release_id: str, limit: int = 50, cursor: str | None = None,
                                state: str | None = None) -> Call[Page[ReleaseDelivery]]:
        return _list(f"{_id_path('releases', release_id)}/deliveries",
                     ReleaseDelivery.from_json, limit, cursor, state=state)

    @staticmethod
    def retry_delivery(release_id: str, delivery_id: str, idempotency_key: str | None = None
                       ) -> Call[ReleaseDelivery]:
        path = (f"{_id_path('releases', release_id)}/deliveries/"
                f"{quote(delivery_id, safe='')}/retry")
        return Call("POST", path, ReleaseDelivery.from_json,
                    headers=_idempotent(idempotency_key))

    @staticmethod
    def list_presave_campaigns(limit: int = 50, cursor: str | None = None,
                               release_id: str | None = None
                               ) -> Call[Page[PresaveCampaign]]:
        return _list(_presaves_path(), PresaveCampaign.from_json, limit, cursor,
                     release_id=release_id)

    @staticmethod
    def list_release_presave_campaigns(release_id: str, limit: int = 50,
                                       cursor: str | None = None
                                       ) -> Call[Page[PresaveCampaign]]:
        return _list(_presaves_path(release_id), PresaveCampaign.from_json, limit, cursor)

    @staticmethod
    def get_presave_campaign(campaign_id: str) -> Call[PresaveCampaign]:
        return Call("GET", _id_path("presave-campaigns", campaign_id),
                    PresaveCampaign.from_json)

    @staticmethod
    def create_presave_campaign(release_id: str, title: str | None = None,
                                artist: str | None = None, release_date: str | None = None,
                                services: list[str] | None = None,
                                idempotency_key: str | None = None
                                ) -> Call[PresaveCampaign]:
        return Call("POST", _presaves_path(release_id), PresaveCampaign.from_json,
                    json=_clean({"title": title, "artist": artist,
                                 "release_date": release_date, "services": services}),
                    headers=_idempotent(idempotency_key))

    @staticmethod
    def list_royalty_statements(limit: int = 50, cursor: str | None = None
                                ) -> Call[Page[RoyaltyStatement]]:
        return _list(f"{V1}/royalty-statements", RoyaltyStatement.from_json, limit, cursor)

    @staticmethod
    def get_royalty_statement(statement_id: str) -> Call[RoyaltyStatement]:
        return Call("GET", _id_path("royalty-statements", statement_id),
                    RoyaltyStatement.from_json)

    @staticmethod
    def list_beats(limit: int = 50, cursor: str | None = None, status: str | None = None
                   ) -> Call[Page[Beat]]:
        return _list(f"{V1}/beats", Beat.from_json, limit, cursor, status=status)

    @staticmethod
    def get_beat(beat_id: str) -> Call[Beat]:
        return Call("GET", _id_path("beats", beat_id), Beat.from_json)

    @staticmethod
    def list_orders(limit: int = 50, cursor: str | None = None, status: str | None = None
                    ) -> Call[Page[Order]]:
        return _list(f"{V1}/orders", Order.from_json, limit, cursor, status=status)

    @staticmethod
    def get_order(order_id: str) -> Call[Order]:
        return Call("GET", _id_path("orders", order_id), Order.from_json)

    @staticmethod
    def create_order(beat_id: str, tier: str, buyer_email: str | None = None,
                     buyer_reference: str | None = None, idempotency_key: str | None = None
                     ) -> Call[Order]:
        return Call("POST", f"{V1}/orders", Order.from_json,
                    json=_clean({"beat_id": beat_id, "tier": tier, "buyer_email": buyer_email,
                                 "buyer_reference": buyer_reference}),
                    headers=_idempotent(idempotency_key))

    @staticmethod
    def list_licences(limit: int = 50, cursor: str | None = None) -> Call[Page[Licence]]:
        return _list(f"{V1}/licences", Licence.from_json, limit, cursor)

    @staticmethod
    def get_licence(licence_id: str) -> Call[Licence]:
        return Call("GET", _id_path("licences", licence_id), Licence.from_json)

    @staticmethod
    def list_transcripts(project_id: str, limit: int = 50, cursor: str | None = None
                         ) -> Call[Page[TranscriptSummary]]:
        return _list(_transcripts_path(project_id), TranscriptSummary.from_json, limit, cursor)

    @staticmethod
    def get_transcript(project_id: str, clip_id: str) -> Call[Transcript]:
        return Call("GET", _transcripts_path(project_id, clip_id), Transcript.from_json)

    @staticmethod
    def list_transcription_jobs(project_id: str, limit: int = 50, cursor: str | None = None,
                                status: str | None = None) -> Call[Page[TranscriptionJob]]:
        return _list(_jobs_path(project_id), TranscriptionJob.from_json, limit, cursor,
                     status=status)

    @staticmethod
    def get_transcription_job(project_id: str, job_id: str) -> Call[TranscriptionJob]:
        return Call("GET", _jobs_path(project_id, job_id), TranscriptionJob.from_json)

    @staticmethod
    def start_transcription(project_id: str, clip_id: str, language: str | None = None,
                            idempotency_key: str | None = None) -> Call[TranscriptionJob]:
        return Call("POST", _jobs_path(project_id), TranscriptionJob.from_json,
                    json=_clean({"clip_id": clip_id, "language": language}),
                    headers={"Idempotency-Key": idempotency_key or str(uuid.uuid4())})

    @staticmethod
    def cancel_transcription(project_id: str, job_id: str,
                             idempotency_key: str | None = None) -> Call[TranscriptionJob]:
        return Call("POST", f"{_jobs_path(project_id, job_id)}/cancel",
                    TranscriptionJob.from_json,
                    headers={"Idempotency-Key": idempotency_key or str(uuid.uuid4())})

    @staticmethod
    def edit_transcript(project_id: str, clip_id: str, delete: list[int] | None = None,
                        order: list[int] | None = None, ripple: bool = True,
                        idempotency_key: str | None = None, words: list[str] | None = None
                        ) -> Call[EditedTranscript]:
        return Call("POST", f"{_transcripts_path(project_id, clip_id)}/edit",
                    EditedTranscript.from_json,
                    json=_clean({"delete": delete, "order": order, "ripple": ripple,
                                 "words": words}),
                    headers={"Idempotency-Key": idempotency_key or str(uuid.uuid4())})

    @staticmethod
    def undo_transcript_edit(project_id: str, idempotency_key: str | None = None
                             ) -> Call[TranscriptEditStep]:
        return Call("POST", _edits_path(project_id, "undo"), TranscriptEditStep.from_json,
                    headers={"Idempotency-Key": idempotency_key or str(uuid.uuid4())})

    @staticmethod
    def redo_transcript_edit(project_id: str, idempotency_key: str | None = None
                             ) -> Call[TranscriptEditStep]:
        return Call("POST", _edits_path(project_id, "redo"), TranscriptEditStep.from_json,
                    headers={"Idempotency-Key": idempotency_key or str(uuid.uuid4())})
