"""ADM BWF bounces over HTTP: ``"format": "adm"`` renders the immersive mix as a job."""

from __future__ import annotations

import asyncio
import io
import struct
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
from dsp_core.immersive import ImmersiveRoute
from dsp_core.immersive_render import render_stems
from dsp_core.session import Clip, Session, Track

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(120)]


def immersive_session(tmp_path: Path) -> Session:
    audio = tmp_path / "tone.flac"
    t = np.arange(48000) / 48000
    sf.write(audio, (0.25 * np.sin(2 * np.pi * 330 * t)).astype(np.float32), 48000)
    return Session(name="Atmos", tracks=[
        Track("obj", name="Bird", clips=[Clip(str(audio), 0, 48000)],
              immersive=ImmersiveRoute("object", azimuth=60.0, elevation=40.0)),
        Track("plain", gain_db=-6, clips=[Clip(str(audio), 12000, 24000)])])


@pytest_asyncio.fixture
async def server(tmp_path: Path):
    session = immersive_session(tmp_path)
    config = ServerConfig(port=free_port(), data_dir=tmp_path / "data")
    async with running_server(config) as app, aiohttp.ClientSession() as http:
        info = await import_session(app[STORE], session, assets=app[ASSETS])
        token = app[TOKENS].issue(info.project_id, "editor", "eddie")
        yield {"http": http, "base": config.base_url, "project": info.project_id,
               "headers": {"Authorization": f"Bearer {token}"}, "session": session}


async def _call(s, method: str, path: str, **kwargs):
    async with s["http"].request(method, s["base"] + path, headers=s["headers"],
                                 **kwargs) as response:
        body = await response.read()
        if response.content_type == "application/json":
            return response.status, await response.json(), response.headers
        return response.status, body, response.headers


async def test_adm_bounce_writes_the_bed_and_objects_of_the_document(server) -> None:
    s = server
    status, job, _ = await _call(s, "POST", f"/projects/{s['project']}/bounces",
                                 json={"format": "adm"})
    assert status == 202 and job["bit_depth"] == "24", job
    for _ in range(500):
        status, job, _ = await _call(s, "GET", f"/projects/{s['project']}/bounces/{job['id']}")
        if job["status"] in ("done", "failed"):
            break
        await asyncio.sleep(0.02)
    assert job["status"] == "done", job
    status, data, headers = await _call(s, "GET", job["audio"])
    assert status == 200 and ".adm.wav" in headers["Content-Disposition"]
    assert data[:4] == b"RIFF" and b"axml" in data[:8192] and b"chna" in data[:8192]
    assert b'audioObjectName="Bird"' in data[:65536]
    audio, rate = sf.read(io.BytesIO(data), dtype="float32")
    stems = render_stems(s["session"])
    assert rate == 48000 and audio.shape == (stems.frames, 13) == (job["frames"], 13)
    np.testing.assert_allclose(audio[:, :12].T, stems.bed, atol=2 / 2**23)
    np.testing.assert_allclose(audio[:, 12], stems.objects[0].signal, atol=2 / 2**23)
    tracks, uids = struct.unpack("<HH", data[data.index(b"chna") + 8:][:4])
    assert tracks == uids == 13


async def test_adm_bounce_refuses_another_bit_depth(server) -> None:
    status, body, _ = await _call(server, "POST", f"/projects/{server['project']}/bounces",
                                  json={"format": "adm", "bit_depth": "16"})
    assert status == 422  # the API's status for a body that fails validation
    assert "format 'adm' is written as 24-bit PCM" in str(body)
