"""Shared sessions for the immersive tests: noise sources held in memory."""

from __future__ import annotations

import numpy as np

from dsp_core.immersive import ImmersiveRoute
from dsp_core.session import Clip, Session, Track

FRAMES = 4800


def sources(seed: int = 0) -> dict[str, np.ndarray]:
    """Mono and stereo noise at -20 dBFS RMS."""
    rng = np.random.default_rng(seed)
    return {"mono": (rng.standard_normal((1, FRAMES)) * 0.1).astype(np.float32),
            "other": (rng.standard_normal((1, FRAMES)) * 0.1).astype(np.float32),
            "stereo": (rng.standard_normal((2, FRAMES)) * 0.1).astype(np.float32)}


def loader(seed: int = 0):  # noqa: ANN201 - the engine's SourceLoader
    """A loader that serves :func:`sources` by name (any render rate: tests use 48 kHz)."""
    held = sources(seed)
    return lambda path, _rate: held[path]


def object_track(track_id: str, azimuth: float, elevation: float = 0.0,
                 source: str = "mono", **fields: object) -> Track:
    """A mono object track playing ``source``."""
    return Track(id=track_id, clips=[Clip(source, 0, FRAMES)],
                 immersive=ImmersiveRoute("object", azimuth=azimuth, elevation=elevation),
                 **fields)


def mixed_session() -> Session:
    """Two objects, a stereo track on the top front pair, a plain track (front pair)."""
    return Session(sample_rate=48000, name="Immersive", tracks=[
        object_track("lead", 100.0, 20.0, name="Lead"),
        object_track("fx", -15.0, 0.0, source="other"),
        Track(id="pad", channels=2, clips=[Clip("stereo", 0, FRAMES)],
              immersive=ImmersiveRoute("bed", channels=("U+045", "U-045"))),
        Track(id="plain", clips=[Clip("mono", 0, FRAMES)], pan=0.3),
    ])
