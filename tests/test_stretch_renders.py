"""Stretched clips in the live mix: silent until rendered off the loop, shown as a job."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio
from helpers_audio import DictLoader
from room_helpers import project_room, wait_for

import dsp_core.stretch as stretch_module
from collab.room import Room
from collab.store import open_store
from dawserver.live_mix import LiveMix
from dawserver.projects import import_session
from dsp_core.engine import Engine
from dsp_core.session import Clip, Session, Track

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60),
              pytest.mark.skipif(not stretch_module.rubberband_available(),
                                 reason="needs the rubberband command (rubberband-cli)")]
RATE = 48000
SOURCES = {"tone": (0.3 * np.sin(2 * np.pi * 330 * np.arange(RATE) / RATE)
                    ).astype(np.float32)[None, :]}


def factory(session: Session, rate: int) -> Engine:
    return Engine(session, sample_rate=rate, loader=DictLoader(SOURCES))


@pytest_asyncio.fixture
async def room(tmp_path: Path):
    session = Session(name="s", tracks=[Track("t0", clips=[Clip("tone", 0, RATE, id="c1")])])
    async with open_store(None, tmp_path) as store:
        info = await import_session(store, session)
        async with project_room(info.project_id, store) as room:
            yield room


#: Generous: a render waits on a shared 2-core machine; the conditions end the waits.
DEADLINE = 30.0


async def _job_done(room: Room, job_id: str) -> dict:
    def finished() -> dict | None:
        job = room.document.job(job_id)
        return job if job is not None and job["status"] in ("done", "failed") else None

    return await wait_for(finished, timeout=DEADLINE)


async def test_a_stretched_clip_is_silent_until_its_render_lands(room: Room) -> None:
    entered, release = threading.Event(), threading.Event()
    loader = DictLoader(SOURCES)

    def held_loader(source: str, rate: int) -> np.ndarray:
        """The source, once the test has looked at the mix while the render waits."""
        entered.set()
        if not release.wait(DEADLINE):
            raise AssertionError("the test never released the render")
        return loader(source, rate)

    async with LiveMix(room, factory=factory) as mix:
        mix.stretches.load = held_loader
        [plain] = mix._session.tracks[0].clips  # playing before the edit
        assert plain.stretch == 1.0
        await room.edit(lambda d: d.update_clip("c1", stretch=1.75, length=RATE * 7 // 4))
        mix.document_changed()
        # the render is under way (held in the loader) and the rebuild left the clip out
        await wait_for(
            lambda: entered.is_set() and not mix._session.tracks[0].clips, timeout=DEADLINE
        )
        assert room.document.job("stretch-c1")["status"] == "running"
        assert mix._session.tracks[0].clips == []  # silent while it renders
        release.set()
        job = await _job_done(room, "stretch-c1")
        assert (job["kind"], job["clip"], job["status"], job["progress"]) == (
            "stretch", "c1", "done", 1.0)
        [clip] = await wait_for(lambda: mix._session.tracks[0].clips, timeout=DEADLINE)
        assert clip.stretch == 1.75 and mix.stretches.ready(clip, mix._session)
        # Other renders (a bounce, another project) push it out of the shared cache: the
        # mix still holds it, so its engine never renders in the audio thread.
        cache = stretch_module.CACHE
        limit, cache.max_bytes = cache.max_bytes, 1
        try:
            cache.put("someone else's render", np.zeros((2, 1000), np.float32))
            cache.put("and another", np.zeros((2, 1000), np.float32))
            assert mix.stretches.ready(clip, mix._session)
            held = set(mix.stretches._pinned)
        finally:
            cache.max_bytes = limit
    assert held and all(cache.get(key) is None for key in held)  # closed: let go


async def test_a_render_that_fails_is_shown_failed_and_the_clip_stays_silent(
        room: Room, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stretch_module.shutil, "which", lambda name: None)
    async with LiveMix(room, factory=factory) as mix:
        mix.stretches.load = DictLoader(SOURCES)
        await room.edit(lambda d: d.update_clip("c1", semitones=4.0))
        mix.document_changed()
        job = await _job_done(room, "stretch-c1")
        assert job["status"] == "failed" and "rubberband-cli" in job["error"]
        # A later rebuild (another clip added) still leaves the failed clip out.
        await room.edit(lambda d: d.add_clip("t0", Clip("tone", RATE, RATE, id="c2")))
        mix.document_changed()
        clips = await wait_for(lambda: mix._session.tracks[0].clips, timeout=DEADLINE)
        assert [c.id for c in clips] == ["c2"]
        assert room.document.job("stretch-c1")["status"] == "failed"
