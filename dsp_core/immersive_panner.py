"""Point-source panning to loudspeaker layouts (VBAP on the layout's hull).

The design follows the EBU ADM renderer's point-source panner in outline: the real
loudspeakers are completed by virtual ones (a layer below the middle layer, a layer
above it when the layout has none, and one at each pole) so that every direction lies
in a triangle of the convex hull; a virtual loudspeaker's gain is handed down to real
ones (below a middle loudspeaker: to it; a pole: equally to the nearest layer), and
the gains are normalised to unit power. A source at a loudspeaker's position plays
from that loudspeaker alone. Stereo is panned on 5.1 and folded down (centre at
-3 dB to both sides, each surround to its side), as ``ear`` does.

Gains are computed here, in Python, when a position changes; the C kernel
(``daw_immersive_pan``) applies them per block.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy.spatial import ConvexHull

from .errors import DspError
from .immersive import LAYOUTS, LFE, nominal_position

_EPS = 1e-9


def direction(azimuth: float, elevation: float) -> np.ndarray:
    """Unit vector (x right, y front, z up) of an ADM direction in degrees."""
    az, el = math.radians(azimuth), math.radians(elevation)
    return np.array([-math.sin(az) * math.cos(el), math.cos(az) * math.cos(el), math.sin(el)])


class PointSourcePanner:
    """Gains of a point source for one layout (LFE channels always get 0)."""

    def __init__(self, layout: str) -> None:
        if layout not in LAYOUTS:
            raise DspError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
        self.layout = layout
        self.labels = LAYOUTS[layout]
        self._fold: np.ndarray | None = None
        if layout == "stereo":  # pan on 5.1, then fold down
            self._inner = panner("5.1")
            fold = np.zeros((2, 6))
            fold[0, 0] = fold[1, 1] = 1.0
            fold[:, 2] = math.sqrt(0.5)
            fold[0, 4] = fold[1, 5] = 1.0
            self._fold = fold
            return
        real = [i for i, label in enumerate(self.labels) if label != LFE]
        positions = [nominal_position(self.labels[i]) for i in real]
        vectors = [direction(*p) for p in positions]
        down: list[np.ndarray] = [np.eye(len(self.labels))[i] for i in real]
        middle = [(i, p) for i, p in zip(real, positions, strict=True) if p[1] == 0.0]
        upper = [i for i, p in zip(real, positions, strict=True) if p[1] > 0.0]
        for i, (az, _) in middle:  # a virtual layer below the middle one
            vectors.append(direction(az, -30.0))
            down.append(np.eye(len(self.labels))[i])
        if not upper:  # and above it when the layout has no upper layer
            for i, (az, _) in middle:
                vectors.append(direction(az, 30.0))
                down.append(np.eye(len(self.labels))[i])
        for pole, layer in ((90.0, upper or [i for i, _ in middle]),
                            (-90.0, [i for i, _ in middle])):
            vectors.append(direction(0.0, pole))
            share = np.zeros(len(self.labels))
            share[layer] = 1.0 / math.sqrt(len(layer))
            down.append(share)
        points = np.array(vectors)
        hull = ConvexHull(points)
        self._inverse = np.array([np.linalg.inv(points[s].T) for s in hull.simplices])
        self._simplices = hull.simplices
        self._down = np.array(down)  # (virtual + real) x channels

    def gains(self, azimuth: float, elevation: float) -> np.ndarray:
        """Power-normalised gains (one per layout channel) for a source in that direction."""
        if self._fold is not None:
            folded = self._fold @ self._inner.gains(azimuth, elevation)
            return folded / np.linalg.norm(folded)
        target = direction(azimuth, elevation)
        weights = self._inverse @ target  # (triangles, 3)
        best = int(np.argmax(weights.min(axis=1)))
        local = np.clip(weights[best], 0.0, None)
        speaker_gains = np.zeros(len(self._down))
        speaker_gains[self._simplices[best]] = local
        out = speaker_gains @ self._down
        norm = float(np.linalg.norm(out))
        if norm < _EPS:
            raise DspError(f"no loudspeakers of {self.layout} cover azimuth {azimuth}, "
                           f"elevation {elevation}")
        return out / norm


@functools.cache
def panner(layout: str) -> PointSourcePanner:
    """The (cached) panner of a layout."""
    return PointSourcePanner(layout)


def direct_gains(label: str, layout: str) -> np.ndarray:
    """Gains of a bed channel on ``layout``: its own loudspeaker when the layout has it
    (the LFE to the LFE, or nowhere), else panned at its nominal position."""
    labels = LAYOUTS[layout]
    out = np.zeros(len(labels))
    if label in labels:
        out[labels.index(label)] = 1.0
        return out
    if label == LFE:
        return out
    return panner(layout).gains(*nominal_position(label))
