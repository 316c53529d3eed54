"""Fader automation: 256 tracks with gain and pan automated on every fader vs the same
session without automation, in the same run, and the C engine vs its numpy twin.

Every lane ramps all the time (a breakpoint every 50 ms, alternating values), the worst
case: each frame's gain and pan law is computed afresh. Run:
``python -m pytest benchmarks/bench_automation.py --benchmark-enable -s``.
"""

from __future__ import annotations

import statistics

import numpy as np
import pytest

from benchmarks.conftest import SMOKE, median_ratio, record, rounds_of
from dsp_core import Clip, EffectSpec, Engine, Session, Track, three_band_eq
from dsp_core.session import AutomationLane, AutomationPoint

RATE = 48000
BLOCK = 128
TRACKS = 16 if SMOKE else 256
SECONDS = 0.05 if SMOKE else 1.0
TWIN_SECONDS = 0.01 if SMOKE else 0.05
STEP = RATE // 20


def _lanes(i: int, frames: int) -> dict[str, AutomationLane]:
    steps = range(0, frames + STEP, STEP)
    gain = [AutomationPoint(f, -12.0 if (k + i) % 2 else -3.0, id=f"g{k}")
            for k, f in enumerate(steps)]
    pan = [AutomationPoint(f, -0.5 if (k + i) % 2 else 0.5, id=f"p{k}")
           for k, f in enumerate(steps)]
    return {"gain_db": AutomationLane("read", gain), "pan": AutomationLane("read", pan)}


def _engine(chain: str, automated: bool, seconds: float, backend: str = "native",
            tracks: int = TRACKS) -> tuple[Engine, int]:
    frames = int(RATE * seconds)
    rng = np.random.default_rng(1)
    data = 0.1 * rng.standard_normal((tracks, frames), dtype=np.float32)
    effects = ([*three_band_eq(3.0, -2.0, 1.0),
                EffectSpec("compressor", {"threshold_db": -20.0, "ratio": 3.0})]
               if chain == "eq_comp" else [])
    session = Session(sample_rate=RATE, tracks=[
        Track(id=f"t{i}", gain_db=-6.0, pan=(i % 9 - 4) / 4, effects=list(effects),
              clips=[Clip(source=f"s{i}", position=0, length=frames)],
              automation=_lanes(i, frames) if automated else {})
        for i in range(tracks)])
    engine = Engine(session, block_size=BLOCK, backend=backend,
                    loader=lambda path, _rate: data[int(path[1:]):int(path[1:]) + 1])
    return engine, frames


def _play(engine: Engine, frames: int) -> None:
    for _ in engine.blocks(0, frames):
        pass


@pytest.mark.parametrize("chain", ["plain", "eq_comp"])
def test_automation_on_every_fader_against_none(benchmark, chain: str) -> None:
    with_lanes, frames = _engine(chain, True, SECONDS)
    without, _ = _engine(chain, False, SECONDS)
    times = rounds_of({"automated": lambda: _play(with_lanes, frames),
                       "static": lambda: _play(without, frames)}, rounds=5)
    record(benchmark, tracks=TRACKS, block=BLOCK,
           realtime_automated=SECONDS / statistics.median(times["automated"]),
           realtime_static=SECONDS / statistics.median(times["static"]),
           static_vs_automated=median_ratio(times, "automated", "static"))


def test_automation_c_against_twin(benchmark) -> None:
    tracks = 8 if SMOKE else 32
    native, frames = _engine("plain", True, TWIN_SECONDS, "native", tracks)
    twin, _ = _engine("plain", True, TWIN_SECONDS, "reference", tracks)
    times = rounds_of({"native": lambda: _play(native, frames),
                       "twin": lambda: _play(twin, frames)}, rounds=3)
    np.testing.assert_array_equal(native.render(0, BLOCK), twin.render(0, BLOCK))
    record(benchmark, tracks=tracks, c_vs_twin=median_ratio(times, "twin", "native"))
