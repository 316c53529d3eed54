"""``check_sources`` measures a stretched clip against its render, as the engine plays it:
a clip longer than its source but within its stretch passes, one past its render fails,
and ``dawserver render`` says so in one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from dsp_core.errors import ProjectError
from dsp_core.graph import clip_stretch
from dsp_core.project import check_sources, save_project
from dsp_core.session import Clip, Session, Track
from dsp_core.tempo import TempoChange, TempoMap

pytestmark = [pytest.mark.timeout(120)]
RATE = 48000
#: A one-second source.
SOURCE_FRAMES = RATE


@pytest.fixture
def tone(tmp_path: Path) -> str:
    path = tmp_path / "tone.wav"
    t = np.arange(SOURCE_FRAMES) / RATE
    sf.write(path, (0.3 * np.sin(2 * np.pi * 330 * t)).astype(np.float32), RATE)
    return str(path)


def session(clip: Clip, tempo: TempoMap | None = None) -> Session:
    extra = {} if tempo is None else {"tempo": tempo}
    return Session(name="s", sample_rate=RATE, tracks=[Track("t", clips=[clip])], **extra)


def rendered_frames(clip: Clip, tempo: TempoMap | None = None) -> int:
    """How long the engine's render of ``clip`` is, and from which frame it plays."""
    spec, start = clip_stretch(clip, session(clip, tempo), RATE, SOURCE_FRAMES)
    return spec.rendered_frames(SOURCE_FRAMES) - (clip.offset if start is None else start)


#: Stretched clips longer than the source, each as long as its render allows.
FITTING = {
    "stretch": Clip("", 0, 2 * RATE, stretch=2.0),
    "stretch from an offset": Clip("", 0, 3 * RATE // 2, offset=RATE // 4, stretch=2.0),
    "warp": Clip("", RATE, 2 * RATE, warp=((0, RATE), (RATE // 2, 2 * RATE))),
    "warp started before the clip": Clip(
        "", RATE, 5 * RATE // 2, warp=((0, RATE // 2), (RATE // 2, 2 * RATE))
    ),
    "follow tempo": Clip("", 0, 2 * RATE, follow_tempo=True, source_bpm=120),
}
SLOW = TempoMap([TempoChange(0, 60, "a")])  # a 120 BPM source plays twice as long


@pytest.mark.parametrize("name", FITTING)
@pytest.mark.parametrize("decode", [True, False])
def test_a_stretched_clip_within_its_render_passes(tone: str, name: str, decode: bool) -> None:
    clip = Clip(**{**FITTING[name].__dict__, "source": tone, "id": "c"})
    assert clip.length > SOURCE_FRAMES - clip.offset  # its source alone is too short
    assert rendered_frames(clip, SLOW) == clip.length  # its render is just long enough
    check_sources(session(clip, SLOW), decode=decode)


@pytest.mark.parametrize("name", FITTING)
def test_a_stretched_clip_past_its_render_is_refused(tone: str, name: str) -> None:
    fits = FITTING[name]
    clip = Clip(**{**fits.__dict__, "source": tone, "id": "c", "length": fits.length + 1})
    with pytest.raises(
        ProjectError,
        match=r"tracks\[0\]\.clips\[0\] .*clip 'c'.*"
        f"length {clip.length} needs .*stretched as the clip says",
    ):
        check_sources(session(clip, SLOW))


def test_a_shrunk_clip_is_measured_against_its_shorter_render(tone: str) -> None:
    clip = Clip(tone, 0, RATE // 2, stretch=0.5, id="c")
    check_sources(session(clip))
    with pytest.raises(ProjectError, match=f"is {RATE // 2} frames"):
        check_sources(session(Clip(tone, 0, RATE // 2 + 1, stretch=0.5, id="c")))


def test_warp_markers_that_start_the_source_after_the_clip_name_it(tone: str) -> None:
    clip = Clip(tone, 0, RATE, warp=((0, RATE),), id="c")
    with pytest.raises(ProjectError, match=r"clips\[0\].*add a marker at or before it"):
        check_sources(session(clip))


def test_dawserver_render_refuses_a_clip_past_its_render_in_one_line(
    tone: str, tmp_path: Path
) -> None:
    clip = Clip(tone, 0, 2 * RATE + 1, stretch=2.0, id="c")
    project = save_project(session(clip), tmp_path / "project.json")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "dawserver",
            "render",
            str(project),
            "-o",
            str(tmp_path / "mix.wav"),
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert done.returncode == 1 and not (tmp_path / "mix.wav").exists()
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("error: tracks[0].clips[0]") and "stretched as the clip" in line
