"""``/api/v1`` track writes: add a track, change its name or mix (gain, pan, mute).

Each write is a server-side document edit (``room.edit``), so it reaches every open
editor over the same broadcast path as a client's edit. POST honours
``Idempotency-Key``; PATCH honours ``If-Match`` with the track's ETag. GraphQL's
``addTrack``, ``renameTrack`` and ``setTrackMix`` call these handlers.
"""

from __future__ import annotations

from aiohttp import web
from pydantic import Field, model_validator

from collab.errors import ProjectNotFound
from collab.schema import SchemaError, new_id
from dsp_core.session import Track as SessionTrack

from ..declarations import Model
from ..errors import NotFound, Unprocessable
from ..keys import ROOMS
from ..permissions import PROJECT_EDIT
from ..plugin_api import Request, Route
from . import services
from .conditional import etag_of, require_match
from .idempotency import idempotent
from .resources import V1, Name, Track
from .respond import answer, representation
from .state import api_state

TRACKS = f"{V1}/projects/{{project_id}}/tracks"
#: The loudest a track's fader goes (the document's limit).
MAX_GAIN_DB = 24.0
NOTHING_TO_CHANGE = "send at least one of name, gain_db, pan, mute"


class NewTrack(Model):
    """A new, empty track at the end of the track list."""

    name: Name
    channels: int = Field(1, ge=1, le=2, description="1 (mono) or 2 (stereo)")


class TrackChange(Model):
    """What to change on a track; fields left out stay as they are."""

    name: Name | None = None
    gain_db: float | None = Field(None, ge=-144.0, le=MAX_GAIN_DB,
                                  description="Fader in dB, -144 to +24.")
    pan: float | None = Field(None, ge=-1.0, le=1.0, description="-1 (left) to 1 (right).")
    mute: bool | None = None

    @model_validator(mode="after")
    def _something(self) -> TrackChange:
        if all(getattr(self, name) is None for name in type(self).model_fields):
            raise ValueError(NOTHING_TO_CHANGE)
        return self


async def _edit(request: Request, change: object) -> None:
    project_id = request.params["project_id"]
    try:
        async with request.app[ROOMS].use(project_id) as room:
            await room.edit(change)  # type: ignore[arg-type]
    except ProjectNotFound:
        raise NotFound(f"there is no project {project_id!r}") from None
    except SchemaError as exc:
        raise Unprocessable(str(exc)) from None


async def _track(request: Request, track_id: str) -> Track:
    for track in await services.tracks(request.app, request.params["project_id"]):
        if track.id == track_id:
            return track
    raise NotFound(f"the project has no track {track_id!r}")


async def add_track(request: Request) -> web.Response:
    """Add an empty track at the end of the project's track list (editor).

    Send `Idempotency-Key` to make retries safe: the same key and body answer the
    track the first request added, and add no other.
    """
    body: NewTrack = request.body

    async def run() -> web.Response:
        track_id = new_id("track")
        await _edit(request, lambda document: document.add_track(
            SessionTrack(id=track_id, name=body.name, channels=body.channels)))
        found = await _track(request, track_id)
        location = f"{TRACKS.format(project_id=request.params['project_id'])}/{track_id}"
        return answer(request, found, status=201, headers={"Location": location})

    return await idempotent(request, api_state(request.context).idempotency, run)


async def change_track(request: Request) -> web.Response:
    """Rename a track or move its fader, pan or mute (editor).

    Send `If-Match` with the track's ETag (a GET without `fields`) to refuse a lost
    update: 412 when the track changed since.
    """
    track_id = request.params["track_id"]
    require_match(request.headers, etag_of(representation(await _track(request, track_id))))
    fields = request.body.model_dump(exclude_none=True)
    await _edit(request, lambda document: document.update_track(track_id, **fields))
    return answer(request, await _track(request, track_id))


ROUTES = [
    Route(method="POST", path=TRACKS, handler=add_track, permission=PROJECT_EDIT,
          response=Track, body=NewTrack, status=201, problem=True, name="v1_add_track"),
    Route(method="PATCH", path=f"{TRACKS}/{{track_id}}", handler=change_track,
          permission=PROJECT_EDIT, response=Track, body=TrackChange, problem=True,
          name="v1_change_track"),
]
