"""Project format version 4: the tempo map and the clip keys of time; v3 files migrate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dsp_core import Engine
from dsp_core.errors import ProjectError
from dsp_core.project import (
    FORMAT_VERSION,
    load_project,
    save_project,
    session_from_dict,
    session_to_dict,
)
from dsp_core.tempo import BarBeat
from tests.helpers_audio import noise_sources

RATE = 48000


def v3_project() -> dict:
    clips = [{"id": "a", "source": "mono", "position": 0, "length": 20000, "fade_in": 300},
             {"id": "b", "source": "stereo", "position": 20000, "length": 10000,
              "offset": 500, "fade_out": 700, "gain_db": -2.0}]
    return {"format": "max-booster-project", "version": 3, "sample_rate": RATE,
            "tracks": [{"id": "t", "channels": 2, "clips": clips},
                       {"id": "u", "channels": 1, "pan": 0.3, "clips": [dict(clips[0])]}]}


def by_name(sources: dict[str, np.ndarray]):
    """A loader that finds a source by its file name (saved projects make paths absolute)."""
    return lambda path, rate: sources[Path(path).name]


def test_a_version_3_project_migrates_to_version_4_and_sounds_the_same(tmp_path: Path) -> None:
    loader = by_name(noise_sources(RATE))
    old = session_from_dict(v3_project())
    before = Engine(old, loader=loader).render(0, 32000)
    path = save_project(old, tmp_path / "p.json")
    saved = json.loads(path.read_text())
    assert saved["version"] == FORMAT_VERSION == 4
    assert saved["tempo"] == {"tempos": [], "meters": []}  # 120 BPM in 4/4, as before
    assert saved["tracks"][0]["clips"][1]["stretch"] == 1.0
    new = load_project(path)
    assert new.tempo.bpm_at_beat(0) == 120
    np.testing.assert_array_equal(Engine(new, loader=loader).render(0, 32000), before)


def test_version_4_keeps_the_tempo_map_and_every_time_key(tmp_path: Path) -> None:
    data = v3_project()
    data["version"] = 4
    data["tempo"] = {"tempos": [{"id": "x", "beat": 0, "bpm": 96},
                                {"id": "y", "beat": 8, "bpm": 132}],
                     "meters": [{"id": "m", "bar": 0, "numerator": 3, "denominator": 4}]}
    data["tracks"][0]["clips"][1].update(
        position=19000, crossfade=400, stretch=1.0, semitones=-3.0, follow_tempo=True,
        source_bpm=90.0)
    data["tracks"][1]["clips"][0].update(warp=[[0, 100], [1000, 1600]])
    session = session_from_dict(data)
    assert session.tempo.frame_to_bar_beat(session.tempo.beat_to_frame(3, RATE), RATE) == \
        BarBeat(2, 1)
    clip = session.tracks[0].clips[1]
    assert (clip.crossfade, clip.semitones, clip.follow_tempo, clip.source_bpm) == (
        400, -3.0, True, 90.0)
    assert session.tracks[1].clips[0].warp == ((0, 100), (1000, 1600))
    assert session_from_dict(session_to_dict(session)) == session
    path = save_project(session, tmp_path / "p.json")
    assert load_project(path).tempo.to_dict() == data["tempo"] | {
        "tempos": [{"id": "x", "beat": 0.0, "bpm": 96.0}, {"id": "y", "beat": 8.0, "bpm": 132.0}]}


@pytest.mark.parametrize("edit, words", [
    (lambda d: d.update(tempo={"tempos": []}), "unknown key(s) 'tempo'"),
    (lambda d: d["tracks"][0]["clips"][0].update(stretch=2.0), "unknown key(s) 'stretch'"),
    (lambda d: d.update(version=4) or d["tracks"][0]["clips"][0].update(warp=[[0]]),
     "tracks[0].clips[0].warp[0]: must be a pair"),
    (lambda d: d.update(version=4) or d["tracks"][0]["clips"][0].update(stretch=8.0),
     "stretch must be in [0.25, 4]"),
    (lambda d: d.update(version=4, tempo={"tempos": [{"beat": 0, "bpm": 5000}]}),
     "tempo.tempos[0].bpm: tempo must be"),
])
def test_time_keys_are_checked_and_refused_in_older_versions(edit, words: str) -> None:
    data = v3_project()
    edit(data)
    with pytest.raises(ProjectError) as caught:
        session_from_dict(data)
    assert words in str(caught.value)
