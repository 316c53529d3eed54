"""HTTP routes of waveform videos: queue a render of a project's audio, follow it.

``POST /api/social/waveforms`` checks the asset (the account's own, with an audio
stream that fits the network's video length) and queues ``social.waveform``: 202 and
the job; ``GET /api/social/waveforms/{job_id}`` gives its state, progress and, once
done, the media reference to attach to a post.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from business.social.permissions import COMPOSE, READ
from business.social.routes import BASE, _api
from business.social.validation import rules_for
from business.social.waveform import Request as Render
from business.social.waveform import WaveformError, audio_duration
from business.social.waveform_jobs import WAVEFORM, WaveformRun
from dawserver.plugin_api import NotFound, Reply, Request, Route, Unprocessable
from jobs import UnknownJob

WAVEFORMS = f"{BASE}/waveforms"


class WaveformJob(BaseModel):
    """A render: its state (``queued``, ``running``, ``retrying``, ``done``, ``dead``),
    progress 0..1, the error of a refused one and, when done, the media reference."""

    job_id: str
    state: str
    progress: float
    error: str = ""
    media: dict[str, Any] | None = None


def _out(record: Any) -> WaveformJob:
    return WaveformJob(job_id=record.id, state=record.state, progress=record.progress,
                       error=record.last_error if record.state == "dead" else "",
                       media=record.result if isinstance(record.result, dict) else None)


@_api
async def start_render(request: Request) -> Reply:
    """Check the asset and queue its render; 202 and the job."""
    body: WaveformRun = request.body
    context, account = request.context, request.account_id
    try:
        rules_for(body.network)
        render = Render(body.network, body.shape, body.style, body.title)
    except (ValueError, WaveformError) as exc:
        raise Unprocessable(str(exc)) from exc
    audio = await context.asset_path(account, body.asset_id)
    if audio is None:
        raise NotFound(f"there is no asset {body.asset_id!r} in this account's projects")
    if body.image_asset_id and await context.asset_path(account, body.image_asset_id) is None:
        raise NotFound(f"there is no asset {body.image_asset_id!r} in this account's projects")
    try:
        duration = await audio_duration(audio)
    except WaveformError as exc:
        raise Unprocessable(str(exc)) from exc
    rules = rules_for(render.network)
    if rules.max_video_s is not None and duration > rules.max_video_s:
        raise Unprocessable(f"the audio lasts {duration:.1f} s; {rules.name} takes videos up "
                            f"to {rules.max_video_s:g} s: cut it or choose another network")
    if rules.min_video_s is not None and duration < rules.min_video_s:
        raise Unprocessable(f"the audio lasts {duration:.1f} s; {rules.name} needs videos of "
                            f"at least {rules.min_video_s:g} s")
    record = await context.enqueue(WAVEFORM, body, account_id=account)
    return Reply(_out(record), status=202, headers={"Location": f"{WAVEFORMS}/{record.id}"})


@_api
async def render_state(request: Request) -> WaveformJob:
    """One render of the account: state, progress, error or media."""
    job_id = request.params["job_id"]
    try:
        record = await request.context.background.queue.get(request.account_id, job_id)
    except UnknownJob:
        record = None
    if record is None or record.queue != WAVEFORM:
        raise NotFound(f"there is no waveform render {job_id!r} in this account")
    return _out(record)


WAVEFORM_ROUTES = [
    Route(method="POST", path=WAVEFORMS, handler=start_render, permission=COMPOSE,
          body=WaveformRun, response=WaveformJob, status=202),
    Route(method="GET", path=f"{WAVEFORMS}/{{job_id}}", handler=render_state, permission=READ,
          response=WaveformJob),
]
