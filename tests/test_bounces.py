"""Bounce jobs over HTTP: progress, the rendered file, cancel, bad options, plug-in hook."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import aiohttp
import numpy as np
import pytest
import pytest_asyncio
import soundfile as sf
from nodepeer import free_port, running_server

from dawserver.config import ServerConfig
from dawserver.keys import STORE, TOKENS
from dawserver.plugin_api import hookimpl
from dawserver.plugins import PLUGIN_CONTEXT_KEY
from dawserver.projects import import_session
from dsp_core import Engine
from dsp_core.session import Clip, Session, Track

pytestmark = pytest.mark.asyncio


class RenderRecorder:
    """A plug-in that remembers every project_rendered call."""

    def __init__(self) -> None:
        self.calls: list[dict] = []

    @hookimpl
    def project_rendered(self, context, account_id, project_id, path, metadata) -> None:
        self.calls.append({"account": account_id, "project": project_id, "path": path,
                           **metadata})


@pytest_asyncio.fixture
async def server(tmp_path: Path):
    audio = tmp_path / "tone.flac"
    t = np.arange(48000 * 3) / 48000
    sf.write(audio, (0.25 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 48000)
    session = Session(name="B", tracks=[
        Track("t1", pan=-0.5, clips=[Clip(str(audio), 1000, 48000 * 2, fade_in=480)]),
        Track("t2", pan=0.5, gain_db=-6, clips=[Clip(str(audio), 24000, 48000)])])
    config = ServerConfig(port=free_port(), data_dir=tmp_path / "data")
    recorder = RenderRecorder()
    async with running_server(config) as app, aiohttp.ClientSession() as http:
        app[PLUGIN_CONTEXT_KEY].manager.register(recorder, name="test-recorder")
        info = await import_session(app[STORE], session)
        token = app[TOKENS].issue(info.project_id, "editor", "eddie")
        yield {"app": app, "http": http, "base": config.base_url, "project": info.project_id,
               "headers": {"Authorization": f"Bearer {token}"}, "session": session,
               "recorder": recorder, "data": config.data_dir}


async def _call(s, method: str, path: str, **kwargs):
    async with s["http"].request(method, s["base"] + path, headers=s["headers"],
                                 **kwargs) as response:
        body = await response.read()
        if response.content_type == "application/json":
            return response.status, await response.json()
        return response.status, body


async def _wait(s, job_id: str) -> dict:
    seen = []
    for _ in range(400):
        status, job = await _call(s, "GET", f"/projects/{s['project']}/bounces/{job_id}")
        assert status == 200
        seen.append(job["progress"])
        if job["status"] in ("done", "failed", "cancelled"):
            assert seen == sorted(seen), "progress never goes back"
            return job
        await asyncio.sleep(0.02)
    raise AssertionError("bounce did not finish")


async def test_bounce_renders_the_document_and_tells_the_plugins(server) -> None:
    s = server
    status, job = await _call(s, "POST", f"/projects/{s['project']}/bounces",
                              json={"sample_rate": 96000, "bit_depth": "24", "format": "flac"})
    assert status == 202 and job["status"] in ("queued", "rendering")
    job = await _wait(s, job["id"])
    assert job["status"] == "done", job
    status, audio = await _call(s, "GET", job["audio"])
    assert status == 200
    data, rate = sf.read(io.BytesIO(audio), dtype="float32")
    assert rate == 96000 and data.shape == (job["frames"], 2)
    want = Engine(s["session"], sample_rate=96000).render(0, job["frames"])
    assert np.abs(data.T - want).max() < 3 / 2**23  # 24-bit with TPDF dither
    call = s["recorder"].calls[-1]
    # plug-in data is kept per project: the render belongs to the project's account
    assert (call["account"], call["project"]) == (s["project"], s["project"])
    assert call["sample_rate"] == 96000
    assert Path(call["path"]).exists()


async def test_cancelled_bounce_leaves_no_file(server) -> None:
    s = server
    _, job = await _call(s, "POST", f"/projects/{s['project']}/bounces",
                         json={"sample_rate": 192000, "tail": 60})
    status, _ = await _call(s, "DELETE", f"/projects/{s['project']}/bounces/{job['id']}")
    assert status == 200
    job = await _wait(s, job["id"])
    assert job["status"] == "cancelled" and job["audio"] is None
    assert [p for p in (s["data"] / "bounces").rglob("*") if p.is_file()] == []
    assert s["recorder"].calls == []


@pytest.mark.parametrize("body,message", [
    ({"sample_rate": 12345}, "sample_rate 12345 is not supported"),
    ({"bit_depth": "8"}, "bit_depth '8' is not supported"),
    ({"format": "flac", "bit_depth": "32f"}, "use wav (any depth) or flac"),
    ({"tail": 99}, "tail 99 must be seconds"),
])
async def test_bad_bounce_options_get_a_clear_error(server, body, message) -> None:
    status, answer = await _call(server, "POST", f"/projects/{server['project']}/bounces",
                                 json=body)
    assert status == 422 and message in answer["error"]


async def test_viewer_cannot_start_a_bounce(server) -> None:
    s = server
    viewer = s["app"][TOKENS].issue(s["project"], "viewer", "vic")
    async with s["http"].post(f"{s['base']}/projects/{s['project']}/bounces", json={},
                              headers={"Authorization": f"Bearer {viewer}"}) as response:
        assert response.status == 403
