"""Send and effect lanes written through the document sound the same in the live engine,
the live mix and the offline render (``dawserver render``)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from room_helpers import project_room

from collab.store import open_store
from dawserver.live_mix import LiveMix
from dawserver.project_engine import ProjectEngine
from dawserver.projects import import_session
from dsp_core.effects import EffectSpec
from dsp_core.engine import Engine
from dsp_core.project import save_project
from dsp_core.session import Bus, Clip, Send, Session, Track

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(120)]
RATE = 48000
FRAMES = 8192
STEP = 1024  # a tick boundary


def lanes_session(tmp_path: Path) -> Session:
    path = tmp_path / "dc.wav"
    sf.write(path, np.full(FRAMES, 0.5, dtype=np.float32), RATE, subtype="FLOAT")
    return Session(sample_rate=RATE, name="lanes", buses=[Bus("fx", pan=1.0)], tracks=[
        Track("t", pan=-1.0, clips=[Clip(str(path), 0, FRAMES, id="c")],
              sends=[Send("fx", -144.0, pre_fader=True)],
              effects=[EffectSpec("gain", {"gain_db": 0.0}, id="g")])])


def write_lanes(doc) -> None:
    doc.add_automation_point("t", "send:fx", 0, -144.0, curve="hold")
    doc.add_automation_point("t", "send:fx", STEP, 0.0, curve="hold")
    doc.add_automation_point("t", "fx:g:gain_db", 0, 0.0, curve="hold")
    doc.add_automation_point("t", "fx:g:gain_db", 2 * STEP, -12.0, curve="hold")


async def test_live_engine_live_mix_and_offline_render_agree(tmp_path: Path) -> None:
    async with open_store(None, tmp_path) as store:
        info = await import_session(store, lanes_session(tmp_path))
        async with project_room(info.project_id, store) as room:
            await room.edit(write_lanes)
            engine = ProjectEngine(room, debounce=0.0)
            live = await engine.render(0, FRAMES)
            engine.close()
            session = room.document.to_session()
            await room.edit(lambda d: d.update_transport(playing=True, position=0))
            async with LiveMix(room, factory=lambda s, rate: Engine(s, sample_rate=rate)) as mix:
                mix.document_changed()
                played = await collect(mix, 6)
    project = save_project(session, tmp_path / "project.json")
    out = tmp_path / "mix.wav"
    result = subprocess.run(
        [sys.executable, "-m", "dawserver", "render", str(project), "-o", str(out),
         "--block-size", "100", "--no-progress"],
        capture_output=True, text=True, timeout=100)
    assert result.returncode == 0, result.stderr
    offline = sf.read(out, dtype="float32", always_2d=True)[0].T[:, :FRAMES]
    np.testing.assert_array_equal(live, offline)
    right = offline[1]  # the send reaches the bus, panned right, from its step on
    assert np.abs(right[:STEP]).max() < 1e-6 and np.abs(right[STEP:STEP + 8]).max() > 1e-4
    settled = 0.5 * 10 ** (-12 / 20)  # the gain effect's step, after its 10 ms glide
    assert offline[0, -1] == pytest.approx(settled, rel=1e-4)
    assert offline[0, 2 * STEP - 1] == pytest.approx(0.5, rel=1e-6)
    assert played
    for frame in played:  # the live mix's frames are the render's samples
        want = np.clip(offline[:, frame.timeline:frame.timeline + len(frame.pcm)].T, -1, 1)
        np.testing.assert_array_equal(frame.pcm, (want * 32767.0).astype(np.int16))


async def collect(mix: LiveMix, count: int) -> list:
    frames: list = []
    mix.taps.append(frames.append)
    async with asyncio.timeout(10):
        while len([f for f in frames if f.timeline is not None]) < count:
            await asyncio.sleep(0.02)
    mix.taps.remove(frames.append)
    return [f for f in frames if f.timeline is not None and f.timeline + len(f.pcm) <= FRAMES]
