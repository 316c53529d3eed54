"""Per-track 7-band EQ and de-esser: the C engine vs its numpy twin vs pedalboard.

Run: ``python -m pytest benchmarks/bench_eq.py --benchmark-enable -s``
(``DAW_BENCH_SMOKE=1`` for the quick check CI runs). Every contender processes the
same stereo noise, one effect per track, on one core in this process; the ratios are
taken round by round (:func:`benchmarks.conftest.median_ratio`).

- EQ: ours (one ``eq`` effect, all seven bands boosting or cutting) against a
  pedalboard chain of ``LowShelfFilter``, five ``PeakFilter`` and ``HighShelfFilter``
  (JUCE's RBJ biquads, the same design), run block by block (``reset=False``, as a live
  mix would) and over the whole buffer in one call.
- De-esser: pedalboard has none; its ``Compressor`` (a wideband feed-forward
  compressor) is timed as the nearest processor of comparable work, and the twin.
"""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.conftest import SMOKE, median_ratio, record, rounds_of
from benchmarks.per_track import noise_tracks, pedalboard_mix
from dsp_core import Clip, EffectSpec, Engine, Session, Track

RATE = 48000
BLOCK = 128
TRACKS = [2] if SMOKE else [1, 32]
SECONDS = 0.02 if SMOKE else 1.0
TWIN_SECONDS = 0.01 if SMOKE else 0.1
BANDS = {"low": (100.0, 3.0, 0.707), "peak1": (250.0, -2.0, 1.0), "peak2": (600.0, 4.0, 2.0),
         "peak3": (1500.0, -3.0, 1.0), "peak4": (3500.0, 2.0, 1.5), "peak5": (7000.0, -4.0, 3.0),
         "high": (10000.0, 2.0, 0.707)}
EQ = {f"{band}_{name}": value for band, (f, g, q) in BANDS.items()
      for name, value in (("freq", f), ("gain_db", g), ("q", q))}
DEESSER = {"threshold_db": -30.0, "ratio": 4.0}


def _engine_run(spec: EffectSpec, n_tracks: int, seconds: float, backend: str):
    audio = noise_tracks(n_tracks, seconds, RATE)
    frames = audio.shape[2]
    tracks = [Track(id=f"t{i}", channels=2, effects=[EffectSpec(spec.kind, dict(spec.params))],
                    clips=[Clip(source=f"s{i}", position=0, length=frames)])
              for i in range(n_tracks)]
    engine = Engine(Session(sample_rate=RATE, tracks=tracks), block_size=BLOCK, backend=backend,
                    loader=lambda path, _rate: audio[int(path[1:])])
    engine.render(0, BLOCK)  # settle smoothing, warm caches
    return lambda: [None for _ in engine.blocks(0, frames)]


def _pedalboard_run(make_board, n_tracks: int, seconds: float, block: int | None):
    boards = [make_board() for _ in range(n_tracks)]
    return pedalboard_mix(boards, noise_tracks(n_tracks, seconds, RATE), RATE, block)


def _figures(benchmark, spec: EffectSpec, n_tracks: int, make_board) -> dict[str, float]:
    contenders = {"native": _engine_run(spec, n_tracks, SECONDS, "native")}
    try:
        import pedalboard  # noqa: F401
    except ImportError:
        make_board = None
    if make_board is not None:
        contenders["pedalboard_blocks"] = _pedalboard_run(make_board, n_tracks, SECONDS, BLOCK)
        contenders["pedalboard_whole"] = _pedalboard_run(make_board, n_tracks, SECONDS, None)
    times = rounds_of(contenders, rounds=5)
    twin = rounds_of({"twin": _engine_run(spec, n_tracks, TWIN_SECONDS, "reference")},
                     rounds=1)["twin"][0] / TWIN_SECONDS
    native = min(times["native"]) / SECONDS
    figures = {"native_realtime": 1 / native, "native_vs_twin": twin / native}
    if make_board is not None:
        figures.update(
            native_vs_pedalboard_blocks=median_ratio(times, "pedalboard_blocks", "native"),
            native_vs_pedalboard_whole=median_ratio(times, "pedalboard_whole", "native"))
    assert all(np.isfinite(v) and v > 0 for v in figures.values())
    record(benchmark, tracks=n_tracks, **figures)
    return figures


def _pedalboard_eq():
    import pedalboard as pb

    kinds = {"low": pb.LowShelfFilter, "high": pb.HighShelfFilter}
    return pb.Pedalboard([kinds.get(band, pb.PeakFilter)(cutoff_frequency_hz=f, gain_db=g, q=q)
                          for band, (f, g, q) in BANDS.items()])


def _pedalboard_compressor():
    import pedalboard as pb

    return pb.Pedalboard([pb.Compressor(threshold_db=-30.0, ratio=4.0, attack_ms=0.5,
                                        release_ms=60.0)])


@pytest.mark.parametrize("n_tracks", TRACKS)
def test_seven_band_eq_per_track(benchmark, n_tracks: int) -> None:
    _figures(benchmark, EffectSpec("eq", EQ), n_tracks, _pedalboard_eq)


@pytest.mark.parametrize("n_tracks", TRACKS)
def test_deesser_per_track(benchmark, n_tracks: int) -> None:
    _figures(benchmark, EffectSpec("deesser", DEESSER), n_tracks, _pedalboard_compressor)
