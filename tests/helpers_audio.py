"""Small in-memory sessions for engine tests (sources served by a dict loader)."""

from __future__ import annotations

import numpy as np

from dsp_core import Bus, Clip, EffectSpec, Send, Session, Track, three_band_eq


class DictLoader:
    """``loader(path, rate)`` serving arrays from a dict, as the engine expects."""

    def __init__(self, sources: dict[str, np.ndarray]) -> None:
        self.sources = sources

    def __call__(self, path: str, sample_rate: int) -> np.ndarray:
        return self.sources[path]


def noise_sources(sample_rate: int, seconds: float = 1.0, seed: int = 0) -> dict[str, np.ndarray]:
    """A mono and a stereo noise source at ``sample_rate``."""
    rng = np.random.default_rng(seed)
    frames = int(sample_rate * seconds)
    return {
        "mono": (0.3 * rng.standard_normal((1, frames))).astype(np.float32),
        "stereo": (0.3 * rng.standard_normal((2, frames))).astype(np.float32),
    }


def busy_session(sample_rate: int, tracks: int = 8, seconds: float = 1.0) -> Session:
    """Mono/stereo tracks with fades, EQ, compressor, sends, a delay bus and a limiter."""
    frames = int(sample_rate * seconds)
    result = []
    for i in range(tracks):
        channels = 1 + i % 2
        effects = [*three_band_eq(4.0, -3.0, 2.0),
                   EffectSpec("compressor", {"threshold_db": -24.0, "ratio": 4.0})]
        if i % 3 == 0:
            effects.append(EffectSpec("gain", {"gain_db": -2.0}))
        result.append(Track(
            id=f"t{i}", channels=channels, gain_db=-6.0 - i, pan=((i % 5) - 2) / 2.0,
            clips=[Clip(source="mono" if channels == 1 else "stereo", position=37 * i,
                        length=frames // 2, offset=11 * i, fade_in=300, fade_out=500,
                        gain_db=-1.0, id=f"c{i}"),
                   Clip(source="stereo", position=37 * i + frames // 2 + 10,
                        length=frames // 3, id=f"d{i}")],
            effects=effects,
            sends=[Send(bus="echo", level_db=-12.0, pre_fader=bool(i % 2))],
        ))
    return Session(
        sample_rate=sample_rate, tracks=result,
        buses=[Bus(id="echo", effects=[EffectSpec("delay", {"time_ms": 30.0, "feedback": 0.4})])],
        master=Bus(id="master", effects=[EffectSpec("limiter", {"ceiling_db": -1.0})]),
    )
