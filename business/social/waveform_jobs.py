"""The ``social.waveform`` job: render a project's audio asset to a waveform video.

The video goes into the plug-in's data directory (``social/waveforms/<account>/``) under
a media reference ``wf_<hex>`` derived from the job, so a retried job writes the same
one; the job's result is the reference the composer attaches to a post, and dispatch
finds the file through :func:`media_file` (which finds the plug-in's uploads,
:mod:`.uploads`, too).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from business.social.uploads import is_upload, upload_file
from business.social.waveform import (
    PREFIX,
    Request,
    WaveformError,
    reference,
    render,
    video_path,
)
from dawserver.plugin_api import JobContext, Permanent, PluginContext, QueueSettings

WAVEFORM = "social.waveform"


class WaveformRun(BaseModel):
    """Payload of a ``social.waveform`` job: which audio, for which network, how drawn."""

    asset_id: str
    network: str
    shape: str = "square"
    style: str = "waves"
    title: str = Field("", max_length=120)
    image_asset_id: str | None = None


def queue_settings() -> QueueSettings:
    """Two renders at a time per process; a failed render is retried twice."""
    return QueueSettings(max_attempts=3, concurrency=2, lease_s=300.0)


async def _asset(context: PluginContext, account_id: str, asset_id: str, what: str) -> str:
    path = await context.asset_path(account_id, asset_id)
    if path is None:
        raise Permanent(f"there is no {what} asset {asset_id!r} in this account's projects")
    return path


async def render_waveform(context: PluginContext, payload: WaveformRun,
                          job: JobContext) -> dict[str, Any]:
    """Render the video (progress reported as it goes); its media reference."""
    account = job.job.account_id
    audio = await _asset(context, account, payload.asset_id, "audio")
    image = (await _asset(context, account, payload.image_asset_id, "image")
             if payload.image_asset_id else None)
    media_id = PREFIX + hashlib.sha256(str(job.job.id).encode()).hexdigest()[:24]
    out = video_path(context.data_dir, account, media_id)
    if out is None:
        raise Permanent(f"account id {account!r} cannot name a folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_suffix(".part.mp4")
    try:
        request = Request(payload.network, payload.shape, payload.style, payload.title, image)
        item = await render(audio, partial, request,
                            progress=lambda f: job.progress(f, "rendering"))
    except (WaveformError, ValueError) as exc:
        partial.unlink(missing_ok=True)
        raise Permanent(str(exc)) from exc
    os.replace(partial, out)
    return reference(media_id, item)


async def media_file(context: PluginContext, account_id: str, asset_id: str) -> str | None:
    """The local file of a post's media: a rendered video or an upload of ours
    (:mod:`.uploads`), else a platform asset; None for an unknown id and for another
    account's alike."""
    if is_upload(asset_id):
        path = upload_file(context.data_dir, account_id, asset_id)
        return None if path is None else str(path)
    if asset_id.startswith(PREFIX):
        path = video_path(context.data_dir, account_id, asset_id)
        return str(path) if path is not None and path.is_file() else None
    return await context.asset_path(account_id, asset_id)


def erase_videos(data_dir: str | Path, account_id: str) -> int:
    """Delete every rendered video of ``account_id`` (an erased account); how many."""
    folder = video_path(data_dir, account_id, PREFIX + "0" * 24)
    if folder is None or not folder.parent.is_dir():
        return 0
    count = len(list(folder.parent.glob("*.mp4")))
    shutil.rmtree(folder.parent)
    return count
