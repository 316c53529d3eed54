"""Time-stretch and pitch-shift with Rubber Band: lengths, pitch, tempo-following clips."""

from __future__ import annotations

import numpy as np
import pytest

import dsp_core.stretch as stretch_module
from dsp_core import Clip, EffectSpec, Engine, Session, Track
from dsp_core.errors import ProjectError
from dsp_core.stretch import StretchCache, StretchError, StretchSpec, render_stretch
from dsp_core.tempo import TempoChange, TempoMap
from tests.helpers_audio import DictLoader

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(not stretch_module.rubberband_available(),
                       reason="needs the rubberband command (rubberband-cli)"),
]
RATE = 48000


def _sine(hz: float, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(RATE * seconds)) / RATE
    return (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)[None, :]


def _peak_hz(x: np.ndarray) -> float:
    """The strongest frequency of the middle of ``x`` (Hann window, 0.5 Hz bins)."""
    mid = x[len(x) // 4: len(x) // 4 + RATE // 2]
    spectrum = np.abs(np.fft.rfft(mid * np.hanning(len(mid)), n=4 * RATE))
    return float(np.argmax(spectrum)) * RATE / (4 * RATE)


@pytest.mark.parametrize("factor", [0.5, 1.5, 2.0])
def test_stretch_gives_the_length_asked_and_keeps_the_pitch(factor: float) -> None:
    out = render_stretch(_sine(440), RATE, StretchSpec(stretch=factor))
    assert out.shape == (1, round(RATE * factor)) and out.dtype == np.float32
    assert _peak_hz(out[0]) == pytest.approx(440, abs=2)


@pytest.mark.parametrize("semitones", [-5, 7, 12])
def test_pitch_shift_moves_the_peak_and_keeps_the_length(semitones: int) -> None:
    out = render_stretch(_sine(440), RATE, StretchSpec(semitones=semitones))
    assert out.shape == (1, RATE)
    assert _peak_hz(out[0]) == pytest.approx(440 * 2 ** (semitones / 12), rel=0.01)


def test_stereo_sources_stay_stereo() -> None:
    audio = np.vstack([_sine(300), _sine(600)])
    out = render_stretch(audio, RATE, StretchSpec(stretch=1.25))
    assert out.shape == (2, 60000)
    assert _peak_hz(out[0]) == pytest.approx(300, abs=2)
    assert _peak_hz(out[1]) == pytest.approx(600, abs=2)


def test_a_stretched_clip_plays_its_render_in_the_engine() -> None:
    clip = Clip("sine", position=1000, length=90000, stretch=2.0, semitones=12, id="c")
    session = Session(RATE, [Track("t", channels=1, clips=[clip])])
    out = Engine(session, loader=DictLoader({"sine": _sine(220)})).render(0, 96000)
    assert np.abs(out[0, :1000]).max() == 0
    assert _peak_hz(out[0, 1000:91000]) == pytest.approx(440, rel=0.01)
    assert np.abs(out[0, 85000:90000]).max() > 0.1  # still sounding 1.8 s into a 1 s source


def _clicks(bpm: float, beats: int) -> np.ndarray:
    """Short 2 kHz bursts on every beat at ``bpm``."""
    per_beat = round(RATE * 60 / bpm)
    audio = np.zeros((1, per_beat * beats), np.float32)
    burst = _sine(2000, 0.01)[0] * np.hanning(480).astype(np.float32)
    for b in range(beats):
        audio[0, b * per_beat: b * per_beat + 480] = burst
    return audio


def _onsets(x: np.ndarray, expected: list[int], window: int) -> list[int]:
    """The first frame near each expected beat where the signal passes a threshold."""
    level = 0.2 * np.abs(x).max()
    found = []
    for e in expected:
        part = np.abs(x[max(0, e - window): e + window])
        found.append(max(0, e - window) + int(np.argmax(part > level)))
    return found


def test_a_follow_tempo_clip_lands_on_the_beats_of_the_map() -> None:
    # a 100 BPM loop in a song at 120 BPM that slows to 80 BPM at beat 4
    tempo = TempoMap([TempoChange(0, 120, "a"), TempoChange(4, 80, "b")])
    source = _clicks(100, 8)
    position = round(tempo.beat_to_frame(1, RATE))  # the clip starts on beat 1
    length = round(tempo.beat_to_frame(7.5, RATE)) - position
    clip = Clip("loop", position=position, length=length, follow_tempo=True, source_bpm=100,
                id="loop")
    session = Session(RATE, [Track("t", channels=1, effects=[EffectSpec("gain")],
                                   clips=[clip])], tempo=tempo)
    out = Engine(session, loader=DictLoader({"loop": source})).render(0, position + length)
    beats = [round(tempo.beat_to_frame(1 + b, RATE)) for b in range(7)]
    onsets = _onsets(out[0] / np.sqrt(0.5), beats, window=RATE // 10)
    late = [o - b for o, b in zip(onsets, beats, strict=True)]
    assert all(abs(d) <= RATE // 100 for d in late), late  # within 10 ms of every beat
    assert np.abs(out[0, position + length - RATE // 4:]).max() < 1e-3  # loop ended on time


def test_warp_markers_place_source_frames_on_timeline_frames() -> None:
    source = _clicks(120, 4)  # clicks at 0, 24000, 48000, 72000
    warp = ((0, 10000), (24000, 34000), (48000, 82000), (96000, 130000))
    clip = Clip("loop", position=10000, length=120000, warp=warp, id="w")
    session = Session(RATE, [Track("t", channels=1, effects=[EffectSpec("gain")],
                                   clips=[clip])])
    out = Engine(session, loader=DictLoader({"loop": source})).render(0, 130000)
    beats = [10000, 34000, 82000, 106000]
    onsets = _onsets(out[0], beats, window=RATE // 20)
    assert all(abs(o - b) <= RATE // 100 for o, b in zip(onsets, beats, strict=True)), onsets


def test_the_cache_renders_each_spec_once() -> None:
    cache = StretchCache()
    spec = StretchSpec(stretch=1.5)
    key = spec.key("a" * 64, RATE)
    first = cache.rendered(key, _sine(440), RATE, spec)
    assert cache.rendered(key, _sine(440), RATE, spec) is first
    assert StretchSpec(stretch=1.5, semitones=1).key("a" * 64, RATE) != key
    assert spec.key("a" * 64, 44100) != key


def test_bad_specs_are_refused_with_a_clear_error(monkeypatch) -> None:
    with pytest.raises(StretchError, match=r"stretch must be in \[0.25, 4\]"):
        render_stretch(_sine(440), RATE, StretchSpec(stretch=9))
    with pytest.raises(StretchError, match=r"warp\[1\] .* must come after"):
        StretchSpec(warp=((0, 0), (100, 0))).validate()
    with pytest.raises(ProjectError, match="follow_tempo needs the source's tempo"):
        Session(RATE, [Track("t", clips=[Clip("x", 0, 10, follow_tempo=True)])]).validate()
    monkeypatch.setattr(stretch_module.shutil, "which", lambda name: None)
    with pytest.raises(StretchError, match="apt-get install rubberband-cli"):
        render_stretch(_sine(440), RATE, StretchSpec(stretch=1.5))


def test_a_live_edit_of_the_pitch_rebuilds_the_clip() -> None:
    clip = Clip("sine", position=0, length=RATE, id="c")
    session = Session(RATE, [Track("t", channels=1, clips=[clip])])
    engine = Engine(session, loader=DictLoader({"sine": _sine(220)}), block_size=1024)
    assert _peak_hz(engine.render(0, RATE)[0]) == pytest.approx(220, abs=2)
    engine.apply(Session(RATE, [Track("t", channels=1, clips=[
        Clip("sine", position=0, length=RATE, id="c", semitones=12)])]))
    assert _peak_hz(engine.render(0, RATE)[0]) == pytest.approx(440, rel=0.01)


def test_a_follow_tempo_clip_lands_on_the_beats_of_a_tempo_ramp() -> None:
    # a 100 BPM loop in a song that ramps from 140 down to 70 BPM over 8 beats
    tempo = TempoMap([TempoChange(0, 140, "a", ramp=True), TempoChange(8, 70, "b")])
    source = _clicks(100, 8)
    length = round(tempo.beat_to_frame(7.5, RATE))
    clip = Clip("loop", position=0, length=length, follow_tempo=True, source_bpm=100,
                id="loop")
    session = Session(RATE, [Track("t", channels=1, effects=[EffectSpec("gain")],
                                   clips=[clip])], tempo=tempo)
    out = Engine(session, loader=DictLoader({"loop": source})).render(0, length)
    beats = [round(tempo.beat_to_frame(b, RATE)) for b in range(8)]
    onsets = _onsets(out[0] / np.sqrt(0.5), beats, window=RATE // 10)
    late = [o - b for o, b in zip(onsets, beats, strict=True)]
    assert all(abs(d) <= RATE // 100 for d in late), late  # within 10 ms of every beat
    # a map without the ramp would put the last beats far off (more than 100 ms)
    held = TempoMap([TempoChange(0, 140, "a"), TempoChange(8, 70, "b")])
    assert abs(held.beat_to_frame(7, RATE) - beats[7]) > RATE // 10
