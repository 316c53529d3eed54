"""Plug-in delay compensation: 256 tracks where one track (or the aux bus) carries a
lookahead limiter with 5 ms of lookahead, against the same session with the limiter's
lookahead at 0 (no latency), in the same run.

With latency every other track is compensated (its clips read 5 ms early; with the
limiter on the bus, the tracks' direct sum goes through a delay line) and the graph
renders through its schedule; without, the engine takes its usual path. The signal
stays under the ceiling, so both limiters do the same work and the ratio is the cost
of the compensation alone. Run: ``python -m pytest benchmarks/bench_pdc.py --benchmark-enable -s``.
"""

from __future__ import annotations

import statistics

import numpy as np
import pytest

from benchmarks.conftest import SMOKE, median_ratio, record, rounds_of
from dsp_core import Bus, Clip, EffectSpec, Engine, Send, Session, Track, three_band_eq

RATE = 48000
BLOCK = 128
TRACKS = 16 if SMOKE else 256
SECONDS = 0.05 if SMOKE else 1.0


def _limiter(latency: bool) -> EffectSpec:
    return EffectSpec("lookahead_limiter", {"ceiling_db": 0.0,
                                            "lookahead_ms": 5.0 if latency else 0.0})


def _engine(chain: str, where: str, latency: bool) -> tuple[Engine, int]:
    frames = int(RATE * SECONDS)
    rng = np.random.default_rng(1)
    data = 0.01 * rng.standard_normal((TRACKS, frames), dtype=np.float32)
    effects = ([*three_band_eq(3.0, -2.0, 1.0),
                EffectSpec("compressor", {"threshold_db": -20.0, "ratio": 3.0})]
               if chain == "eq_comp" else [])
    tracks = [
        Track(id=f"t{i}", gain_db=-6.0, pan=(i % 9 - 4) / 4,
              effects=[*effects, *([_limiter(latency)] if where == "track" and i == 0 else [])],
              sends=[Send("aux", -12.0)] if i % 4 == 0 else [],
              clips=[Clip(source=f"s{i}", position=0, length=frames)])
        for i in range(TRACKS)]
    bus_fx = [_limiter(latency)] if where == "bus" else []
    session = Session(sample_rate=RATE, tracks=tracks, buses=[Bus("aux", effects=bus_fx)])
    engine = Engine(session, block_size=BLOCK, backend="native",
                    loader=lambda path, _rate: data[int(path[1:]):int(path[1:]) + 1])
    assert (engine.latency > 0) == latency
    return engine, frames


def _play(engine: Engine, frames: int) -> None:
    for _ in engine.blocks(0, frames):
        pass


@pytest.mark.parametrize("where", ["track", "bus"])
@pytest.mark.parametrize("chain", ["plain", "eq_comp"])
def test_compensation_against_no_latency(benchmark, chain: str, where: str) -> None:
    compensated, frames = _engine(chain, where, True)
    plain, _ = _engine(chain, where, False)
    times = rounds_of({"compensated": lambda: _play(compensated, frames),
                       "uncompensated": lambda: _play(plain, frames)}, rounds=5)
    record(benchmark, tracks=TRACKS, block=BLOCK, where=where,
           realtime_compensated=SECONDS / statistics.median(times["compensated"]),
           realtime_uncompensated=SECONDS / statistics.median(times["uncompensated"]),
           time_compensated_over_uncompensated=median_ratio(times, "compensated",
                                                           "uncompensated"))
