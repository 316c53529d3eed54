"""Automation written through the document is heard at the right sample, in the offline
render (``dawserver render``) and in the live engine, and the two agree."""

from __future__ import annotations

import asyncio
import contextlib
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from loopback import free_port
from nodepeer import NodePeer, eventually, node_ready, running_server
from room_helpers import project_room

from collab.store import open_store
from dawserver.assets import ASSETS
from dawserver.config import ServerConfig
from dawserver.keys import ENGINES, ROOMS, STORE, TOKENS
from dawserver.live_mix import FRAME, LiveMix
from dawserver.project_engine import ProjectEngine
from dawserver.projects import import_session
from dsp_core.engine import Engine
from dsp_core.project import save_project
from dsp_core.session import Clip, Session, Track

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(120)]
RATE = 48000
FRAMES = 4096


def dc_session(tmp_path: Path) -> Session:
    path = tmp_path / "dc.wav"
    sf.write(path, np.full(FRAMES, 0.5, dtype=np.float32), RATE, subtype="FLOAT")
    return Session(sample_rate=RATE, name="dc", tracks=[
        Track("t", clips=[Clip(str(path), 0, FRAMES, id="c")])])


def write_automation(doc) -> None:
    # a -60 dB -> 0 dB ramp between frames 70 and 100 (inside the first 128-frame block),
    # then a pan move from hard left to hard right between frames 300 and 400
    doc.add_automation_point("t", "gain_db", 70, -60.0)
    doc.add_automation_point("t", "gain_db", 100, 0.0)
    doc.add_automation_point("t", "pan", 300, -1.0)
    doc.add_automation_point("t", "pan", 400, 1.0)


def expected(frames: np.ndarray) -> np.ndarray:
    f = frames.astype(np.float64)
    db = np.interp(f, [70, 100], [-60.0, 0.0])
    pan = np.interp(f, [300, 400], [-1.0, 1.0])
    # np.interp holds the end values, as a lane does before its first point and after its last
    angle = (pan + 1.0) * math.pi / 4
    gain = 0.5 * 10 ** (db / 20)
    return np.stack([gain * np.cos(angle), gain * np.sin(angle)])


async def test_document_automation_is_heard_at_the_exact_frames(tmp_path: Path) -> None:
    async with open_store(None, tmp_path) as store:
        info = await import_session(store, dc_session(tmp_path))
        async with project_room(info.project_id, store) as room:
            engine = ProjectEngine(room, debounce=0.0)
            await engine.render(0, 128)  # the live engine is running before the edit
            await room.edit(write_automation)
            live = await engine.render(0, 1024)
            engine.close()
            session = room.document.to_session()
    project = save_project(session, tmp_path / "project.json")
    out = tmp_path / "mix.wav"
    result = subprocess.run(
        [sys.executable, "-m", "dawserver", "render", str(project), "-o", str(out),
         "--block-size", "128", "--no-progress"],
        capture_output=True, text=True, timeout=100)
    assert result.returncode == 0, result.stderr
    offline, rate = sf.read(out, dtype="float32", always_2d=True)
    offline = offline.T[:, :1024]
    assert rate == RATE
    frames = np.array([0, 69, 70, 71, 85, 99, 100, 101, 299, 300, 325, 350, 399, 400, 1023])
    want = expected(frames)
    np.testing.assert_allclose(offline[:, frames], want, rtol=1e-6, atol=1e-8)
    assert offline[0, 70] == pytest.approx(0.5e-3, rel=1e-6)  # -60 dB at frame 70
    assert offline[0, 100] == pytest.approx(0.5, rel=1e-6)  # 0 dB from frame 100
    assert offline[0, 350] == pytest.approx(0.5 * math.sqrt(0.5), rel=1e-6)  # centre
    np.testing.assert_allclose(offline, expected(np.arange(1024)), rtol=1e-5, atol=1e-8)
    np.testing.assert_array_equal(live, offline)  # render and live mix agree


@pytest.mark.skipif(node_ready() is not None, reason=str(node_ready()))
async def test_a_yjs_clients_automation_is_heard_at_its_frames_in_the_server_render(
        tmp_path: Path) -> None:
    """A stock yjs client (what the page runs) writes the points into the track's lanes."""
    config = ServerConfig(port=free_port(), data_dir=tmp_path / "data")
    async with running_server(config) as app, contextlib.AsyncExitStack() as stack:
        info = await import_session(app[STORE], dc_session(tmp_path), assets=app[ASSETS])
        node = await stack.enter_async_context(NodePeer())
        await node.call("connect", url=config.collab_url, room=info.project_id,
                        token=app[TOKENS].issue(info.project_id, "editor", "ana"))
        await node.wait_event("synced")
        engine = app[ENGINES].get(info.project_id)
        await engine.render(0, 128)
        for point, param, frame, value in [("g1", "gain_db", 70, -60), ("g2", "gain_db", 100, 0),
                                           ("p1", "pan", 300, -1), ("p2", "pan", 400, 1)]:
            await node.call("set_automation_point", track="t", param=param, point=point,
                            frame=frame, value=value)
        room = app[ROOMS].loaded(info.project_id)
        await eventually(lambda: len(room.document.automation("t")["pan"]["points"]) == 2)
        heard = await engine.render(0, 1024)
    frames = np.array([69, 70, 85, 100, 300, 350, 400])
    np.testing.assert_allclose(heard[:, frames], expected(frames), rtol=1e-6, atol=1e-8)


async def test_the_live_mix_plays_a_lane_written_while_it_runs(tmp_path: Path) -> None:
    async with open_store(None, tmp_path) as store:
        info = await import_session(store, dc_session(tmp_path))
        async with project_room(info.project_id, store) as room:
            await room.edit(lambda d: d.update_transport(
                playing=True, loop_enabled=True, loop_start=0, loop_end=3 * FRAME))
            async with LiveMix(room, factory=lambda s, rate: Engine(s, sample_rate=rate)) as mix:
                mix.document_changed()
                loud = np.abs((await collect(mix, 6))[-1].pcm).mean()
                await room.edit(lambda d: d.add_automation_point("t", "gain_db", 0, -46.0))
                mix.document_changed()
                await asyncio.sleep(0.3)  # a lane is a structure edit: rebuilt within 100 ms
                quiet = np.abs((await collect(mix, 3))[-1].pcm).mean()
    assert loud > 1000 and quiet < loud / 50


async def collect(mix: LiveMix, count: int) -> list:
    frames: list = []
    mix.taps.append(frames.append)
    async with asyncio.timeout(10):
        while len(frames) < count:
            await asyncio.sleep(0.02)
    mix.taps.remove(frames.append)
    return [f for f in frames[:count] if f.timeline is not None] or frames[:count]
