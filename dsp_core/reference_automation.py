"""Numpy twin of the C engine's automated fader (``automation_gains`` in engine.c).

The lane values are computed with the same float64 operations as C (so they are
the same bits), and each distinct value's gain or pan law with Python's ``math``
(the same C library functions the engine calls), so the per-frame gains agree
with C bit for bit.
"""

from __future__ import annotations

import math

import numpy as np

from .effects import FADER_END, FADER_START
from .graph import AutomationState, LaneState

F32 = np.float32


def lane_values(lane: LaneState, frames: np.ndarray) -> np.ndarray:
    """Twin of ``lane_value``: the lane's float64 value at each timeline frame."""
    n = lane.frames.shape[0]
    j = np.searchsorted(lane.frames, frames, side="right") - 1
    jc = np.clip(j, 0, n - 1)
    values = lane.values[jc].copy()
    ramp = (j >= 0) & (jc + 1 < n)
    ramp &= lane.hold[jc] == 0
    k = jc[ramp]
    f0, f1 = lane.frames[k], lane.frames[np.minimum(k + 1, n - 1)]
    v0, v1 = lane.values[k], lane.values[np.minimum(k + 1, n - 1)]
    t = (frames[ramp] - f0).astype(np.float64) / (f1 - f0).astype(np.float64)
    values[ramp] = v0 + (v1 - v0) * t
    return values


def _pan_law(pan: float, channels: int) -> tuple[float, float]:
    p = min(1.0, max(-1.0, pan))
    if channels == 1:
        angle = (p + 1.0) * math.pi / 4.0
        return math.cos(angle), math.sin(angle)
    return (1.0 - p if p > 0.0 else 1.0), (1.0 + p if p < 0.0 else 1.0)


def automation_gains(a: AutomationState, channels: int, fader: np.ndarray, start: int,
                     frames: int) -> tuple[np.ndarray, np.ndarray]:
    """The block's float32 L/R gains of an automated fader; the fader slots end at the last."""
    where = np.arange(start, start + frames, dtype=np.int64)
    db = lane_values(a.gain, where)
    pan = lane_values(a.pan, where)
    gain = {v: 10.0 ** (v / 20.0) for v in np.unique(db).tolist()}
    law = {v: _pan_law(v, channels) for v in np.unique(pan).tolist()}
    g = np.array([gain[v] for v in db.tolist()], dtype=np.float64)
    pl = np.array([law[v][0] for v in pan.tolist()], dtype=np.float64)
    pr = np.array([law[v][1] for v in pan.tolist()], dtype=np.float64)
    scale = F32(a.scale)
    gl = (g * pl).astype(F32) * scale
    gr = (g * pr).astype(F32) * scale
    a.gains[0, :frames] = gl
    a.gains[1, :frames] = gr
    if frames:
        fader[FADER_END] = fader[FADER_START] = gl[-1]
        fader[FADER_END + 1] = fader[FADER_START + 1] = gr[-1]
    return gl, gr
