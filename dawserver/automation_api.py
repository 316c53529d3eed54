"""Writing automation from the page's fader moves, through :mod:`collab.automation_write`.

``POST /projects/{id}/automation/write`` (editor) carries the events of one control
during one play pass, in batches: ``{"pass_id", "track", "param", "start", "events":
[[frame, value, held], ...], "now"}``; the batch with ``"stop": frame`` ends the pass.
The first batch of a pass makes a :class:`~collab.automation_write.LaneWriter` from the
lane as it is then (mode, points, the track's static value); every batch applies the
pass's edit so far to the room's document, so every peer sees the points arrive and
the engine plays them (the same broadcast path as any edit).

A pass lives in this server process's memory until its ``stop`` or for
``PASS_IDLE_SECONDS`` without a batch; a batch for a pass this process does not hold
(after a restart) starts the pass again from the lane as it is then, under a new pass id
(so what the pass wrote before stays).

Bounds: event frames 0..2**53 (422), :data:`collab.automation_write.MAX_PASS_EVENTS`
events per pass (413), :data:`MAX_OPEN_PASSES` open passes per user and project and
:data:`MAX_PASSES` per process (429), :data:`PASS_MAX_SECONDS` per pass.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import Field

from collab.automation_write import (
    WRITING_MODES,
    LaneWriter,
    PassTooLong,
    apply_edit,
    lane_mode,
    writer_for,
)
from collab.errors import ProjectNotFound, SchemaError
from dsp_core.session import MAX_AUTOMATION_FRAME

from .keys import AUTOMATION_PASSES, ROOMS
from .permissions import PROJECT_EDIT
from .plugin_api import (
    BadRequest,
    Model,
    NotFound,
    PayloadTooLarge,
    Request,
    Route,
    TooManyRequests,
)

#: A pass without a batch for this long is forgotten (its points stay in the document).
PASS_IDLE_SECONDS = 120.0
#: A pass older than this is forgotten even while batches come (its points stay).
PASS_MAX_SECONDS = 3600.0
#: The most events in one batch (a page sends one batch every ~100 ms).
MAX_EVENTS = 20000
#: The most passes one user holds open in one project at once (one per moved control).
MAX_OPEN_PASSES = 32
#: The most passes a server process holds at once, over every user and project.
MAX_PASSES = 4096

Frame = Annotated[int, Field(ge=0, le=MAX_AUTOMATION_FRAME)]


class WriteBatch(Model):
    """Control events of one pass: ``events`` are ``[frame, value, held]``."""

    pass_id: str = Field(min_length=1, max_length=64)
    track: str = Field(min_length=1, max_length=200)
    param: str
    start: int = Field(ge=0, le=MAX_AUTOMATION_FRAME)
    events: list[tuple[Frame, float, bool]] = Field(default_factory=list,
                                                    max_length=MAX_EVENTS)
    now: int | None = Field(None, ge=0, le=MAX_AUTOMATION_FRAME)
    stop: int | None = Field(None, ge=0, le=MAX_AUTOMATION_FRAME)


class Written(Model):
    """What the pass holds now: its mode, the points of its stretches still open to it
    (those it released and wrote before are left to peers), the points changed by this
    batch, and whether the pass is over (a stop, or its lane set to off or read)."""

    mode: str
    points: int
    changed: int
    done: bool


@dataclass
class _Pass:
    writer: LaneWriter
    used: float
    born: float
    #: The leading stretches that were closed when the room last stored an edit of the
    #: pass: settled, left to peers (:meth:`~collab.automation_write.LaneWriter.edit`).
    settled: int = 0


def _passes(app: Any) -> dict[tuple[str, ...], _Pass]:
    passes = app[AUTOMATION_PASSES]
    now = time.monotonic()
    for key in [k for k, p in passes.items()
                if now - p.used > PASS_IDLE_SECONDS or now - p.born > PASS_MAX_SECONDS]:
        del passes[key]
    return passes


def _room_for(passes: dict[tuple[str, ...], _Pass], project_id: str, user: str) -> None:
    """Refuse a new pass past :data:`MAX_OPEN_PASSES` of this user in this project, or
    past :data:`MAX_PASSES` in this process."""
    mine = sum(1 for k in passes if k[0] == project_id and k[1] == user)
    if mine >= MAX_OPEN_PASSES:
        raise TooManyRequests(f"{mine} automation passes are open for you in this project; "
                              "stop one (send its batch with \"stop\") or wait "
                              f"{int(PASS_IDLE_SECONDS)} s",
                              headers={"Retry-After": str(int(PASS_IDLE_SECONDS))})
    if len(passes) >= MAX_PASSES:
        raise TooManyRequests("this server holds too many automation passes; try again in "
                              f"{int(PASS_IDLE_SECONDS)} s",
                              headers={"Retry-After": str(int(PASS_IDLE_SECONDS))})


def _fresh_id(document: Any, batch: WriteBatch) -> str:
    """The batch's pass id, or one derived from it when the lane already holds points of
    that pass (a pass this process lost: its points must not count as stale)."""
    points = (document.automation(batch.track).get(batch.param) or {}).get("points") or {}
    if not any(str(k).startswith(f"{batch.pass_id}.") for k in points):
        return batch.pass_id
    return f"{batch.pass_id[:56]}-{uuid.uuid4().hex[:7]}"


async def write_automation(request: Request) -> Written:
    """Apply a batch of one control's events to its lane (editor)."""
    batch: WriteBatch = request.body
    project_id = request.params["project_id"]
    key = (project_id, request.user, batch.pass_id, batch.track, batch.param)
    passes = _passes(request.app)
    if key not in passes:
        _room_for(passes, project_id, request.user)
    result: dict[str, Any] = {}

    def change(document: Any) -> None:
        held = passes.get(key)
        if held is None:
            now = time.monotonic()
            held = passes[key] = _Pass(writer_for(document, batch.track, batch.param,
                                                  start=batch.start,
                                                  pass_id=_fresh_id(document, batch)),
                                       now, now)
        held.used = time.monotonic()
        writer, stop = held.writer, batch.stop
        if writer.writes and lane_mode(document, batch.track, batch.param) \
                not in WRITING_MODES:  # set to off or read meanwhile: it stops writing now
            stop = writer.last_frame if stop is None else min(stop, writer.last_frame)
        else:
            for frame, value, is_held in batch.events:
                writer.feed(frame, value, is_held)
        last = batch.events[-1][0] if batch.events else batch.start
        edit = writer.stop(stop, held.settled) if stop is not None else \
            writer.edit(batch.now if batch.now is not None else last, held.settled)
        result.update(mode=writer.mode, points=len(edit.points), done=stop is not None,
                      changed=apply_edit(document, batch.track, batch.param, edit)
                      if writer.writes else 0)
        closed.append(writer.closed)

    closed: list[int] = []  # the pass's stretches closed when this edit was made
    try:
        async with request.app[ROOMS].use(project_id) as room:
            await room.edit(change)
        if closed and key in passes:  # stored: those are in the lane now, the peers'
            passes[key].settled = closed[-1]
    except ProjectNotFound as exc:
        raise NotFound(str(exc)) from None
    except PassTooLong as exc:
        passes.pop(key, None)
        raise PayloadTooLarge(str(exc)) from None
    except (SchemaError, ValueError) as exc:
        passes.pop(key, None)
        raise BadRequest(str(exc)) from None
    if result.get("done"):
        passes.pop(key, None)
    return Written(**result)


ROUTES = [
    Route(method="POST", path="/projects/{project_id}/automation/write",
          handler=write_automation, permission=PROJECT_EDIT, body=WriteBatch,
          response=Written, max_body=1024 * 1024),
]
