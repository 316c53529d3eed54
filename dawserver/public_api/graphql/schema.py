"""The GraphQL read types and ``Query``: me, projects (a cursor connection), tracks, assets,
transcripts and their words, transcription jobs (cursor connections, and v1's deprecated
whole lists).

Resolvers read through :mod:`.loaders` (batched) and :mod:`..services`, so GraphQL
shows what ``/api/v1`` shows. Permissions are REST's: the route needs
``project.read``; listing projects needs ``account.read`` too (an API key must hold
both scopes); a project the caller holds no role on is ``null``, as a missing one.
"""

from __future__ import annotations

import strawberry
from graphql import GraphQLError

from transcription.errors import JobError
from transcription.jobs import CANCELLED, DONE, FAILED, FINISHED, QUEUED, RUNNING
from transcription.jobs import Job as CoreJob
from transcription.transcript import Transcript as Spoken

from ...declarations import Principal
from ...keys import ACCOUNTS
from ...permissions import ACCOUNT_READ
from ...transcription_service import TRANSCRIPTION
from .. import resources
from .. import transcripts as rest_transcripts
from .connections import PageInfo, page
from .limits import CONNECTIONS, MAX_PAGE, UNPAGED
from .loaders import loaders_of

#: A transcription job's states, as REST's ``status`` filter takes them.
JOB_STATUSES = (QUEUED, RUNNING, DONE, FAILED, CANCELLED)
NO_SCOPE = ("this API key lacks the scope {scope!r} that {field} needs (it holds: "
            "{scopes}); make a key with that scope")
#: Why v1's whole lists are deprecated: they stay until a new major version.
WHOLE_LIST = ("Use {instead}(first, after), which pages them. This whole list stays "
              "in v1 and counts as {size:,} items in the query cost.")


@strawberry.type(description="A clip on a track (positions in frames).")
class Clip:
    id: strawberry.ID
    source: str
    position: int
    length: int
    offset: int
    gain_db: float
    fade_in: int
    fade_out: int


@strawberry.type(description="A track of the project's document (change it with addTrack, "
                               "renameTrack, setTrackMix).")
class Track:
    id: strawberry.ID
    name: str
    position: int
    channels: int
    gain_db: float
    pan: float
    mute: bool
    solo: bool
    clips: list[Clip]

    @classmethod
    def of(cls, track: resources.Track) -> Track:
        return cls(**{**track.model_dump(exclude={"clips"}),
                      "clips": [Clip(**c.model_dump()) for c in track.clips]})


@strawberry.type(description="An audio file uploaded to or recorded in the project.")
class Asset:
    id: strawberry.ID
    name: str
    format: str
    sample_rate: int
    channels: int
    frames: int
    duration: float
    bytes: int
    download_url: str
    peaks_url: str
    project_id: strawberry.Private[str]

    @strawberry.field(description="The project the asset belongs to.")
    async def project(self, info: strawberry.Info) -> Project | None:
        found = await loaders_of(info).projects.load(self.project_id)
        return _project(found) if found is not None else None

    @classmethod
    def of(cls, project_id: str, asset: resources.Asset) -> Asset:
        return cls(**asset.model_dump(), project_id=project_id)


@strawberry.type(description="One word and its span in seconds from the clip's start.")
class Word:
    index: int = strawberry.field(description="its place in the transcript, from 0 (what "
                                              "editTranscript's delete and order take)")
    text: str
    start_s: float
    end_s: float
    probability: float = strawberry.field(description="the recogniser's confidence, 0 to 1")


@strawberry.type
class WordEdge:
    cursor: str
    node: Word


@strawberry.type(description="A page of a transcript's words, in spoken order.")
class WordConnection:
    edges: list[WordEdge]
    page_info: PageInfo


@strawberry.type(description="A clip's transcript (its id is the clip's id); words on demand.")
class Transcript:
    id: strawberry.ID
    language: str
    model: str
    duration_s: float
    word_count: int
    text: str
    spoken: strawberry.Private[Spoken]
    project_id: strawberry.Private[str]

    def _words(self) -> list[Word]:
        full = rest_transcripts.transcript_view(str(self.id), self.spoken)
        return [Word(index=i, **w.model_dump()) for i, w in enumerate(full.words)]

    @strawberry.field(description="Every word with its start and end (seconds from the "
                                  "clip's start) and confidence.",
                      deprecation_reason=WHOLE_LIST.format(instead="wordsConnection",
                                                           size=UNPAGED["words"]))
    def words(self) -> list[Word]:
        return self._words()

    @strawberry.field(description="The words with their start and end (seconds from the "
                                  "clip's start) and confidence, in spoken order (a cursor "
                                  f"connection; first: 1 to {MAX_PAGE}).")
    def words_connection(self, info: strawberry.Info,
                         first: int = CONNECTIONS["wordsConnection"],
                         after: str | None = None) -> WordConnection:
        pairs, page_info = page(info, f"transcript-words:{self.project_id}:{self.id}",
                                self._words(), lambda w: (w.index,), first, after)
        return WordConnection(edges=[WordEdge(cursor=c, node=w) for c, w in pairs],
                              page_info=page_info)

    @classmethod
    def of(cls, project_id: str, clip_id: str, spoken: Spoken) -> Transcript:
        summary = rest_transcripts.summary_view(clip_id, spoken)
        return cls(**summary.model_dump(), spoken=spoken, project_id=project_id)


@strawberry.type
class TranscriptEdge:
    cursor: str
    node: Transcript


@strawberry.type(description="A page of a project's transcripts, by clip id.")
class TranscriptConnection:
    edges: list[TranscriptEdge]
    page_info: PageInfo


@strawberry.type(description="A transcription job: follow it until status is done, failed or "
                               "cancelled (start one with startTranscription).")
class TranscriptionJob:
    id: strawberry.ID
    clip_id: str | None
    language: str | None = strawberry.field(description="asked for; null: detected")
    status: str = strawberry.field(description="queued, running, done, failed or cancelled")
    progress: float
    error: str | None
    created_at: str
    updated_at: str
    project_id: strawberry.Private[str]

    @strawberry.field(description="Whether the job will change no more (done, failed or "
                                  "cancelled).")
    def finished(self) -> bool:
        return self.status in FINISHED

    @strawberry.field(description="The clip's transcript once the job is done (null before; "
                                  "the document's current one, text edits included).")
    async def transcript(self, info: strawberry.Info) -> Transcript | None:
        if self.status != DONE or self.clip_id is None:
            return None
        found = await loaders_of(info).transcripts(self.project_id)
        spoken = (found or {}).get(self.clip_id)
        return (Transcript.of(self.project_id, self.clip_id, spoken)
                if spoken is not None else None)

    @classmethod
    def of(cls, project_id: str, job: rest_transcripts.TranscriptionJob) -> TranscriptionJob:
        """From REST's view of the job (:func:`..transcripts.job_view`)."""
        return cls(**job.model_dump(exclude={"transcript_url"}), project_id=project_id)

    @classmethod
    def of_core(cls, project_id: str, job: CoreJob) -> TranscriptionJob:
        return cls.of(project_id, rest_transcripts.job_view(project_id, job))


@strawberry.type
class TranscriptionJobEdge:
    cursor: str
    node: TranscriptionJob


@strawberry.type(description="A page of a project's transcription jobs, oldest first.")
class TranscriptionJobConnection:
    edges: list[TranscriptionJobEdge]
    page_info: PageInfo


@strawberry.type(description="A project the caller may open, and their role on it.")
class Project:
    id: strawberry.ID
    name: str
    created_at: str
    role: str

    @strawberry.field(description="The tracks and clips of the current document.")
    async def tracks(self, info: strawberry.Info) -> list[Track]:
        found = await loaders_of(info).tracks(str(self.id))
        return [Track.of(t) for t in found or []]

    @strawberry.field(description="The project's audio, oldest first.")
    async def assets(self, info: strawberry.Info) -> list[Asset]:
        return [Asset.of(str(self.id), a) for a in await loaders_of(info).assets.load(
            str(self.id))]

    @strawberry.field(description="The clips' transcripts, by clip id (summaries; ask for "
                                  "words when you need them).",
                      deprecation_reason=WHOLE_LIST.format(instead="transcriptsConnection",
                                                           size=UNPAGED["transcripts"]))
    async def transcripts(self, info: strawberry.Info) -> list[Transcript]:
        project_id = str(self.id)
        found = await loaders_of(info).transcripts(project_id) or {}
        return [Transcript.of(project_id, clip_id, found[clip_id]) for clip_id in sorted(found)]

    @strawberry.field(description="The clips' transcripts, by clip id (a cursor connection, "
                                  f"first: 1 to {MAX_PAGE}; REST's cursors; ask for words "
                                  "when you need them).")
    async def transcripts_connection(self, info: strawberry.Info,
                                     first: int = CONNECTIONS["transcriptsConnection"],
                                     after: str | None = None) -> TranscriptConnection:
        project_id = str(self.id)
        found = await loaders_of(info).transcripts(project_id) or {}
        pairs, page_info = page(info, rest_transcripts.transcripts_scope(project_id),
                                list(found), lambda clip_id: (clip_id,), first, after)
        return TranscriptConnection(edges=[
            TranscriptEdge(cursor=c, node=Transcript.of(project_id, clip_id, found[clip_id]))
            for c, clip_id in pairs], page_info=page_info)

    @strawberry.field(description="One clip's transcript; null when the clip has none.")
    async def transcript(self, info: strawberry.Info, clip_id: strawberry.ID
                         ) -> Transcript | None:
        spoken = (await loaders_of(info).transcripts(str(self.id)) or {}).get(
            str(clip_id))
        return (Transcript.of(str(self.id), str(clip_id), spoken)
                if spoken is not None else None)

    async def _jobs(self, info: strawberry.Info, status: str | None
                    ) -> list[TranscriptionJob]:
        if status is not None and status not in JOB_STATUSES:
            raise GraphQLError(f"status must be one of {', '.join(JOB_STATUSES)}, got "
                               f"{status!r}", extensions={"code": "BAD_USER_INPUT"})
        jobs = await loaders_of(info).transcription_jobs.load(str(self.id))
        views = [TranscriptionJob.of_core(str(self.id), j) for j in jobs
                 if status is None or j.status == status]
        # in the connection's (and REST's) order: times to the millisecond, then ids
        return sorted(views, key=rest_transcripts.job_key)

    @strawberry.field(description="The project's transcription jobs, oldest first; status: "
                                  "queued, running, done, failed or cancelled.",
                      deprecation_reason=WHOLE_LIST.format(
                          instead="transcriptionJobsConnection",
                          size=UNPAGED["transcriptionJobs"]))
    async def transcription_jobs(self, info: strawberry.Info, status: str | None = None
                                 ) -> list[TranscriptionJob]:
        return await self._jobs(info, status)

    @strawberry.field(description="The project's transcription jobs, oldest first (a cursor "
                                  f"connection, first: 1 to {MAX_PAGE}; REST's cursors); "
                                  "status: queued, running, done, failed or cancelled.")
    async def transcription_jobs_connection(
            self, info: strawberry.Info, first: int = CONNECTIONS["transcriptionJobsConnection"],
            after: str | None = None, status: str | None = None
    ) -> TranscriptionJobConnection:
        jobs = await self._jobs(info, status)
        pairs, page_info = page(info, rest_transcripts.jobs_scope(str(self.id)), jobs,
                                rest_transcripts.job_key, first, after)
        return TranscriptionJobConnection(
            edges=[TranscriptionJobEdge(cursor=c, node=j) for c, j in pairs],
            page_info=page_info)

    @strawberry.field(description="One transcription job of the project; null when the "
                                  "project has no such job.")
    async def transcription_job(self, info: strawberry.Info, id: strawberry.ID
                                ) -> TranscriptionJob | None:
        try:
            found = await info.context["app"][TRANSCRIPTION].get(str(self.id), str(id))
        except JobError:  # another project's job, or none: as REST's 404
            return None
        return TranscriptionJob.of_core(str(self.id), found)


@strawberry.type
class ProjectEdge:
    cursor: str
    node: Project


@strawberry.type(description="A page of projects, oldest first.")
class ProjectConnection:
    edges: list[ProjectEdge]
    page_info: PageInfo


@strawberry.type(description="Who the request acts for.")
class Me:
    id: strawberry.ID
    name: str
    kind: str
    via: str


def _principal(info: strawberry.Info) -> Principal:
    return info.context["principal"]


def _need_scope(principal: Principal, scope: str, field: str) -> None:
    if principal.scopes is not None and scope not in principal.scopes:
        raise GraphQLError(NO_SCOPE.format(scope=scope, field=field,
                                           scopes=", ".join(principal.scopes) or "none"),
                           extensions={"code": "FORBIDDEN"})


def _project(view: resources.Project) -> Project:
    return Project(**view.model_dump())


@strawberry.type
class Query:
    @strawberry.field(description="The account the request acts for.")
    async def me(self, info: strawberry.Info) -> Me:
        principal, app = _principal(info), info.context["app"]
        if principal.via == "token" or principal.admin or ACCOUNTS not in app:
            return Me(id=strawberry.ID(principal.account_id), name=principal.account_id,
                      kind="project", via=principal.via or "token")
        account = await app[ACCOUNTS].store.account(principal.account_id)
        return Me(id=strawberry.ID(principal.account_id),
                  name=account.name if account else "", kind=str(account.kind) if account
                  else "", via=principal.via)

    @strawberry.field(description="The projects you may open, oldest first (a cursor "
                                  f"connection; first: 1 to {MAX_PAGE}).")
    async def projects(self, info: strawberry.Info, first: int = CONNECTIONS["projects"],
                       after: str | None = None) -> ProjectConnection:
        principal = _principal(info)
        _need_scope(principal, ACCOUNT_READ.name, "projects")
        loaders = loaders_of(info)
        ids = list(await loaders.roles())
        views = [v for v in await loaders.projects.load_many(ids) if v is not None]
        pairs, page_info = page(info, "projects", views, lambda p: (p.created_at, p.id),
                                first, after)
        return ProjectConnection(edges=[ProjectEdge(cursor=c, node=_project(p))
                                        for c, p in pairs], page_info=page_info)

    @strawberry.field(description="One project; null when it does not exist or is not "
                                  "shared with you.")
    async def project(self, info: strawberry.Info, id: strawberry.ID) -> Project | None:
        found = await loaders_of(info).projects.load(str(id))
        return _project(found) if found is not None else None
