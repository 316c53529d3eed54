"""GraphQL mutations: the core's writes (projects, tracks, transcription jobs, text edits
and their undo and redo), run by the very handlers of ``/api/v1``.

Each mutation checks the permission its REST route declares (the key's scope and the
role, on the project for project writes), then calls the REST handler with the same
body model, so validation, ``idempotencyKey`` (REST's ``Idempotency-Key``), ``ifMatch``
(``If-Match``) and errors are REST's. An error is a GraphQL error whose
``extensions`` carry REST's ``status`` and a ``code`` (``FORBIDDEN``, ``NOT_FOUND``,
``PRECONDITION_FAILED``, ``BAD_USER_INPUT``...); a project the caller holds no role on is
``NOT_FOUND``, as on REST.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

import strawberry
from aiohttp import web
from graphql import GraphQLError
from pydantic import BaseModel, ValidationError
from strawberry.types.field import StrawberryField

from ...authorization import check_permission
from ...declarations import Permission, Request
from ...errors import ApiError, NotFound
from ...permissions import PROJECT_EDIT, PROJECT_MANAGE, PROJECTS_CREATE
from .. import routes as rest
from .. import track_edits
from .. import transcripts as rest_transcripts
from ..resources import NewProject, ProjectChange
from ..resources import Project as ProjectView
from ..resources import Track as TrackView
from .loaders import loaders_of
from .schema import Project, Track, TranscriptionJob, _project

#: REST's statuses as GraphQL error codes (any other: the status's name).
CODES = {HTTPStatus.UNPROCESSABLE_ENTITY: "BAD_USER_INPUT", HTTPStatus.BAD_REQUEST: "BAD_REQUEST"}


@dataclasses.dataclass(frozen=True)
class _Call:
    """What REST handlers read of the HTTP request, for a mutation: the app, the method
    and a path naming the mutation and the ids it acts on (idempotency keys tell
    requests apart by them)."""

    app: web.Application
    method: str
    path: str
    remote: str


@strawberry.type(description="A project deleted for good.")
class DeletedProject:
    id: strawberry.ID
    deleted: bool


@strawberry.type(description="A transcript's words edited: the clips that now play them "
                               "(read their transcripts from project.transcriptsConnection).")
class EditedTranscript:
    clips: list[strawberry.ID]


@strawberry.type(description="A text edit undone or redone: the project's clips now (read "
                               "their transcripts from project.transcriptsConnection), and "
                               "whether another step can be taken either way.")
class TranscriptEditStep:
    clips: list[strawberry.ID]
    can_undo: bool
    can_redo: bool

    @classmethod
    def of(cls, data: dict[str, Any]) -> TranscriptEditStep:
        """From REST's answer (:class:`..transcripts.TranscriptEditStep`)."""
        step = rest_transcripts.TranscriptEditStep.model_validate(data)
        return cls(clips=[strawberry.ID(c) for c in step.clips], can_undo=step.can_undo,
                   can_redo=step.can_redo)


def _error(exc: ApiError) -> GraphQLError:
    status = HTTPStatus(int(exc.status))
    extensions = {"code": CODES.get(status, status.name), "status": int(status),
                  **{k: v for k, v in exc.extra.items() if k != "type"}}
    return GraphQLError(exc.message, extensions=extensions)


def _invalid(exc: ValidationError) -> GraphQLError:
    fields = [{"field": ".".join(str(p) for p in e["loc"]) or "body", "message": e["msg"]}
              for e in exc.errors()]
    detail = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
    return GraphQLError(f"invalid input: {detail}",
                        extensions={"code": "BAD_USER_INPUT", "status": 422, "fields": fields})


def _body(model: type[BaseModel], data: dict[str, Any]) -> BaseModel:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _invalid(exc) from None


async def _run(info: strawberry.Info, field: str, handler: Callable[[Request], Awaitable[Any]],
               permission: Permission, *, params: dict[str, str] | None = None,
               body: BaseModel | None = None, idempotency_key: str | None = None,
               if_match: str | None = None) -> dict[str, Any]:
    """The JSON answer of REST ``handler`` run for mutation ``field``."""
    principal, context = info.context["principal"], info.context["context"]
    params = params or {}
    project_id = params.get("project_id")
    if project_id is not None:
        role = (await loaders_of(info).roles()).get(project_id)
        if role is None:
            raise _error(NotFound(f"there is no project {project_id!r}"))
        principal = dataclasses.replace(principal, role=role)
    headers = {name: value for name, value in (("Idempotency-Key", idempotency_key),
                                               ("If-Match", if_match)) if value is not None}
    # the ids it acts on are part of the path, as in REST's paths: the same key sent for
    # another project (an undo has no body to tell them apart) is another request
    path = f"graphql:{field}" + "".join(f"/{k}={v}" for k, v in sorted(params.items()))
    native = _Call(info.context["app"], "POST", path, info.context["remote"])
    request = Request(params=params, query=None, body=body, principal=principal,
                      context=context, headers=headers, native=native)
    try:
        check_permission(context, principal, permission)
        response = await handler(request)
    except ApiError as exc:
        raise _error(exc) from None
    return json.loads(response.body)


def _track(data: dict[str, Any]) -> Track:
    return Track.of(TrackView.model_validate(data))


def _transcript_edit_step(field: str, handler: Callable[[Request], Awaitable[Any]],
                          description: str) -> StrawberryField:
    """The mutation ``field`` that takes one step through a project's text-edit history
    with REST ``handler`` (undo or redo): the same arguments, answer and permission."""

    async def step(self: Mutation, info: strawberry.Info, project_id: strawberry.ID,
                   idempotency_key: str | None = None) -> TranscriptEditStep:
        return TranscriptEditStep.of(await _run(
            info, field, handler, PROJECT_EDIT,
            params={"project_id": str(project_id)}, idempotency_key=idempotency_key))

    return strawberry.mutation(description=description)(step)


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Create an empty project in the account the request "
                                     "acts for (scope projects.create). The same "
                                     "idempotencyKey and name answer the first project "
                                     "again.")
    async def create_project(self, info: strawberry.Info, name: str,
                             idempotency_key: str | None = None) -> Project:
        data = await _run(info, "createProject", rest.create_project, PROJECTS_CREATE,
                          body=_body(NewProject, {"name": name}),
                          idempotency_key=idempotency_key)
        return _project(ProjectView.model_validate(data))

    @strawberry.mutation(description="Rename a project (owner; scope project.manage); "
                                     "ifMatch: its ETag from REST, to refuse a lost update.")
    async def rename_project(self, info: strawberry.Info, id: strawberry.ID, name: str,
                             if_match: str | None = None) -> Project:
        data = await _run(info, "renameProject", rest.rename_project, PROJECT_MANAGE,
                          params={"project_id": str(id)},
                          body=_body(ProjectChange, {"name": name}), if_match=if_match)
        return _project(ProjectView.model_validate(data))

    @strawberry.mutation(description="Delete a project for good (owner; scope "
                                     "project.manage).")
    async def delete_project(self, info: strawberry.Info, id: strawberry.ID,
                             if_match: str | None = None) -> DeletedProject:
        data = await _run(info, "deleteProject", rest.delete_project, PROJECT_MANAGE,
                          params={"project_id": str(id)}, if_match=if_match)
        return DeletedProject(id=strawberry.ID(data["id"]), deleted=data["deleted"])

    @strawberry.mutation(description="Add an empty track at the end of the project's "
                                     "track list (editor; scope project.edit).")
    async def add_track(self, info: strawberry.Info, project_id: strawberry.ID, name: str,
                        channels: int = 1, idempotency_key: str | None = None) -> Track:
        data = await _run(info, "addTrack", track_edits.add_track, PROJECT_EDIT,
                          params={"project_id": str(project_id)},
                          body=_body(track_edits.NewTrack, {"name": name,
                                                            "channels": channels}),
                          idempotency_key=idempotency_key)
        return _track(data)

    @strawberry.mutation(description="Rename a track (editor; scope project.edit).")
    async def rename_track(self, info: strawberry.Info, project_id: strawberry.ID,
                           track_id: strawberry.ID, name: str,
                           if_match: str | None = None) -> Track:
        return _track(await _run(
            info, "renameTrack", track_edits.change_track, PROJECT_EDIT,
            params={"project_id": str(project_id), "track_id": str(track_id)},
            body=_body(track_edits.TrackChange, {"name": name}), if_match=if_match))

    @strawberry.mutation(description="Set a track's fader (gainDb, -144 to +24), pan "
                                     "(-1 to 1) or mute; what is left out stays (editor; "
                                     "scope project.edit).")
    async def set_track_mix(self, info: strawberry.Info, project_id: strawberry.ID,
                            track_id: strawberry.ID, gain_db: float | None = None,
                            pan: float | None = None, mute: bool | None = None,
                            if_match: str | None = None) -> Track:
        change = {k: v for k, v in (("gain_db", gain_db), ("pan", pan), ("mute", mute))
                  if v is not None}
        return _track(await _run(
            info, "setTrackMix", track_edits.change_track, PROJECT_EDIT,
            params={"project_id": str(project_id), "track_id": str(track_id)},
            body=_body(track_edits.TrackChange, change), if_match=if_match))

    @strawberry.mutation(description="Queue the transcription of a clip (editor; scope "
                                     "project.edit) in a language (a code, alias or English "
                                     "name; null: detect it); follow the job with "
                                     "project.transcriptionJob until it is finished. The same "
                                     "idempotencyKey and input answer the first job again.")
    async def start_transcription(self, info: strawberry.Info, project_id: strawberry.ID,
                                  clip_id: strawberry.ID, language: str | None = None,
                                  idempotency_key: str | None = None) -> TranscriptionJob:
        data = await _run(info, "startTranscription", rest_transcripts.create_transcription_job,
                          PROJECT_EDIT, params={"project_id": str(project_id)},
                          body=_body(rest_transcripts.NewTranscriptionJob,
                                     {"clip_id": str(clip_id), "language": language}),
                          idempotency_key=idempotency_key)
        return TranscriptionJob.of(str(project_id),
                                   rest_transcripts.TranscriptionJob.model_validate(data))

    @strawberry.mutation(description="Cancel a queued or running transcription job (editor; "
                                     "scope project.edit); a finished job is answered "
                                     "unchanged. Another project's job is NOT_FOUND.")
    async def cancel_transcription(self, info: strawberry.Info, project_id: strawberry.ID,
                                   job_id: strawberry.ID) -> TranscriptionJob:
        data = await _run(info, "cancelTranscription", rest_transcripts.cancel_transcription_job,
                          PROJECT_EDIT, params={"project_id": str(project_id),
                                                "job_id": str(job_id)})
        return TranscriptionJob.of(str(project_id),
                                   rest_transcripts.TranscriptionJob.model_validate(data))

    @strawberry.mutation(description="Edit a clip's audio through its transcript's words "
                                     "(editor; scope project.edit): delete the words at "
                                     "these indices (Word.index), or play them in this "
                                     "order; ripple: false leaves gaps where words were "
                                     "deleted; words: the words' texts as you read them, "
                                     "in order (CONFLICT, nothing edited, when the "
                                     "transcript holds others now). Answers the clips that "
                                     "now play the words. The same idempotencyKey and input "
                                     "answer the first edit again (a deletion repeated "
                                     "deletes more words).")
    async def edit_transcript(self, info: strawberry.Info, project_id: strawberry.ID,
                              clip_id: strawberry.ID, delete: list[int] | None = None,
                              order: list[int] | None = None, ripple: bool = True,
                              idempotency_key: str | None = None,
                              words: list[str] | None = None) -> EditedTranscript:
        data = await _run(info, "editTranscript", rest_transcripts.edit_transcript,
                          PROJECT_EDIT,
                          params={"project_id": str(project_id), "clip_id": str(clip_id)},
                          body=_body(rest_transcripts.TranscriptEdit,
                                     {"delete": delete, "order": order, "ripple": ripple,
                                      "words": words}),
                          idempotency_key=idempotency_key)
        return EditedTranscript(clips=[strawberry.ID(c) for c in data["clips"]])

    undo_transcript_edit = _transcript_edit_step(
        "undoTranscriptEdit", rest_transcripts.undo_transcript_edit,
        "Undo the project's last text edit (editor; scope project.edit): clips, transcripts "
        "and sound as before it. Edits are undone last first, whichever clip they edited; "
        "CONFLICT when none is left (the history holds the edits made since the project was "
        "last opened on the server). The same idempotencyKey answers the first undo again "
        "(an undo repeated takes back one more edit).")

    redo_transcript_edit = _transcript_edit_step(
        "redoTranscriptEdit", rest_transcripts.redo_transcript_edit,
        "Redo the project's last undone text edit (editor; scope project.edit); CONFLICT "
        "when none is left (a new edit clears what was undone). The same idempotencyKey "
        "answers the first redo again.")
