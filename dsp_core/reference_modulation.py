"""Numpy twin of ``native/modulation.c`` (chorus, flanger, phaser), sample by sample."""

from __future__ import annotations

import math

import numpy as np

from .effects import SLOT_COEF, SLOT_MEM, SLOT_VALUE, EffectState

F32 = np.float32
LFO_STEREO_OFFSET = F32(0.25)  # MOD_LFO_STEREO_OFFSET
PHASER_STAGES = 6
PHASER_SWEEP_OCTAVES = 2.0
TICK = 32  # DAW_TICK


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


def _phaser_allpass(p: np.float32, center: float, octaves: float, sr: float) -> float:
    f = center * 2.0 ** (octaves * float(lfo_shape(p)))
    f = min(f, 0.45 * sr)
    t = math.tan(math.pi * f / sr)
    return (t - 1.0) / (t + 1.0)


def phaser_sweep(slots: np.ndarray, sr: float) -> None:
    """Allpass coefficients of both channels at the current LFO phase."""
    p = F32(slots[SLOT_MEM + 2 * (PHASER_STAGES + 1)])
    p1 = F32(p + LFO_STEREO_OFFSET)
    if p1 >= F32(1.0):
        p1 = F32(p1 - F32(1.0))
    octaves = PHASER_SWEEP_OCTAVES * float(slots[SLOT_VALUE + 1])
    center = float(slots[SLOT_VALUE + 2])
    slots[SLOT_COEF + 4] = _phaser_allpass(p, center, octaves, sr)
    slots[SLOT_COEF + 5] = _phaser_allpass(p1, center, octaves, sr)


def phaser_coefficients(slots: np.ndarray, sr: float) -> None:
    """LFO step per tick, feedback, dry and wet gains, then the sweep."""
    v = slots[SLOT_VALUE:SLOT_VALUE + 8]
    slots[SLOT_COEF:SLOT_COEF + 4] = (float(v[0]) * TICK / sr, v[3], F32(1.0) - v[4], v[4])
    phaser_sweep(slots, sr)


def phaser_run(slots: np.ndarray, x0: np.ndarray, x1: np.ndarray | None, sr: float,
               ph: int) -> None:
    """Twin of the C ``phaser_run``: the sweep moves at tick boundaries of ``ph + i``."""
    mem = slots[SLOT_MEM:SLOT_MEM + 16]
    inc, feedback, dry, wet = slots[SLOT_COEF:SLOT_COEF + 4]
    chans = [x0] if x1 is None else [x0, x1]
    n, i = len(x0), 0
    while i < n:
        if (ph + i) % TICK == 0:
            p = F32(mem[2 * (PHASER_STAGES + 1)] + inc)
            if p >= F32(1.0):
                p = F32(p - F32(1.0))
            mem[2 * (PHASER_STAGES + 1)] = p
            phaser_sweep(slots, sr)
        end = min(n, i + TICK - (ph + i) % TICK)
        for ch, x in enumerate(chans):
            base = ch * (PHASER_STAGES + 1)
            st = [F32(s) for s in mem[base:base + PHASER_STAGES]]
            a = F32(slots[SLOT_COEF + 4 + ch])
            last = F32(mem[base + PHASER_STAGES])
            for k in range(i, end):
                v = F32(x[k] + F32(feedback * last))
                for s in range(PHASER_STAGES):
                    y = F32(F32(a * v) + st[s])
                    st[s] = F32(v - F32(a * y))
                    v = y
                last = v
                x[k] = F32(F32(x[k] * dry) + F32(v * wet))
            mem[base:base + PHASER_STAGES] = st
            mem[base + PHASER_STAGES] = last
        i = end
