"""Numpy twin of the C engine's automated fader (``automation_gains`` in engine.c).

Lane values are computed with the same float64 operations as C, and the gain
(``db_gain``) and pan law (``cos_quarter``) polynomials with the same float32
operations in the same order, so the per-frame gains are the same bits.
"""

from __future__ import annotations

import math

import numpy as np

from .effects import FADER_END, FADER_START
from .graph import AutomationState, LaneState

F32 = np.float32
DB_LOG2 = 0.16609640474436813  # AUTO_DB_LOG2 in engine.c
MIN_LOG2 = -126.0  # AUTO_MIN_LOG2: below it an automated gain is 0
_EXP2_POLY = tuple(F32(c) for c in (0.00187623429, 0.00899259431, 0.0558235814, 0.240154545,
                                    0.693152965, 0.999999927))
_COS_POLY = tuple(F32(c) for c in (-1.14707456e-11, 2.08767570e-09, -2.75573192e-07,
                                   2.48015873e-05, -1.38888889e-03, 4.16666667e-02, -0.5, 1.0))
QUARTER_PI = F32(math.pi / 4.0)


def lane_values(lane: LaneState, frames: np.ndarray) -> np.ndarray:
    """Twin of ``LANE_EACH``: the lane's float64 value at each timeline frame."""
    n = lane.frames.shape[0]
    j = np.searchsorted(lane.frames, frames, side="right") - 1
    jc = np.clip(j, 0, n - 1)
    values = lane.values[jc].copy()
    ramp = (j >= 0) & (jc + 1 < n)
    ramp &= lane.hold[jc] == 0
    k = jc[ramp]
    f0, f1 = lane.frames[k], lane.frames[np.minimum(k + 1, n - 1)]
    v0, v1 = lane.values[k], lane.values[np.minimum(k + 1, n - 1)]
    values[ramp] = v0 + (v1 - v0) * ((frames[ramp] - f0).astype(np.float64)
                                     / (f1 - f0).astype(np.float64))
    return values


def db_gain(db: np.ndarray) -> np.ndarray:
    """Twin of ``db_gain``: 10^(db/20) as float32 (about 1e-7 relative)."""
    x = db * DB_LOG2
    silent = ~(x >= MIN_LOG2)
    x = np.where(silent, 0.0, x)
    fl = np.floor(x)
    f = (x - fl).astype(F32)
    p = np.full_like(f, _EXP2_POLY[0])
    for c in _EXP2_POLY[1:]:
        p = p * f + c
    bits = p.view(np.int32) + (fl.astype(np.int32) << 23)
    return np.where(silent, F32(0.0), bits.view(F32))


def cos_quarter(x: np.ndarray) -> np.ndarray:
    """Twin of ``cos_quarter``: cos on [0, pi/2] in float32."""
    z = x * x
    c = np.full_like(x, _COS_POLY[0])
    for k in _COS_POLY[1:]:
        c = c * z + k
    return c


def pan_gains(pan: np.ndarray, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """Twin of ``pan_gains``: the track's pan law (float32 L and R factors)."""
    p = np.clip(pan, -1.0, 1.0).astype(F32)
    one = F32(1.0)
    if channels == 1:
        cl = np.where(p >= one, F32(0.0), cos_quarter((one + p) * QUARTER_PI))
        cr = np.where(p <= -one, F32(0.0), cos_quarter((one - p) * QUARTER_PI))
        return cl, cr
    return np.where(p > 0, one - p, one), np.where(p < 0, one + p, one)


def automation_gains(a: AutomationState, channels: int, fader: np.ndarray, start: int,
                     frames: int) -> tuple[np.ndarray, np.ndarray]:
    """The block's float32 L/R gains of an automated fader; the fader slots end at the last."""
    where = np.arange(start, start + frames, dtype=np.int64)
    g = db_gain(lane_values(a.gain, where))
    g = np.where(lane_values(a.mute, where) >= 0.5, F32(0.0), g)
    cl, cr = pan_gains(lane_values(a.pan, where), channels)
    scale = F32(a.scale)
    gr = (g * cr) * scale
    gl = (g * cl) * scale
    a.gains[0, :frames] = gl
    a.gains[1, :frames] = gr
    if frames:
        fader[FADER_END] = fader[FADER_START] = gl[-1]
        fader[FADER_END + 1] = fader[FADER_START + 1] = gr[-1]
    return gl, gr
