"""MIDI instruments: 64 synth tracks playing 8-voice chords, the C engine against its numpy
twin in the same run, and the synth against the sampler.

Every track holds an 8-note chord that changes every half second (each change a note-off
and note-on per voice: releases overlap the next chord, so voices are stolen), with the
resonant filter's envelope moving. Run:
``python -m pytest benchmarks/bench_instruments.py --benchmark-enable -s``
(``DAW_BENCH_SMOKE=1`` for the quick check CI runs).
"""

from __future__ import annotations

import statistics

import numpy as np

from benchmarks.conftest import SMOKE, median_ratio, record, rounds_of
from dsp_core import Engine, Session, Track
from dsp_core.midi import Instrument, MidiClip, Note, SampleZone

RATE = 48000
BLOCK = 128
TRACKS = 8 if SMOKE else 64
SECONDS = 0.05 if SMOKE else 1.0
TWIN_TRACKS = 2 if SMOKE else 4
TWIN_SECONDS = 0.02 if SMOKE else 0.1
CHORD = (0, 4, 7, 11, 12, 16, 19, 23)
SAMPLE = (0.3 * np.sin(np.arange(RATE, dtype=np.float32) * 0.03))[None, :]


def _session(kind: str, tracks: int, seconds: float) -> Session:
    frames = int(RATE * seconds)
    step = RATE // 2
    out = []
    for i in range(tracks):
        notes = [Note(36 + (i + k) % 24 + interval, 90, at, step, id=f"n{k}-{j}")
                 for k, at in enumerate(range(0, frames, step))
                 for j, interval in enumerate(CHORD)]
        instrument = (Instrument("synth", {"voices": 8, "release_ms": 100.0, "resonance": 0.6})
                      if kind == "synth" else
                      Instrument("sampler", {"voices": 8}, [SampleZone("s", root=60)]))
        out.append(Track(f"t{i}", gain_db=-18.0, instrument=instrument,
                         midi_clips=[MidiClip(0, frames, notes)]))
    return Session(sample_rate=RATE, tracks=out)


def _engine(kind: str, backend: str, tracks: int, seconds: float) -> Engine:
    return Engine(_session(kind, tracks, seconds), block_size=BLOCK, backend=backend,
                  loader=lambda _path, _rate: SAMPLE)


def _play(engine: Engine, frames: int) -> None:
    engine.reset()
    for _ in engine.blocks(0, frames):
        pass


def test_synth_tracks_c_against_twin(benchmark) -> None:
    frames = int(RATE * TWIN_SECONDS)
    native = _engine("synth", "native", TWIN_TRACKS, TWIN_SECONDS)
    twin = _engine("synth", "reference", TWIN_TRACKS, TWIN_SECONDS)
    times = rounds_of({"native": lambda: _play(native, frames),
                       "twin": lambda: _play(twin, frames)}, rounds=3)
    np.testing.assert_allclose(native.render(0, frames), twin.render(0, frames), atol=2e-5)
    record(benchmark, tracks=TWIN_TRACKS, voices=8, c_vs_twin=median_ratio(times, "twin",
                                                                           "native"))


def test_64_synth_tracks_of_8_voice_chords(benchmark) -> None:
    frames = int(RATE * SECONDS)
    synth = _engine("synth", "native", TRACKS, SECONDS)
    sampler = _engine("sampler", "native", TRACKS, SECONDS)
    times = rounds_of({"synth": lambda: _play(synth, frames),
                       "sampler": lambda: _play(sampler, frames)}, rounds=3)
    record(benchmark, tracks=TRACKS, voices=8, block=BLOCK,
           realtime_synth=SECONDS / statistics.median(times["synth"]),
           realtime_sampler=SECONDS / statistics.median(times["sampler"]),
           ns_per_voice_frame=statistics.median(times["synth"]) / (TRACKS * 8 * frames) * 1e9)
