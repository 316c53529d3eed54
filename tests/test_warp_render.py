"""Warp markers heard, not only written: a clip of clicks at known source frames, warped,
puts each marked click at its marker's timeline frame and stretches the clicks between
markers by their segment's ratio, in ``dawserver render`` and in the live mix.

Tolerance: Rubber Band's key-frame map (R2, ``--crisp 6``) places a click within about
9 ms of where the map says (measured: at most 454 frames at 48 kHz over these markers);
:data:`PLACED_MS` allows 10 ms. A marker off by one 20 ms frame, or a segment played at
a neighbour's ratio, fails.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from helpers_audio import DictLoader
from room_helpers import project_room
from stretch_helpers import needs_rubberband, restart

from collab.store import open_store
from dawserver.live_mix import LiveMix
from dawserver.projects import import_session
from dsp_core.engine import Engine
from dsp_core.project import save_project
from dsp_core.session import Clip, Session, Track

pytestmark = [pytest.mark.timeout(300), needs_rubberband]
RATE = 48000
#: Clicks every quarter second of the source, from 1/8 s.
CLICKS = list(range(6000, 3 * RATE, RATE // 4))
#: (source frame, timeline frame): the segments stretch by 1.5, 0.75 and 2.
WARP = ((0, 24000), (30000, 69000), (66000, 96000), (102000, 168000))
POSITION, LENGTH = 24000, 180000
#: How far a click may land from where the markers put it.
PLACED_MS = 10.0
#: How far a segment's measured ratio may be from its markers' (relative).
RATIO_TOLERANCE = 0.03
#: How long the live mix's render may take on a loaded machine (seconds).
WAIT_S = 120.0


def click_source() -> np.ndarray:
    """Three seconds of silence with a two-sample click at each frame of :data:`CLICKS`."""
    audio = np.zeros((1, 3 * RATE), np.float32)
    for frame in CLICKS:
        audio[0, frame : frame + 2] = (0.8, -0.8)
    return audio


def warped_session(source: str) -> Session:
    clip = Clip(source, POSITION, LENGTH, id="w", warp=WARP)
    return Session(name="warp", sample_rate=RATE, tracks=[Track("t", clips=[clip])])


def marked_frame(source_frame: int) -> float:
    """The timeline frame the markers put ``source_frame`` at (the last slope carried on)."""
    segments = list(zip(WARP, WARP[1:], strict=False))
    (x0, y0), (x1, y1) = next((s for s in segments if source_frame <= s[1][0]), segments[-1])
    return y0 + (source_frame - x0) * (y1 - y0) / (x1 - x0)


def onsets(mix: np.ndarray) -> dict[int, int]:
    """Each click's onset in ``mix`` (mono, timeline frames): the first frame within 25 ms
    of where the markers put it whose level reaches half the loudest there."""
    window = RATE // 40
    found = {}
    for click in CLICKS:
        at = round(marked_frame(click))
        if at + window > POSITION + LENGTH:
            continue
        part = np.abs(mix[at - window : at + window])
        assert part.max() > 0.05, f"no click near timeline frame {at} (source {click})"
        found[click] = at - window + int(np.argmax(part >= 0.5 * part.max()))
    return found


def check_placement(mix: np.ndarray) -> None:
    """Every marked click at its marker, every click near its place, every segment's
    clicks spaced by the segment's ratio."""
    heard = onsets(mix)
    late_ms = {c: (heard[c] - marked_frame(c)) * 1000 / RATE for c in heard}
    assert all(abs(ms) <= PLACED_MS for ms in late_ms.values()), late_ms
    marked = [x for x, _ in WARP if x in heard]
    assert marked == [30000, 66000, 102000]  # the markers on clicks were all measured
    assert np.abs(mix[: POSITION - RATE // 100]).max() == 0  # nothing before the clip
    for (x0, y0), (x1, y1) in zip(WARP, WARP[1:], strict=False):
        inside = [c for c in heard if x0 <= c <= x1]
        slope = np.polyfit(inside, [heard[c] for c in inside], 1)[0]
        ratio = (y1 - y0) / (x1 - x0)
        assert slope == pytest.approx(ratio, rel=RATIO_TOLERANCE), (x0, x1, slope)


def test_the_markers_are_heard_where_they_say_in_an_offline_render(tmp_path: Path) -> None:
    sf.write(tmp_path / "clicks.wav", click_source().T, RATE, subtype="FLOAT")
    project = save_project(warped_session(str(tmp_path / "clicks.wav")), tmp_path / "project.json")
    out = tmp_path / "mix.wav"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "dawserver",
            "render",
            str(project),
            "-o",
            str(out),
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    mix, rate = sf.read(out, dtype="float32", always_2d=True)
    assert rate == RATE and mix.shape[0] == POSITION + LENGTH
    check_placement(mix[:, 0] / np.abs(mix[:, 0]).max())


@pytest.mark.asyncio
async def test_the_markers_are_heard_where_they_say_in_the_live_mix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    restart(monkeypatch)
    sources = DictLoader({"clicks": click_source()})
    async with open_store(None, tmp_path) as store:
        info = await import_session(store, warped_session("clicks"))
        async with project_room(info.project_id, store) as room:
            mix = LiveMix(
                room,
                encode=False,
                factory=lambda s, rate: Engine(s, sample_rate=rate, loader=sources),
            )
            mix.stretches.load = sources
            async with mix:
                deadline = time.monotonic() + WAIT_S
                while not mix._session.tracks[0].clips:  # silent until its render lands
                    assert time.monotonic() < deadline, f"no render in {WAIT_S} s"
                    await asyncio.sleep(0.02)
                heard = await _play_through(room, mix, POSITION + LENGTH)
    check_placement(heard[:, 0] / np.abs(heard[:, 0]).max())


async def _play_through(room, mix: LiveMix, end: int) -> np.ndarray:
    """Play the timeline from 0 in the live mix and keep what it sends up to ``end``
    (int16 frames laid out by their timeline position, as float)."""
    heard = np.zeros((end + mix.frame, 2), np.float32)
    covered = 0

    def tap(frame) -> None:
        nonlocal covered
        if frame.timeline is None or frame.timeline >= end:
            return
        heard[frame.timeline : frame.timeline + len(frame.pcm)] = frame.pcm / 32767.0
        covered = max(covered, frame.timeline + len(frame.pcm))

    mix.taps.append(tap)
    try:
        await room.edit(lambda d: d.update_transport(playing=True, position=0))
        mix.document_changed()
        deadline = time.monotonic() + WAIT_S
        while covered < end:
            assert time.monotonic() < deadline, f"the mix sent {covered} of {end} frames"
            await asyncio.sleep(0.05)
    finally:
        mix.taps.remove(tap)
    return heard[:end]
