"""Bounce jobs over HTTP: progress, the rendered file, cancel, bad options, plug-in hook,
and jobs of the one job queue that survive a restart with the snapshot they were asked for."""

from __future__ import annotations

import asyncio
import dataclasses
import io
from pathlib import Path

import aiohttp
import numpy as np
import pytest
import pytest_asyncio
import soundfile as sf
from loopback import free_port
from nodepeer import eventually, running_server

from database import open_database
from dawserver import bounces
from dawserver.assets import ASSETS
from dawserver.config import ServerConfig
from dawserver.keys import ROOMS, STORE, TOKENS
from dawserver.plugin_api import hookimpl
from dawserver.plugins import PLUGIN_CONTEXT_KEY
from dawserver.projects import import_session
from dsp_core import Engine
from dsp_core.errors import DspError
from dsp_core.session import Clip, Session, Track
from jobs import JobQueue

pytestmark = pytest.mark.asyncio


class RenderRecorder:
    """A plug-in that remembers every project_rendered call."""

    def __init__(self) -> None:
        self.calls: list[dict] = []

    @hookimpl
    def project_rendered(self, context, account_id, project_id, path, metadata) -> None:
        self.calls.append({"account": account_id, "project": project_id, "path": path,
                           **metadata})


class HeldRender:
    """A plug-in whose project_rendered hook waits forever: the bounce stays running."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()

    @hookimpl
    async def project_rendered(self, context, account_id, project_id, path, metadata) -> None:
        self.entered.set()
        await asyncio.Event().wait()


def two_tracks(tmp_path: Path) -> Session:
    audio = tmp_path / "tone.flac"
    t = np.arange(48000 * 3) / 48000
    sf.write(audio, (0.25 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 48000)
    return Session(name="B", tracks=[
        Track("t1", pan=-0.5, clips=[Clip(str(audio), 1000, 48000 * 2, fade_in=480)]),
        Track("t2", pan=0.5, gain_db=-6, clips=[Clip(str(audio), 24000, 48000)])])


@pytest_asyncio.fixture
async def server(tmp_path: Path):
    session = two_tracks(tmp_path)
    config = ServerConfig(port=free_port(), data_dir=tmp_path / "data")
    recorder = RenderRecorder()
    async with running_server(config) as app, aiohttp.ClientSession() as http:
        app[PLUGIN_CONTEXT_KEY].manager.register(recorder, name="test-recorder")
        info = await import_session(app[STORE], session, assets=app[ASSETS])
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


async def nothing_left(folder: Path) -> None:
    """Wait until ``folder`` holds no file (a bounce's cleanup may come a moment later)."""
    def files() -> list[str]:
        return [p.name for p in folder.rglob("*") if p.is_file()]

    await eventually(lambda: not files(), timeout=8)
    assert files() == []


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
    # the snapshot the job rendered is gone with it; the file stays for download
    assert [p.name for p in (s["data"] / "bounces").rglob("*") if p.is_file()] == [
        f"{job['id']}.flac"]
    status, listed = await _call(s, "GET", f"/projects/{s['project']}/bounces")
    assert status == 200 and listed == [job]


async def test_cancelled_bounce_leaves_no_file(server) -> None:
    s = server
    slow = {"sample_rate": 192000, "tail": 60}
    _, rendering = await _call(s, "POST", f"/projects/{s['project']}/bounces", json=slow)
    _, waiting = await _call(s, "POST", f"/projects/{s['project']}/bounces", json=slow)
    status, job = await _call(s, "DELETE", f"/projects/{s['project']}/bounces/{waiting['id']}")
    assert status == 200 and job["status"] == "cancelled"  # one render at a time: it waited
    for _ in range(200):
        _, job = await _call(s, "GET", f"/projects/{s['project']}/bounces/{rendering['id']}")
        if job["status"] != "queued":
            break
        await asyncio.sleep(0.01)
    assert job["status"] == "rendering"
    status, job = await _call(s, "DELETE", f"/projects/{s['project']}/bounces/{rendering['id']}")
    assert status == 200 and job["status"] in ("rendering", "cancelled")
    for cancelled in (rendering, waiting):
        job = await _wait(s, cancelled["id"])
        assert job["status"] == "cancelled" and job["audio"] is None and job["error"] == ""
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



async def test_a_project_longer_than_a_day_is_not_bounced(server) -> None:
    """A clip (or a note) a day away would render a file of terabytes and hold the one
    bounce queue for hours: refused at once, nothing queued."""
    s = server
    async with s["app"][ROOMS].use(s["project"]) as room:
        clip = room.document.to_session().tracks[1].clips[0]
        await room.edit(lambda d: d.update_clip(clip.id, position=25 * 3600 * 48000))
    status, answer = await _call(s, "POST", f"/projects/{s['project']}/bounces", json={})
    assert status == 409 and "at most 24 hours" in answer["error"], answer
    assert await _call(s, "GET", f"/projects/{s['project']}/bounces") == (200, [])


async def test_viewer_cannot_start_a_bounce(server) -> None:
    s = server
    viewer = s["app"][TOKENS].issue(s["project"], "viewer", "vic")
    async with s["http"].post(f"{s['base']}/projects/{s['project']}/bounces", json={},
                              headers={"Authorization": f"Bearer {viewer}"}) as response:
        assert response.status == 403


async def test_another_projects_bounce_is_not_found(server) -> None:
    s = server
    _, job = await _call(s, "POST", f"/projects/{s['project']}/bounces", json={})
    await _wait(s, job["id"])
    other = await import_session(s["app"][STORE], s["session"], assets=s["app"][ASSETS])
    token = s["app"][TOKENS].issue(other.project_id, "editor", "eddie")
    base = f"{s['base']}/projects/{other.project_id}/bounces"
    for method, path in [("GET", job["id"]), ("GET", f"{job['id']}/audio"),
                         ("DELETE", job["id"]), ("GET", "nope")]:
        async with s["http"].request(method, f"{base}/{path}",
                                     headers={"Authorization": f"Bearer {token}"}) as answer:
            assert answer.status == 404, (method, path)
            assert "no bounce" in (await answer.json())["error"]
    async with s["http"].get(base, headers={"Authorization": f"Bearer {token}"}) as answer:
        assert await answer.json() == []
    assert (await _call(s, "GET", f"/projects/{s['project']}/bounces/{job['id']}"))[0] == 200


async def test_bounces_survive_a_restart_and_render_the_document_as_it_was_asked(
        tmp_path: Path) -> None:
    session = two_tracks(tmp_path)
    config = ServerConfig(port=free_port(), data_dir=tmp_path / "data", engine=False)
    held = HeldRender()
    async with running_server(config) as app, aiohttp.ClientSession() as http:
        app[PLUGIN_CONTEXT_KEY].manager.register(held, name="test-held")
        info = await import_session(app[STORE], session, assets=app[ASSETS])
        token = app[TOKENS].issue(info.project_id, "editor", "eddie")
        s = {"http": http, "base": config.base_url, "project": info.project_id,
             "headers": {"Authorization": f"Bearer {token}"}}
        _, running = await _call(s, "POST", f"/projects/{s['project']}/bounces", json={})
        async with asyncio.timeout(20):
            await held.entered.wait()  # rendered; its hook keeps it running
        _, waiting = await _call(s, "POST", f"/projects/{s['project']}/bounces",
                                 json={"format": "flac", "bit_depth": "24"})
        assert waiting["status"] == "queued"  # one render at a time
        async with app[ROOMS].use(s["project"]) as room:  # edited after it was asked for
            await room.edit(lambda document: document.update_track("t2", mute=True))
    # the server stopped: the running job was given back, the waiting one waits
    async with open_database(config.database_url, config.data_dir) as db:
        stored = {j.id: j for j in await JobQueue(db).find(queue="bounce")}
    assert {(j.state, j.attempts, j.progress) for j in stored.values()} == {("queued", 0, 0)}
    assert set(stored) == {running["id"], waiting["id"]}

    config.port = free_port()
    recorder = RenderRecorder()
    async with running_server(config) as app, aiohttp.ClientSession() as http:
        app[PLUGIN_CONTEXT_KEY].manager.register(recorder, name="test-recorder")
        s["http"], s["base"] = http, config.base_url
        first, second = await _wait(s, running["id"]), await _wait(s, waiting["id"])
        assert (first["status"], second["status"]) == ("done", "done")
        assert sorted(Path(c["path"]).name for c in recorder.calls) == sorted(
            [f"{running['id']}.wav", f"{waiting['id']}.flac"])
        status, audio = await _call(s, "GET", second["audio"])
        assert status == 200
        data, rate = sf.read(io.BytesIO(audio), dtype="float32")
        want = Engine(session, sample_rate=rate).render(0, second["frames"])
        assert np.abs(data.T - want).max() < 3 / 2**23  # both tracks: the mute came later
        muted = Session(name="B", tracks=[session.tracks[0],
                                          dataclasses.replace(session.tracks[1], mute=True)])
        assert np.abs(want - Engine(muted, sample_rate=rate).render(0, want.shape[1])).max() > 0.05


async def test_a_bounce_that_dies_leaves_no_snapshot(server) -> None:
    """A bounce that fails for good never runs again: its snapshot goes (as for a cancel),
    instead of staying in the region's storage for ever."""
    s = server
    async with s["app"][ROOMS].use(s["project"]) as room:  # a source no bounce may read
        await room.edit(lambda d: d.add_track(Track("t9", clips=[Clip("/etc/hosts", 0, 480)])))
    _, job = await _call(s, "POST", f"/projects/{s['project']}/bounces", json={})
    job = await _wait(s, job["id"])
    assert job["status"] == "failed" and "/etc/hosts" in job["error"], job
    await nothing_left(s["data"] / "bounces")  # the dead-letter notice drops the snapshot


async def test_a_render_that_fails_keeps_no_partial_file(server, monkeypatch) -> None:
    s = server

    def fails_half_way(engine, output, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        Path(output).write_bytes(b"RIFF cut short")
        raise DspError("the encoder failed half-way (test)")

    monkeypatch.setattr(bounces, "bounce", fails_half_way)
    _, job = await _call(s, "POST", f"/projects/{s['project']}/bounces", json={})
    job = await _wait(s, job["id"])
    assert job["status"] == "failed" and "half-way" in job["error"], job
    await nothing_left(s["data"] / "bounces")  # the snapshot goes with the dead letter


async def test_a_bounce_cancelled_during_its_plug_in_hook_keeps_no_file(tmp_path: Path) -> None:
    config = ServerConfig(port=free_port(), data_dir=tmp_path / "data")
    held = HeldRender()
    async with running_server(config) as app, aiohttp.ClientSession() as http:
        app[PLUGIN_CONTEXT_KEY].manager.register(held, name="test-held")
        info = await import_session(app[STORE], two_tracks(tmp_path), assets=app[ASSETS])
        token = app[TOKENS].issue(info.project_id, "editor", "eddie")
        s = {"http": http, "base": config.base_url, "project": info.project_id,
             "headers": {"Authorization": f"Bearer {token}"}}
        _, job = await _call(s, "POST", f"/projects/{s['project']}/bounces", json={})
        async with asyncio.timeout(20):
            await held.entered.wait()  # rendered and confirmed; its hook holds it running
        status, _ = await _call(s, "DELETE", f"/projects/{s['project']}/bounces/{job['id']}")
        assert status == 200
        job = await _wait(s, job["id"])
        assert job["status"] == "cancelled" and job["audio"] is None, job
        await nothing_left(config.data_dir / "bounces")
