"""Test helpers: a signed-in person's project with audio and a finished bounce, and its files.

Shared by the project deletion tests and the erasure tests (a deleted project's files
must be gone from disk).
"""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from accounts_helpers import Person

from dawserver.keys import ROOMS
from dsp_core.session import Clip, Track


def tone(hz: float) -> bytes:
    """Half a second of a quiet tone as a WAV file (stored by the hash of its bytes)."""
    t = np.arange(24000) / 48000
    buffer = io.BytesIO()
    sf.write(buffer, (0.2 * np.sin(2 * np.pi * hz * t)).astype(np.float32), 48000,
             format="WAV", subtype="FLOAT")
    return buffer.getvalue()


async def upload(person: Person, project_id: str, data: bytes) -> tuple[int, dict]:
    """Upload ``data`` to the project's assets; the status and the answer."""
    async with person.http.post(f"{person.base_url}/projects/{project_id}/assets?name=t.wav",
                                data=data, headers={"X-CSRF-Token": person.csrf}) as response:
        return response.status, await response.json()


async def made_project(person: Person, name: str, account: str = "") -> str:
    """Make a project for ``account`` (the person's own by default); its id."""
    status, project, _ = await person.call("POST", f"/accounts/{account or person.id}/projects",
                                           {"name": name})
    assert status == 201, project
    return project["id"]


async def with_audio_and_bounce(app: Any, person: Person, project_id: str, audio: bytes
                                ) -> dict:
    """Upload ``audio``, put it on a track, bounce the mix; the asset."""
    status, asset = await upload(person, project_id, audio)
    assert status == 201, asset
    async with app[ROOMS].use(project_id) as room:
        await room.edit(lambda d: d.add_clip(d.add_track(Track("t1", name="Vocal")),
                                             Clip(asset["source"], 0, 24000)))
        await room.edit(lambda d: d.add_comment(person.id, "the secret bridge"))
    status, job, _ = await person.call("POST", f"/projects/{project_id}/bounces",
                                       {"format": "wav"})
    assert status == 202, job
    async with asyncio.timeout(60):
        while job["status"] not in ("done", "failed", "cancelled"):
            await asyncio.sleep(0.05)
            _, job, _ = await person.call("GET", f"/projects/{project_id}/bounces/{job['id']}")
    assert job["status"] == "done", job
    return asset


def files_of(root: Path, *needles: str) -> list[Path]:
    """Files under ``root`` whose path names one of ``needles``."""
    return [path for path in root.rglob("*") if path.is_file()
            and any(needle in str(path) for needle in needles)]
