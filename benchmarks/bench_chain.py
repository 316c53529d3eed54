"""Issue 17's target: a session of 256 tracks, each with EQ + compressor + one reverb send
and automation on every fader, at 48 kHz in 128-frame blocks on one core, against
pedalboard running the same chain.

Run: ``python -m pytest benchmarks/bench_chain.py --benchmark-enable -s``
(``DAW_BENCH_SMOKE=1`` for the quick check CI runs).

The session: 256 mono tracks of noise; per track a 3-band EQ (low shelf, peak, high
shelf: RBJ biquads) and a compressor (knee 0 dB, as pedalboard's has none), a post-fader
send at -12 dB to one shared reverb bus (the reverb fully wet), a pan, and a gain lane
ramping all the time (a breakpoint every 50 ms, alternating -12 and -3 dB: each frame's
gain is computed afresh). Ours is ``dsp_core.Engine`` with ``threads=1``.

pedalboard (JUCE) runs the same chain the cheapest way a Python host can: one
``Pedalboard([LowShelfFilter, PeakFilter, HighShelfFilter, Compressor])`` per track,
block by block with state kept (``reset=False``), the faders' envelopes computed once
for the whole run with ``np.interp`` (vectorised), and per block the faders, pans and
sends applied to all tracks at once (one multiply, two matrix products), then the bus's
``Reverb`` on the send sum. pedalboard releases the GIL but runs each call on the
calling thread, so it is one core too. The ratio is taken round by round
(:func:`benchmarks.conftest.median_ratio`).
"""

from __future__ import annotations

import contextlib
import statistics

import numpy as np

from benchmarks.conftest import SMOKE, median_ratio, record, rounds_of
from dsp_core import Bus, Clip, EffectSpec, Engine, Send, Session, Track, three_band_eq
from dsp_core.session import AutomationLane, AutomationPoint

RATE = 48000
BLOCK = 128
TRACKS = 8 if SMOKE else 256
SECONDS = 0.02 if SMOKE else 1.0
ROUNDS = 5
STEP = RATE // 20  # a fader breakpoint every 50 ms
EQ_DB = (3.0, -2.0, 1.0)  # low shelf 120 Hz, peak 1 kHz, high shelf 8 kHz (three_band_eq)
COMPRESSOR = {"threshold_db": -20.0, "ratio": 3.0, "knee_db": 0.0, "attack_ms": 10.0,
              "release_ms": 100.0}
SEND_DB = -12.0
REVERB = {"room_size": 0.6, "damping": 0.4, "width": 1.0, "mix": 1.0}


def _audio(tracks: int, frames: int) -> np.ndarray:
    rng = np.random.default_rng(17)
    return 0.1 * rng.standard_normal((tracks, frames), dtype=np.float32)


def _pan(i: int) -> float:
    return (i % 9 - 4) / 4


def _fader_points(i: int, frames: int) -> list[tuple[int, float]]:
    """The fader lane of track ``i``: alternating -12 / -3 dB every STEP frames."""
    return [(f, -12.0 if (k + i) % 2 else -3.0)
            for k, f in enumerate(range(0, frames + STEP, STEP))]


def _session(tracks: int, frames: int) -> Session:
    chain = [*three_band_eq(*EQ_DB), EffectSpec("compressor", dict(COMPRESSOR))]
    return Session(sample_rate=RATE, buses=[
        Bus(id="verb", name="Reverb", effects=[EffectSpec("reverb", dict(REVERB))])], tracks=[
        Track(id=f"t{i}", pan=_pan(i), effects=[EffectSpec(e.kind, dict(e.params)) for e in chain],
              sends=[Send("verb", SEND_DB)],
              clips=[Clip(source=f"s{i}", position=0, length=frames)],
              automation={"gain_db": AutomationLane("read", [
                  AutomationPoint(f, v, id=f"g{k}")
                  for k, (f, v) in enumerate(_fader_points(i, frames))])})
        for i in range(tracks)])


def _ours(audio: np.ndarray):  # noqa: ANN202 - a contender for rounds_of
    frames = audio.shape[1]
    engine = Engine(_session(audio.shape[0], frames), block_size=BLOCK, threads=1,
                    loader=lambda path, _rate: audio[int(path[1:]):int(path[1:]) + 1])
    engine.render(0, BLOCK)  # warm caches

    def run() -> None:
        for _ in engine.blocks(0, frames):
            pass

    return run, engine


def _pedalboard(audio: np.ndarray):  # noqa: ANN202 - a contender for rounds_of
    import pedalboard as pb

    tracks, frames = audio.shape
    low, mid, high = EQ_DB
    boards = [pb.Pedalboard([
        pb.LowShelfFilter(cutoff_frequency_hz=120.0, gain_db=low, q=0.707),
        pb.PeakFilter(cutoff_frequency_hz=1000.0, gain_db=mid, q=1.0),
        pb.HighShelfFilter(cutoff_frequency_hz=8000.0, gain_db=high, q=0.707),
        pb.Compressor(threshold_db=COMPRESSOR["threshold_db"], ratio=COMPRESSOR["ratio"],
                      attack_ms=COMPRESSOR["attack_ms"], release_ms=COMPRESSOR["release_ms"]),
    ]) for _ in range(tracks)]
    reverb = pb.Pedalboard([pb.Reverb(room_size=REVERB["room_size"], damping=REVERB["damping"],
                                      width=REVERB["width"], wet_level=1.0, dry_level=0.0)])
    # equal-power pan, as the engine's; then the send level, post-fader
    theta = (np.array([_pan(i) for i in range(tracks)]) + 1) * np.pi / 4
    pan = np.stack([np.cos(theta), np.sin(theta)]).astype(np.float32)  # (2, tracks)
    send = np.full((1, tracks), 10 ** (SEND_DB / 20), dtype=np.float32)
    lanes = [np.array(_fader_points(i, frames), dtype=np.float64).T for i in range(tracks)]
    at = np.arange(frames, dtype=np.float64)
    outs = np.empty((tracks, BLOCK), dtype=np.float32)

    def run() -> None:
        faders = np.stack([10 ** (np.interp(at, f, v) / 20) for f, v in lanes]).astype(np.float32)
        mix = np.zeros((2, frames), dtype=np.float32)
        for start in range(0, frames, BLOCK):
            stop = min(start + BLOCK, frames)
            n = stop - start
            for i, board in enumerate(boards):
                outs[i, :n] = board.process(audio[i:i + 1, start:stop], RATE,
                                            buffer_size=BLOCK, reset=False)[0]
            faded = outs[:, :n] * faders[:, start:stop]
            bus = np.repeat(send @ faded, 2, axis=0)
            mix[:, start:stop] = pan @ faded + reverb.process(bus, RATE, buffer_size=BLOCK,
                                                              reset=False)

    return run


def test_session_of_256_tracks_against_pedalboard(benchmark) -> None:
    audio = _audio(TRACKS, int(RATE * SECONDS))
    ours, engine = _ours(audio)
    contenders = {"ours": ours}
    with contextlib.suppress(ImportError):  # without pedalboard: our figure alone
        contenders["pedalboard"] = _pedalboard(audio)
    times = rounds_of(contenders, rounds=ROUNDS)
    out = engine.render(0, BLOCK * 8)
    assert np.isfinite(out).all() and np.abs(out).max() > 0  # it rendered sound
    figures = {"tracks": TRACKS, "block": BLOCK,
               "realtime": SECONDS / statistics.median(times["ours"]),
               "realtime_best": SECONDS / min(times["ours"])}
    if "pedalboard" in times:
        figures.update(pedalboard_realtime=SECONDS / statistics.median(times["pedalboard"]),
                       vs_pedalboard=median_ratio(times, "pedalboard", "ours"))
    assert all(np.isfinite(v) and v > 0 for v in figures.values())
    record(benchmark, **figures)
