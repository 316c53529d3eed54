"""HTTP route of the immersive mix (see docs/immersive.md).

- ``GET /projects/{project_id}/render/immersive?layout=7.1.4&start=0&frames=48000``
  (viewer): the live document's immersive mix (bed and objects, each track's route as
  the document has it now) panned to ``layout`` (``7.1.4``, ``5.1``, ``stereo`` or
  ``binaural`` for headphones), as a float WAV of the layout's channels in BS.2051 order.
  The page's monitoring picker plays it; the tests read where an object was placed.

Sources are the project's own assets (anything else answers 422 naming the clip);
another account's project answers 404 like a missing one. The whole mix is rendered and
the window cut from it, so long projects take as long as a bounce: at most
:data:`MAX_IMMERSIVE_SECONDS` of project are rendered here.
"""

from __future__ import annotations

import asyncio
import io

import numpy as np
import soundfile as sf
from aiohttp import web
from pydantic import Field

from collab.errors import ProjectNotFound
from dsp_core.errors import DspError
from dsp_core.immersive_render import TARGETS, render_immersive
from dsp_core.session import Session

from .api import MAX_START_FRAME
from .assets import assets_of
from .clip_sources import playable_session
from .keys import ROOMS
from .loop_slots import LoopSlots
from .permissions import PROJECT_READ
from .plugin_api import BadRequest, Media, NotFound, Query, Request, Route, Unprocessable

#: The longest project (seconds of the rate) this route renders; longer: bounce it.
MAX_IMMERSIVE_SECONDS = 300
#: The longest window (seconds) one request returns.
MAX_WINDOW_SECONDS = 60
#: Renders at once per event loop: each holds the whole mix (up to ~700 MB at 7.1.4).
CONCURRENT_RENDERS = 2
_render_slots = LoopSlots(CONCURRENT_RENDERS)


class ImmersiveWindow(Query):
    """Which layout, and which frames of the live document's immersive mix."""

    layout: str = Field("7.1.4", json_schema_extra={"enum": list(TARGETS)})
    start: int = Field(0, ge=0, le=MAX_START_FRAME)
    frames: int = Field(48000, ge=1)


async def _playable(request: Request, project_id: str, session: Session) -> Session:
    store = await assets_of(request.app, project_id)
    playable, refused = await playable_session(store, project_id, session)
    if refused:
        raise Unprocessable("cannot render: " + "; ".join(map(str, refused)))
    return playable


async def render_immersive_window(request: Request) -> web.Response:
    """The live document's immersive mix in one layout, as a float WAV."""
    project_id, window = request.params["project_id"], request.query
    if window.layout not in TARGETS:
        raise BadRequest(f"layout {window.layout!r} is not one of {', '.join(TARGETS)}")
    try:
        async with request.app[ROOMS].use(project_id) as room:
            session = room.document.to_session()
    except ProjectNotFound as exc:
        raise NotFound(str(exc)) from None
    rate = session.sample_rate
    if session.length > MAX_IMMERSIVE_SECONDS * rate:
        raise Unprocessable(f"the project is longer than {MAX_IMMERSIVE_SECONDS} s; "
                            "bounce it instead (POST /projects/{id}/bounces)")
    if window.frames > MAX_WINDOW_SECONDS * rate:
        raise BadRequest(f"frames must be in 1..{MAX_WINDOW_SECONDS * rate} "
                         f"({MAX_WINDOW_SECONDS} s); ask for the next window after it")
    playable = await _playable(request, project_id, session)

    def render_window() -> bytes:
        mix = render_immersive(playable, window.layout)
        out = mix[:, window.start:window.start + window.frames]
        padded = out if out.shape[1] == window.frames else _pad(out, window.frames)
        buffer = io.BytesIO()
        sf.write(buffer, padded.T, rate, format="WAV", subtype="FLOAT")
        return buffer.getvalue()

    try:
        async with _render_slots():
            # in the request's context: the server's confinement of plug-in state files
            body = await asyncio.to_thread(render_window)
    except DspError as exc:
        raise Unprocessable(f"cannot render: {exc}") from None
    return web.Response(body=body, content_type="audio/wav")


def _pad(audio: np.ndarray, frames: int) -> np.ndarray:
    """``audio`` with silence after it up to ``frames`` frames."""
    out = np.zeros((audio.shape[0], frames), dtype=np.float32)
    out[:, :audio.shape[1]] = audio
    return out


ROUTES = [
    Route(method="GET", path="/projects/{project_id}/render/immersive",
          handler=render_immersive_window, permission=PROJECT_READ, query=ImmersiveWindow,
          response=Media("audio/wav")),
]
