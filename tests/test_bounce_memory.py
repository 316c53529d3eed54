"""Bounces keep no memory for good: the source cache keeps one reading of each source,
not one more per bounce, and a second bounce reads it from the cache (the asset cache
marks a use in the file's access time, not the mtime the source cache keys on)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import numpy as np
import pytest
import pytest_asyncio
import soundfile as sf
from loopback import free_port
from nodepeer import running_server

from dawserver.assets import ASSETS
from dawserver.config import ServerConfig
from dawserver.keys import STORE, TOKENS
from dawserver.projects import import_session
from dsp_core.audio_io import SOURCE_CACHE
from dsp_core.session import Clip, Session, Track

pytestmark = pytest.mark.asyncio

BOUNCES = 4


@pytest_asyncio.fixture
async def server(tmp_path: Path):
    audio = tmp_path / "tone.flac"
    t = np.arange(48000) / 48000
    sf.write(audio, (0.25 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 48000)
    session = Session(name="M", tracks=[
        Track("t1", clips=[Clip(str(audio), 0, 48000)]),
        Track("t2", clips=[Clip(str(audio), 12000, 24000)])])
    config = ServerConfig(port=free_port(), data_dir=tmp_path / "data")
    async with running_server(config) as app, aiohttp.ClientSession() as http:
        info = await import_session(app[STORE], session, assets=app[ASSETS])
        token = app[TOKENS].issue(info.project_id, "editor", "eddie")
        yield {"http": http, "base": config.base_url, "project": info.project_id,
               "headers": {"Authorization": f"Bearer {token}"}, "data": config.data_dir}


async def _bounce(s) -> None:
    url = f"{s['base']}/projects/{s['project']}/bounces"
    async with s["http"].post(url, headers=s["headers"], json={"format": "wav"}) as response:
        job = await response.json()
        assert response.status == 202, job
    deadline = asyncio.get_running_loop().time() + 120
    while asyncio.get_running_loop().time() < deadline:
        async with s["http"].get(f"{url}/{job['id']}", headers=s["headers"]) as response:
            job = await response.json()
        if job["status"] in ("done", "failed", "cancelled"):
            assert job["status"] == "done", job
            return
        await asyncio.sleep(0.02)  # polling the job, as a client does; nothing is timed
    raise AssertionError("bounce did not finish")


def _readings_under(folder: Path) -> list[tuple[str, int, int, int]]:
    root = str(folder.resolve())
    return [key for key in list(SOURCE_CACHE._items) if key[0].startswith(root)]


async def test_repeated_bounces_keep_one_reading_of_each_source(server) -> None:
    misses = SOURCE_CACHE.misses
    for _ in range(BOUNCES):
        await _bounce(server)
    assert SOURCE_CACHE.misses - misses == 1  # decoded by the first bounce only
    readings = _readings_under(server["data"])
    # one asset (both clips play it) at one rate: one reading, however many bounces
    assert len({(path, rate) for path, _, _, rate in readings}) == 1
    assert len(readings) == 1, readings
