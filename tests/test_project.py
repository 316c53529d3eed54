"""The JSON project file: round trips, every class of error, source checks."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from dsp_core.audio_io import write_audio
from dsp_core.effects import PARAMS, EffectSpec, three_band_eq
from dsp_core.errors import AudioFileError, ProjectError
from dsp_core.project import (
    check_sources,
    load_project,
    relative_source,
    save_project,
    session_from_dict,
    session_to_dict,
)
from dsp_core.session import Bus, Clip, Send, Session, Track

pytestmark = pytest.mark.timeout(120)


def full_session(audio_dir: Path) -> Session:
    """A session that sets every field to a non-default value."""
    return Session(
        sample_rate=96000,
        name="Full",
        master=Bus("master", "Main", [EffectSpec("limiter", {"ceiling_db": -1.0})], -1.5, 0.1),
        buses=[Bus("verb", "Reverb", [EffectSpec("delay", {"time_ms": 90.0}, False, "d1")],
                   -3.0, -0.2)],
        tracks=[
            Track(
                id="t1", name="Kick", channels=2, gain_db=-6.0, pan=-0.5, mute=True, solo=True,
                effects=[*three_band_eq(3.0, -2.0, 1.0),
                         EffectSpec("compressor", {"ratio": 8.0, "attack_ms": 1.0}, id="c",
                                    sidechain="t2")],
                sends=[Send("verb", -12.0, True)],
                clips=[Clip(str(audio_dir / "kick.wav"), 0, 1000, 10, -3.0, 5, 6, "k1"),
                       Clip(str(audio_dir / "sub" / "kick 2.wav"), 2000, 500, id="k2")],
            ),
            Track(id="t2", gain_db=-math.inf),
        ],
        chase_notes=False,
    )


def minimal() -> dict[str, Any]:
    """A valid project dict with one track, one clip, one bus and one effect."""
    return {
        "format": "max-booster-project", "version": 1, "sample_rate": 48000,
        "buses": [{"id": "verb"}],
        "tracks": [{
            "id": "t1", "channels": 2,
            "effects": [{"kind": "biquad", "params": {"shape": "peaking", "freq": 500}}],
            "sends": [{"bus": "verb"}],
            "clips": [{"source": "a.wav", "position": 0, "length": 100},
                      {"source": "a.wav", "position": 100, "length": 100}],
        }],
    }


def test_save_and_load_round_trip_every_field(tmp_path: Path) -> None:
    session = full_session(tmp_path / "audio")
    path = save_project(session, tmp_path / "song.json")
    assert load_project(path) == session


def test_saved_sources_are_relative_to_the_project_directory(tmp_path: Path) -> None:
    save_project(full_session(tmp_path / "audio"), tmp_path / "song.json")
    saved = json.loads((tmp_path / "song.json").read_text())
    assert saved["format"] == "max-booster-project" and saved["version"] == 4
    sources = [c["source"] for c in saved["tracks"][0]["clips"]]
    assert sources == ["audio/kick.wav", "audio/sub/kick 2.wav"]
    assert saved["tracks"][1]["gain_db"] == "-inf"


def test_moved_project_directory_still_finds_its_sources(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    save_project(full_session(tmp_path / "a" / "audio"), tmp_path / "a" / "song.json")
    (tmp_path / "a").rename(tmp_path / "b")
    loaded = load_project(tmp_path / "b" / "song.json")
    assert loaded.tracks[0].clips[0].source == str(tmp_path / "b" / "audio" / "kick.wav")


def test_sources_outside_the_project_directory_stay_absolute(tmp_path: Path) -> None:
    assert relative_source(tmp_path / "x" / "a.wav", tmp_path / "y") == \
        (tmp_path / "x" / "a.wav").as_posix()
    assert relative_source(tmp_path / "y" / "s" / "a.wav", tmp_path / "y") == "s/a.wav"


def test_dict_round_trip_without_a_base_directory_keeps_sources_as_they_are() -> None:
    session = full_session(Path("relative/audio"))
    data = json.loads(json.dumps(session_to_dict(session)))
    assert session_from_dict(data) == session


def test_omitted_optional_fields_take_their_defaults() -> None:
    session = session_from_dict({"format": "max-booster-project", "version": 1,
                                 "sample_rate": 44100,
                                 "tracks": [{"id": "a", "clips": [
                                     {"source": "/x.wav", "position": 5, "length": 7}]}]})
    assert session.master == Bus("master", "Master")
    assert session.tracks == [Track("a", clips=[Clip("/x.wav", 5, 7)])]
    assert session.name == "Untitled" and session.buses == []


def test_note_chase_is_written_only_when_off() -> None:
    """A file that chases (the default) has no ``chase_notes`` key, so builds from
    before the setting read it; one with chase off keeps it off through a round trip."""
    assert "chase_notes" not in session_to_dict(Session())
    data = session_to_dict(Session(chase_notes=False))
    assert data["chase_notes"] is False
    assert session_from_dict(data).chase_notes is False
    assert session_from_dict({**data, "chase_notes": True}).chase_notes is True


def set_at(data: dict[str, Any], path: str, value: Any) -> None:
    """Set (or with ``...`` delete) the value at a dotted path like ``tracks.0.clips.1.length``."""
    *parents, last = path.split(".")
    node: Any = data
    for key in parents:
        node = node[int(key)] if key.isdigit() else node[key]
    if value is ...:
        del node[last]
    else:
        node[int(last) if last.isdigit() else last] = value


@pytest.mark.parametrize(("path", "value", "message"), [
    ("tracks.0.clips.1.length", -5,
     "tracks[0].clips[1].length: must be a positive integer, got -5"),
    ("tracks.0.clips.1.length", 100.0,
     "tracks[0].clips[1].length: must be a positive integer, got 100.0"),
    ("tracks.0.clips.0.position", True,
     "tracks[0].clips[0].position: must be a non-negative integer, got true"),
    ("tracks.0.clips.0.offset", -1, "tracks[0].clips[0].offset: must be a non-negative integer"),
    ("tracks.0.clips.0.source", "", "tracks[0].clips[0].source: must be a non-empty string"),
    ("tracks.0.clips.0.gain_db", 30,
     'tracks[0].clips[0].gain_db: must be a number of dB <= 24 or "-inf", got 30'),
    ("tracks.0.clips.0.colour", "red", "tracks[0].clips[0]: unknown key(s) 'colour'"),
    ("tracks.0.clips.0.length", ..., "tracks[0].clips[0]: missing required key(s) 'length'"),
    ("tracks.0.clips.0", [], "tracks[0].clips[0]: must be an object, got []"),
    ("tracks.0.clips", {}, "tracks[0].clips: must be an array, got {}"),
    ("tracks.0.id", 7, "tracks[0].id: must be a non-empty string, got 7"),
    ("tracks.0.channels", 6, "tracks[0].channels: must be 1 or 2, got 6"),
    ("tracks.0.pan", 1.5, r"tracks[0].pan: must be in [-1, 1], got 1.5"),
    ("tracks.0.pan", "left", 'tracks[0].pan: must be a finite number, got "left"'),
    ("tracks.0.mute", 1, "tracks[0].mute: must be true or false, got 1"),
    ("tracks.0.sends.0.level_db", None, "tracks[0].sends[0].level_db: must be a number"),
    ("tracks.0.sends.0.bus", ..., "tracks[0].sends[0]: missing required key(s) 'bus'"),
    ("tracks.0.effects.0.kind", "vocoder",
     "tracks[0].effects[0].kind: unknown effect kind 'vocoder'"),
    ("tracks.0.effects.0", {"kind": "reverb", "params": {"room_size": 1.5}},
     "tracks[0].effects[0].params.room_size: must be in [0, 1], got 1.5"),
    ("tracks.0.effects.0", {"kind": "gate", "params": {"hold_ms": -1}},
     "tracks[0].effects[0].params.hold_ms: must be in [0, 2000], got -1"),
    ("tracks.0.effects.0.params.freq", 5,
     "tracks[0].effects[0].params.freq: must be in [10, 96000], got 5"),
    ("tracks.0.effects.0.params.shape", "notch",
     "tracks[0].effects[0].params.shape: unknown shape 'notch'"),
    ("tracks.0.effects.0.params.drive", 1, "tracks[0].effects[0].params: unknown key(s) 'drive'"),
    ("tracks.0.effects.0.enabled", "yes", "tracks[0].effects[0].enabled: must be true or false"),
    ("tracks.0.effects.0.sidechain", "t1",
     "tracks[0].effects[0].sidechain: only compressor and gate take a sidechain, not biquad"),
    ("tracks.0.effects.0.sidechain", 3, "tracks[0].effects[0].sidechain: must be a"),
    ("buses.0.id", ..., "buses[0]: missing required key(s) 'id'"),
    ("buses.0.pan", -2, r"buses[0].pan: must be in [-1, 1], got -2"),
    ("master", {"id": "master", "effects": [{"kind": "limiter", "params": {"ceiling_db": 3}}]},
     "master.effects[0].params.ceiling_db: must be in [-24, 0], got 3"),
    ("sample_rate", "48k", 'sample_rate: must be a positive integer, got "48k"'),
    ("sample_rate", ..., "(top level): missing required key(s) 'sample_rate'"),
    ("tempo", 120, "(top level): unknown key(s) 'tempo'"),
    ("chase_notes", 0, "chase_notes: must be true or false, got 0"),
    ("format", "ardour", "format: must be 'max-booster-project', got \"ardour\""),
    ("version", 5, "version: 5 is not supported; this build reads version(s) 1, 2, 3, 4"),
    ("version", "1", 'version: "1" is not supported'),
])
def test_bad_field_is_reported_with_its_json_path(
    tmp_path: Path, path: str, value: Any, message: str
) -> None:
    data = minimal()
    set_at(data, path, value)
    project = tmp_path / "p.json"
    project.write_text(json.dumps(data))
    with pytest.raises(ProjectError) as caught:
        load_project(project)
    assert str(caught.value).startswith(f"{project}: {message}")


@pytest.mark.parametrize(("path", "value", "message"), [
    ("tracks.0.clips.1.position", 0, "overlaps the clip ending at 100"),
    ("tracks.0.sends.0.bus", "nowhere", "send to unknown bus 'nowhere'"),
    ("sample_rate", 12345, "unsupported session sample rate 12345 Hz"),
    ("tracks.0.clips.0.fade_in", 150, "fades must be >= 0 and fit inside the clip"),
])
def test_structurally_invalid_session_is_refused(path: str, value: Any, message: str) -> None:
    data = minimal()
    set_at(data, path, value)
    with pytest.raises(ProjectError, match=message):
        session_from_dict(data)


def test_duplicate_track_ids_are_refused() -> None:
    data = minimal()
    data["tracks"].append(copy.deepcopy(data["tracks"][0]))
    with pytest.raises(ProjectError, match="duplicate track id 't1'"):
        session_from_dict(data)


@pytest.mark.parametrize(("content", "message"), [
    (b'{"format": "max-booster-project",\n "version": 1,\n "sample_rate": }',
     "invalid JSON at line 3 column 17: Expecting value"),
    (b"\xff\xfe\x00garbage", "not a text file"),
    (b'{"format": "max-booster-project", "format": "x"}', "duplicate key 'format'"),
    (b'{"tracks": [{"gain_db": NaN}]}', "NaN is not a JSON number"),
    (b"[1, 2]", r"\(top level\): must be an object, got \[1, 2\]"),
    (b"", "invalid JSON at line 1 column 1"),
])
def test_unparsable_file_is_refused(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "p.json"
    path.write_bytes(content)
    with pytest.raises(ProjectError, match=message):
        load_project(path)


def test_missing_or_unreadable_project_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ProjectError, match="no such project file"):
        load_project(tmp_path / "nope.json")
    (tmp_path / "dir.json").mkdir()
    with pytest.raises(ProjectError, match="no such project file"):
        load_project(tmp_path / "dir.json")  # a directory without a project.json
    unreadable = tmp_path / "p.json"
    unreadable.mkdir()
    (unreadable / "project.json").mkdir()
    with pytest.raises(ProjectError, match="cannot read the project file"):
        load_project(unreadable)


def test_a_project_directory_stands_for_its_project_json(tmp_path: Path) -> None:
    session = full_session(tmp_path / "audio")
    written = save_project(session, tmp_path)
    assert written == tmp_path / "project.json"
    assert load_project(tmp_path) == load_project(written) == session
    with pytest.raises(ProjectError, match=r"empty/project\.json: no such project file"):
        load_project(_mkdir(tmp_path / "empty"))


def _mkdir(path: Path) -> Path:
    path.mkdir()
    return path


def test_saving_an_invalid_session_keeps_the_previous_file(tmp_path: Path) -> None:
    path = tmp_path / "song.json"
    path.write_text("previous")
    bad = Session(tracks=[Track("t", pan=3.0)])
    with pytest.raises(ProjectError, match="pan 3.0 is outside"):
        save_project(bad, path)
    assert path.read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["song.json"]


def write_tone(path: Path, frames: int, rate: int, channels: int = 1) -> str:
    """A real float WAV source of ``frames`` frames (any rate, so not via write_audio)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(frames) / rate
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    sf.write(path, np.repeat(tone[:, None], channels, axis=1), rate, subtype="FLOAT")
    return str(path)


@pytest.mark.parametrize("decode", [True, False])
def test_clip_fitting_exactly_in_its_source_passes(tmp_path: Path, decode: bool) -> None:
    mono = write_tone(tmp_path / "a.wav", 48000, 48000)
    slow = write_tone(tmp_path / "b.wav", 44100, 44100, channels=2)
    session = Session(48000, [Track("t", clips=[Clip(mono, 0, 47000, offset=1000),
                                               Clip(slow, 48000, 48000)])])
    check_sources(session, decode=decode)


@pytest.mark.parametrize("decode", [True, False])
def test_clip_running_past_its_resampled_source_is_named(tmp_path: Path, decode: bool) -> None:
    slow = write_tone(tmp_path / "b.wav", 44100, 44100)
    session = Session(48000, [Track("t"), Track("u", clips=[Clip(slow, 0, 47001, 0, id="c"),
                                                            Clip(slow, 48000, 48000, 1)])])
    with pytest.raises(ProjectError, match=r"tracks\[1\].clips\[1\] \(track 'u', clip ''\): "
                                           r"offset 1 \+ length 48000 = 48001 frames runs past "
                                           r".*b\.wav \(48000 frames at the session rate 48000"):
        check_sources(session, decode=decode)


@pytest.mark.parametrize("decode", [True, False])
def test_missing_or_corrupt_source_is_named(tmp_path: Path, decode: bool) -> None:
    good = write_tone(tmp_path / "ok.wav", 1000, 48000)
    (tmp_path / "bad.wav").write_bytes(b"RIFF not really")
    for name in ["gone.wav", "bad.wav"]:
        session = Session(48000, [Track("t", clips=[Clip(good, 0, 10),
                                                    Clip(str(tmp_path / name), 10, 10, id="x")])])
        with pytest.raises(AudioFileError, match=rf"tracks\[0\].clips\[1\] \(track 't', "
                                                 rf"clip 'x'\): .*{name}"):
            check_sources(session, decode=decode)


def test_check_sources_reports_progress_per_distinct_source(tmp_path: Path) -> None:
    a = write_tone(tmp_path / "a.wav", 1000, 48000)
    b = write_tone(tmp_path / "b.wav", 1000, 48000)
    session = Session(48000, [Track("t", clips=[Clip(a, 0, 10), Clip(b, 10, 10),
                                               Clip(a, 20, 10)])])
    calls: list[tuple[int, int]] = []
    check_sources(session, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(1, 2), (2, 2)]


def test_project_written_by_write_audio_loads_and_checks(tmp_path: Path) -> None:
    (tmp_path / "audio").mkdir()
    write_audio(tmp_path / "audio" / "x.flac", np.zeros((2, 4800), np.float32), 48000, "24")
    session = Session(48000, [Track("t", channels=2,
                                    clips=[Clip(str(tmp_path / "audio" / "x.flac"), 0, 4800)])])
    loaded = load_project(save_project(session, tmp_path / "p.json"))
    check_sources(loaded)
    assert loaded == session


def test_saving_into_a_missing_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ProjectError, match="does not exist"):
        save_project(Session(), tmp_path / "nowhere" / "p.json")


DOC = Path(__file__).resolve().parent.parent / "docs" / "project-format.md"


def test_the_documented_example_is_a_valid_project() -> None:
    text = DOC.read_text()
    example = text.split("```json\n", 1)[1].split("```", 1)[0]
    session = session_from_dict(json.loads(example), base_dir="/song")
    assert session.tracks[0].clips[0].source == "/song/audio/kick.flac"
    assert session.tracks[1].gain_db == -math.inf


def test_the_documented_parameter_table_matches_the_effects() -> None:
    text = DOC.read_text()
    for kind, params in PARAMS.items():
        for p in params:
            if p.name == "shape":
                assert "| `biquad` | `shape` |" in text
                continue
            row = f"| `{kind}` | `{p.name}` | {p.default:g} | {p.low:g} … {p.high:g}"
            assert row in text, row


def test_session_that_would_not_load_again_is_not_saved(tmp_path: Path) -> None:
    # validate() passes both (a NaN gain it refuses: tests/test_session_value_checks.py)
    clip = Clip("/a.wav", 0, 10, source_bpm=math.nan)  # unused: the clip follows no tempo
    session = Session(tracks=[Track("t", clips=[clip])])
    with pytest.raises(ProjectError, match="not saved: Out of range float values"):
        save_project(session, tmp_path / "p.json")
    clip.source_bpm, clip.offset = 0.0, 2.5  # it plays, but a file holds whole frames
    with pytest.raises(ProjectError, match=r"not saved: tracks\[0\].clips\[0\].offset"):
        save_project(session, tmp_path / "p.json")
    assert list(tmp_path.iterdir()) == []


def test_numpy_scalars_in_a_session_are_saved_as_plain_numbers(tmp_path: Path) -> None:
    clip = Clip("/a.wav", np.int64(5), np.int64(10), gain_db=np.float32(-3.0))
    session = Session(tracks=[Track("t", clips=[clip], pan=np.float32(0.25))])
    loaded = load_project(save_project(session, tmp_path / "p.json"))
    assert loaded.tracks[0].clips[0] == Clip("/a.wav", 5, 10, gain_db=-3.0)
    assert loaded.tracks[0].pan == 0.25
