"""Live immersive monitoring: the cost of streaming the immersive mix in 20 ms frames.

Run: ``python -m pytest benchmarks/bench_immersive_live.py -s -p no:cacheprovider``
(``DAW_BENCH_SMOKE=1`` for the quick check CI runs). One session of mono noise tracks
with a 3-band EQ each: a quarter of them objects at scattered positions, a quarter on
bed channels, the rest plain. Contenders, round by round on one core, in 960-frame
blocks (what :mod:`dawserver.live_mix` renders per Opus frame): the plain stereo engine
(the live mix without monitoring), and :class:`dsp_core.immersive_live.ImmersiveLiveEngine`
folding to stereo and rendering binaurally. Reported: each one's real-time factor and
the immersive monitors' cost against the plain mix (above 1: slower).
"""

from __future__ import annotations

import statistics

import numpy as np
import pytest

from benchmarks.conftest import SMOKE, median_ratio, record, rounds_of
from dsp_core import Clip, Engine, Session, Track, three_band_eq
from dsp_core.immersive import BED_714, ImmersiveRoute
from dsp_core.immersive_live import ImmersiveLiveEngine

RATE = 48000
FRAME = 960
TRACKS = [8] if SMOKE else [16, 64]
SECONDS = 0.04 if SMOKE else 1.0


def _session(tracks: int, frames: int) -> tuple[Session, dict[str, np.ndarray]]:
    rng = np.random.default_rng(tracks)
    beds = [label for label in BED_714 if label != "LFE1"]
    out = []
    for i in range(tracks):
        route = (ImmersiveRoute("object", azimuth=float(rng.uniform(-180, 180)),
                                elevation=float(rng.uniform(0, 60))) if i % 4 == 0 else
                 ImmersiveRoute("bed", channels=(beds[i % len(beds)],)) if i % 4 == 1 else None)
        out.append(Track(id=f"t{i}", effects=three_band_eq(2.0, -1.0, 1.0), immersive=route,
                         clips=[Clip(source=f"s{i}", position=0, length=frames)]))
    sources = {f"s{i}": (0.1 * rng.standard_normal((1, frames))).astype(np.float32)
               for i in range(tracks)}
    return Session(sample_rate=RATE, tracks=out), sources


@pytest.mark.parametrize("tracks", TRACKS)
def test_live_monitoring_against_the_plain_mix(benchmark, tracks: int) -> None:
    frames = int(RATE * SECONDS)
    session, sources = _session(tracks, frames)

    def loader(path: str, _rate: int) -> np.ndarray:
        return sources[path]

    def player(engine) -> object:  # noqa: ANN001 - any engine with render(start, frames)
        def run() -> None:
            for start in range(0, frames, FRAME):
                engine.render(start, FRAME)
        return run

    plain = Engine(session, block_size=FRAME, threads=1, loader=loader)
    folded = ImmersiveLiveEngine(session, monitor="stereo", loader=loader, block_size=FRAME,
                                  threads=1)
    phones = ImmersiveLiveEngine(session, monitor="binaural", loader=loader, block_size=FRAME,
                                  threads=1)
    times = rounds_of({"plain": player(plain), "stereo": player(folded),
                       "binaural": player(phones)}, rounds=5)
    figures = {name: SECONDS / statistics.median(t) for name, t in times.items()}
    assert all(np.isfinite(v) and v > 0 for v in figures.values())
    record(benchmark, tracks=tracks, realtime_plain=figures["plain"],
           realtime_stereo=figures["stereo"], realtime_binaural=figures["binaural"],
           stereo_cost=median_ratio(times, "stereo", "plain"),
           binaural_cost=median_ratio(times, "binaural", "plain"))
