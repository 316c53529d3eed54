"""Point-source panning to loudspeaker layouts (VBAP on the layout's hull).

The design follows the EBU ADM renderer's point-source panner in outline: the real
loudspeakers are completed by virtual ones (a layer below the middle layer, a layer
above it when the layout has none, and one at each pole) so that every direction lies
in a face of the convex hull (triangles, VBAP; planar quadrilaterals, bilinear
weights as in ear); a virtual loudspeaker's gain is handed down to real
ones (below a middle loudspeaker: to it; a pole: equally to the nearest layer), and
the gains are normalised to unit power. A source at a loudspeaker's position plays
from that loudspeaker alone. Stereo is panned on 5.1 and folded down as ``ear`` does:
the ITU-R BS.775 downmix with the centre at 1/sqrt(3) to each side (which keeps the
direction rather than the power), normalised, then from 0 dB for a source in front to
-3 dB for one behind (by the balance of front and rear gains).

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
            fold[:, 2] = 1.0 / math.sqrt(3.0)
            fold[0, 4] = fold[1, 5] = math.sqrt(0.5)
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
        triangles, owners, quads = _regions(points)
        self._inverse = np.array([np.linalg.inv(points[t].T) for t in triangles])
        self._triangles = np.array(triangles)
        self._owners = owners  # the quad a triangle is half of, or -1
        self._quads = [_Quad(points[q], q) for q in quads]
        self._down = np.array(down)  # (virtual + real) x channels

    def gains(self, azimuth: float, elevation: float) -> np.ndarray:
        """Gains (one per layout channel) for a source in that direction: unit power (on
        stereo, unit in front to -3 dB behind)."""
        if self._fold is not None:
            surround = self._inner.gains(azimuth, elevation)
            folded = self._fold @ surround
            front, back = surround[:3].max(), surround[4:].max()
            return folded / np.linalg.norm(folded) * 0.5 ** (0.5 * back / (front + back))
        target = direction(azimuth, elevation)
        speaker_gains = np.zeros(len(self._down))
        weights = self._inverse @ target  # (triangles, 3): the face the source is in
        best = int(np.argmax(weights.min(axis=1)))
        owner = self._owners[best]
        local = self._quads[owner].gains(target) if owner >= 0 else None
        if local is not None:
            speaker_gains[self._quads[owner].vertices] = local
        else:
            speaker_gains[self._triangles[best]] = np.clip(weights[best], 0.0, None)
        out = speaker_gains @ self._down
        norm = float(np.linalg.norm(out))
        if norm < _EPS:
            raise DspError(f"no loudspeakers of {self.layout} cover azimuth {azimuth}, "
                           f"elevation {elevation}")
        return out / norm


def _regions(points: np.ndarray) -> tuple[list[list[int]], list[int], list[list[int]]]:
    """The hull's triangles, the quadrilateral each is half of (-1: none), and the
    quadrilaterals: two triangles in one plane, panned as one region as ear does (so how
    the quad is split does not matter)."""
    hull = ConvexHull(points)
    planes: dict[tuple, list[int]] = {}
    for index, equation in enumerate(hull.equations):
        planes.setdefault(tuple(np.round(equation, 6)), []).append(index)
    triangles, owners, quads = [], [], []
    for members in planes.values():
        vertices = sorted({int(v) for m in members for v in hull.simplices[m]})
        owner = -1
        if len(vertices) == 4:
            owner = len(quads)
            quads.append(_around(points, vertices))
        triangles.extend(hull.simplices[m].tolist() for m in members)
        owners.extend([owner] * len(members))
    return triangles, owners, quads


def _around(points: np.ndarray, vertices: list[int]) -> list[int]:
    """Vertices of a planar polygon in order around its centre."""
    centre = points[vertices].mean(axis=0)
    normal = centre / np.linalg.norm(centre)
    u = points[vertices[0]] - centre
    u -= normal * (u @ normal)
    v = np.cross(normal, u)
    angles = [math.atan2((points[i] - centre) @ v, (points[i] - centre) @ u) for i in vertices]
    return [vertices[i] for i in np.argsort(angles)]


class _Quad:
    """Bilinear panning over a planar quadrilateral a-b-c-d: the source lies on the plane
    (through the listener) spanned by a + x(b - a) and d + x(c - d), and likewise for y
    along the other pair of edges; the gains are the bilinear weights of (x, y)."""

    def __init__(self, corners: np.ndarray, vertices: list[int]) -> None:
        self.vertices = vertices
        self.corners = corners
        self._x = self._axis(corners)
        self._y = self._axis(corners[[1, 2, 3, 0]])

    @staticmethod
    def _axis(corners: np.ndarray) -> np.ndarray:
        a, b, c, d = corners
        # cross(a + x(b - a), d + x(c - d)) as a polynomial in x, highest power first
        return np.array([np.cross(b - a, c - d),
                         np.cross(a, c - d) + np.cross(b - a, d),
                         np.cross(a, d)])

    @staticmethod
    def _root(axis: np.ndarray, target: np.ndarray) -> float | None:
        for root in np.roots(axis @ target):
            if abs(root.imag) < 1e-10 and -1e-10 < root.real < 1 + 1e-10:
                return float(np.clip(root.real, 0.0, 1.0))
        return None

    def gains(self, target: np.ndarray) -> np.ndarray | None:
        """Normalised gains of the four corners, or None when the source is elsewhere."""
        x, y = self._root(self._x, target), self._root(self._y, target)
        if x is None or y is None:
            return None
        weights = np.array([(1 - x) * (1 - y), x * (1 - y), x * y, (1 - x) * y])
        if weights @ self.corners @ target <= 0:  # the opposite side of the sphere
            return None
        return weights / np.linalg.norm(weights)


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
