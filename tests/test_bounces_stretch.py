"""Bounces play the live mix's renders of stretched clips: the derived audio kept beside
the assets is reused both ways (and by ``dawserver render``), Rubber Band runs once."""

from __future__ import annotations

import asyncio
import functools
import io
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import aiohttp
import numpy as np
import pytest
import pytest_asyncio
import soundfile as sf
from loopback import free_port
from nodepeer import running_server
from stretch_helpers import RubberBandRuns, needs_rubberband, restart

import dsp_core.stretch as stretch_module
from dawserver.assets import ASSETS, assets_of
from dawserver.clip_sources import Resolver, playable_session
from dawserver.config import ServerConfig
from dawserver.keys import ROOMS, STORE, TOKENS
from dawserver.live_mix import LiveMix
from dawserver.projects import import_session
from dsp_core import Engine
from dsp_core.project import save_project
from dsp_core.session import Clip, Session, Track

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(300), needs_rubberband]
RATE = 48000
STRETCHED = RATE * 3 // 2
#: A 32-bit float bounce holds the engine's samples as they are.
FLOAT_TOLERANCE = 1e-6
#: How long a bounce or a live mix's render may take on a loaded CI machine (seconds).
WAIT_S = 180.0


@pytest_asyncio.fixture
async def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    tone = tmp_path / "tone.wav"
    sf.write(tone, (0.3 * np.sin(2 * np.pi * 330 * np.arange(RATE) / RATE)).astype(np.float32),
             RATE)
    session = Session(name="S", tracks=[Track("t0", clips=[
        Clip(str(tone), 0, STRETCHED, id="c1", stretch=1.5)])])
    runs = RubberBandRuns.on_path(tmp_path / "counted", monkeypatch)
    restart(monkeypatch)
    config = ServerConfig(port=free_port(), data_dir=tmp_path / "data", engine=False)
    async with running_server(config) as app, aiohttp.ClientSession() as http:
        info = await import_session(app[STORE], session, assets=app[ASSETS])
        token = app[TOKENS].issue(info.project_id, "editor", "eddie")
        yield {"app": app, "http": http, "base": config.base_url, "project": info.project_id,
               "headers": {"Authorization": f"Bearer {token}"}, "runs": runs,
               "tmp": tmp_path}


async def _bounce(s: dict) -> tuple[dict, np.ndarray]:
    """Bounce the project (32-bit float, its rate): the finished job and its audio."""
    url = f"{s['base']}/projects/{s['project']}/bounces"
    async with s["http"].post(url, json={}, headers=s["headers"]) as answer:
        assert answer.status == 202
        job = await answer.json()
    seen = []
    deadline = time.monotonic() + WAIT_S
    while True:
        async with s["http"].get(f"{url}/{job['id']}", headers=s["headers"]) as answer:
            job = await answer.json()
        seen.append(job["progress"])
        if job["status"] in ("done", "failed"):
            break
        assert time.monotonic() < deadline, f"the bounce did not end in {WAIT_S} s: {job}"
        await asyncio.sleep(0.05)
    assert seen == sorted(seen), "progress never goes back"
    if job["status"] != "done":
        return job, np.zeros((2, 0), np.float32)
    async with s["http"].get(s["base"] + job["audio"], headers=s["headers"]) as answer:
        data, rate = sf.read(io.BytesIO(await answer.read()), dtype="float32")
    assert rate == RATE
    return job, np.ascontiguousarray(data.T)


async def _live_mix_render(s: dict) -> np.ndarray:
    """What the live mix plays once its render of the stretched clip landed (its session,
    rendered offline with the render it holds)."""
    app = s["app"]
    async with app[ROOMS].use(s["project"]) as room:
        mix = LiveMix(room, encode=False, resolver=Resolver(app).source,
                      stores=functools.partial(assets_of, app))
        async with mix:
            deadline = time.monotonic() + WAIT_S
            while not mix._session.tracks[0].clips:
                assert time.monotonic() < deadline, f"no render in the live mix in {WAIT_S} s"
                await asyncio.sleep(0.02)
            [clip] = mix._session.tracks[0].clips
            assert clip.stretch == 1.5 and room.document.job("stretch-c1")["status"] == "done"
            return Engine(mix._session, sample_rate=RATE).render(0, STRETCHED)


async def _unstretched(s: dict) -> np.ndarray:
    async with s["app"][ROOMS].use(s["project"]) as room:
        session = room.document.to_session()
    store = await assets_of(s["app"], s["project"])
    session, _ = await playable_session(store, s["project"], session)
    [clip] = session.tracks[0].clips
    plain = replace(session, tracks=[replace(session.tracks[0],
                                             clips=[replace(clip, stretch=1.0, length=RATE)])])
    return Engine(plain, sample_rate=RATE).render(0, STRETCHED)


async def test_a_bounce_plays_the_live_mix_render_and_a_restart_reuses_it(
        server, monkeypatch: pytest.MonkeyPatch) -> None:
    s = server
    live = await _live_mix_render(s)
    assert s["runs"].count == 1

    restart(monkeypatch)  # nothing in memory now
    job, bounced = await _bounce(s)
    assert job["status"] == "done", job
    assert s["runs"].count == 1  # the kept derived audio, not Rubber Band again
    assert bounced.shape == (2, STRETCHED)
    assert np.abs(bounced - live).max() <= FLOAT_TOLERANCE
    plain = await _unstretched(s)
    assert np.abs(bounced - plain).max() > 0.1  # the unstretched clip sounds otherwise


async def test_a_bounce_render_is_reused_by_the_live_mix_and_dawserver_render(
        server, monkeypatch: pytest.MonkeyPatch) -> None:
    s = server
    job, bounced = await _bounce(s)
    assert job["status"] == "done", job
    assert s["runs"].count == 1

    async with s["app"][ROOMS].use(s["project"]) as room:  # an export, sources by asset id
        exported = save_project(room.document.to_session(), s["tmp"] / "exported.json")
    out = s["tmp"] / "cli.wav"
    result = await asyncio.to_thread(subprocess.run, [
        sys.executable, "-m", "dawserver", "render", str(exported), "-o", str(out),
        "--assets", str(s["app"][ASSETS].root), "--no-progress"],
        capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr
    assert s["runs"].count == 1  # another process found the bounce's render
    rendered, _ = sf.read(out, dtype="float32")
    assert np.abs(rendered.T - bounced).max() <= FLOAT_TOLERANCE

    restart(monkeypatch)
    live = await _live_mix_render(s)
    assert s["runs"].count == 1
    assert np.abs(live - bounced).max() <= FLOAT_TOLERANCE


async def test_a_bounce_without_rubber_band_fails_naming_the_clip(
        server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stretch_module.shutil, "which", lambda name: None)
    job, _ = await _bounce(server)
    assert job["status"] == "failed"
    assert "clip 'c1' cannot be stretched" in job["error"] and "rubberband-cli" in job["error"]
