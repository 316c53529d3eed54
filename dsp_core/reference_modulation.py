"""Numpy twin of ``native/modulation.c`` (chorus and flanger), sample by sample."""

from __future__ import annotations

import math

import numpy as np

from .effects import SLOT_COEF, SLOT_MEM, SLOT_VALUE, EffectState

F32 = np.float32
LFO_STEREO_OFFSET = F32(0.25)  # MOD_LFO_STEREO_OFFSET


def lfo_shape(p: np.float32) -> np.float32:
    """The parabolic-sine LFO of phase ``p`` in [0, 1)."""
    t = F32(F32(2.0) * p - F32(1.0))
    return F32(F32(F32(4.0) * t) * F32(F32(1.0) - abs(t)))


def modulation_coefficients(slots: np.ndarray, sr: float) -> None:
    """LFO step, base and depth in frames, feedback, equal-power dry and wet gains."""
    v = slots[SLOT_VALUE:SLOT_VALUE + 8]
    mix = float(v[3])
    slots[SLOT_COEF:SLOT_COEF + 6] = (float(v[0]) / sr, float(v[4]) * 1e-3 * sr,
                                      float(v[1]) * 1e-3 * sr * 0.5, v[2],
                                      math.cos(mix * math.pi / 2.0),
                                      math.sin(mix * math.pi / 2.0))


def _channel(fx: EffectState, x: np.ndarray, channel: int, w: int, p: np.float32) -> np.float32:
    inc, base, depth, feedback, dry, wetg = fx.slots[SLOT_COEF:SLOT_COEF + 6]
    ring = fx.memory[channel]
    length = ring.shape[0]
    most = F32(length - 2)
    one = F32(1.0)
    for i in range(len(x)):
        d = F32(base + depth * F32(one + lfo_shape(p)))
        d = min(max(d, one), most)
        whole = int(d)
        frac = F32(d - F32(whole))
        r0 = w - whole
        r0 += length if r0 < 0 else 0
        r1 = r0 - 1 if r0 > 0 else length - 1
        wet = F32(ring[r0] * F32(one - frac) + ring[r1] * frac)
        sample = x[i]
        ring[w] = sample + feedback * wet
        x[i] = sample * dry + wet * wetg
        w = 0 if w + 1 == length else w + 1
        p = F32(p + inc)
        if p >= one:
            p = F32(p - one)
    return p


def modulation_run(fx: EffectState, x0: np.ndarray, x1: np.ndarray | None) -> None:
    """Twin of the C ``modulation_run``: both channels from the same line position."""
    mem = fx.slots[SLOT_MEM:SLOT_MEM + 2]
    w, p = int(mem[0]), F32(mem[1])
    p_next = _channel(fx, x0, 0, w, p)
    if x1 is not None:
        p1 = F32(p + LFO_STEREO_OFFSET)
        if p1 >= F32(1.0):
            p1 = F32(p1 - F32(1.0))
        _channel(fx, x1, 1, w, p1)
    mem[0] = (w + len(x0)) % fx.memory.shape[1]
    mem[1] = p_next
