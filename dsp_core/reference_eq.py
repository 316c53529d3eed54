"""Numpy twins of ``native/eq.c``: the 7-band parametric EQ and the de-esser.

The EQ's bands run one after another as ``lfilter`` calls, each the same float32
transposed direct form II as the C pass that runs them side by side, so C and twin
agree bit for bit. The de-esser's band-pass, gain computer and smoothing match the C
kernel operation for operation, and its gains use the ``log2``/``exp2`` polynomial
twins of ``dsp_core.reference``; the tests find output and state bit-exact.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.signal import lfilter

from .effects import SLOT_COEF, SLOT_MEM, SLOT_VALUE, EffectState
from .eq_layout import COEFS, EQ_SHAPES, STATE, TARGETS, VALUES

F32 = np.float32
BANDS = len(EQ_SHAPES)


def _gain_target(t: np.ndarray) -> np.float32:
    return t[1] if t[3] >= F32(0.5) else F32(0.0)


def eq_settled(fx: EffectState) -> bool:
    """True when no band's frequency, Q or gain is gliding."""
    m = fx.memory[0]
    for b in range(BANDS):
        t, v = m[TARGETS + 4 * b:TARGETS + 4 * b + 4], m[VALUES + 3 * b:VALUES + 3 * b + 3]
        if v[0] != t[0] or v[1] != t[2] or v[2] != _gain_target(t):
            return False
    return True


def eq_tick(fx: EffectState, sr: float, alpha: float, first: bool, design, smooth,
            eps) -> None:
    """Glide every band one tick toward its targets; redesign the bands that moved."""
    m = fx.memory[0]
    for b in range(BANDS):
        t = m[TARGETS + 4 * b:TARGETS + 4 * b + 4]
        v = m[VALUES + 3 * b:VALUES + 3 * b + 3]
        target = (t[0], t[2], _gain_target(t))
        changed = first
        for k in range(3):
            after = target[k] if first else smooth(v[k], target[k], alpha, eps(target[k]))
            changed = changed or after != v[k]
            v[k] = after
        if changed:
            m[COEFS + 5 * b:COEFS + 5 * b + 5] = design(
                EQ_SHAPES[b], float(v[0]), float(v[1]), float(v[2]), sr)


def eq_run(fx: EffectState, x0: np.ndarray, x1: np.ndarray | None) -> None:
    """Every active band in order, per channel; resting bands are skipped and cleared."""
    m = fx.memory[0]
    for ch, x in enumerate((x0, x1)):
        if x is None:
            continue
        row = fx.memory[ch]
        for b in range(BANDS):
            t, v = m[TARGETS + 4 * b:TARGETS + 4 * b + 4], m[VALUES + 3 * b:VALUES + 3 * b + 3]
            z = row[STATE + 2 * b:STATE + 2 * b + 2]
            if v[2] == 0 and _gain_target(t) == 0:
                z[:] = 0.0
                continue
            c = m[COEFS + 5 * b:COEFS + 5 * b + 5]
            y, zf = lfilter(c[0:3], np.array([1.0, c[3], c[4]], dtype=F32), x, zi=z.copy())
            x[:] = y
            z[:] = zf


# ------------------------------------------------------------------ de-esser

def deesser_coefficients(slots: np.ndarray, sr: float) -> None:
    """Band-pass, attack/release, threshold, slope and mode into the COEF slots."""
    v = [float(x) for x in slots[SLOT_VALUE:SLOT_VALUE + 7]]
    lo = v[4]
    hi = v[5] if F32(v[5]) > F32(v[4]) + F32(1.0) else float(F32(v[4]) + F32(1.0))
    centre = min(math.sqrt(lo * hi), 0.49 * sr)
    q = centre / (hi - lo)
    w0 = 2.0 * math.pi * centre / sr
    alpha = math.sin(w0) / (2.0 * q)
    a0 = 1.0 + alpha
    attack, release = v[2] * 1e-3, v[3] * 1e-3
    ratio = F32(v[1]) if F32(v[1]) > F32(1.0) else F32(1.0)
    slots[SLOT_COEF:SLOT_COEF + 8] = (
        alpha / a0, -2.0 * math.cos(w0) / a0, (1.0 - alpha) / a0,
        math.exp(-1.0 / (attack * sr if attack > 1e-5 else 1e-5 * sr)),
        math.exp(-1.0 / (release * sr if release > 1e-5 else 1e-5 * sr)),
        v[0], F32(1.0) - F32(1.0) / ratio, v[6])


def deesser_run(slots: np.ndarray, x0: np.ndarray, x1: np.ndarray | None, log2,
                exp2, log2_to_db: np.float32, db_to_log2: np.float32) -> None:
    """Band-pass per channel, linked peak, hard-knee reduction, smoothed, applied."""
    c = slots[SLOT_COEF:SLOT_COEF + 8]
    b = np.array([c[0], 0.0, -c[0]], dtype=F32)
    a = np.array([1.0, c[1], c[2]], dtype=F32)
    bands = []
    for ch, x in enumerate((x0, x1)):
        if x is None:
            continue
        mem = slots[SLOT_MEM + 2 * ch:SLOT_MEM + 2 * ch + 2]
        y, zf = lfilter(b, a, x, zi=mem.copy())
        mem[:] = zf
        bands.append(y.astype(F32, copy=False))
    level = np.abs(bands[0]) if x1 is None else np.maximum(np.abs(bands[0]), np.abs(bands[1]))
    level = np.maximum(level, F32(1e-10))
    over = log2_to_db * log2(level) - c[5]
    red = np.where(over > 0, c[6] * over, F32(0.0)).astype(F32)
    att, rel = c[3], c[4]
    y = F32(slots[SLOT_MEM + 4])
    for i in range(len(red)):
        d = F32(y - red[i])
        y = F32(red[i] + F32((att if d < 0 else rel) * d))
        red[i] = y
    slots[SLOT_MEM + 4] = y
    gains = exp2(-red * db_to_log2)
    for x, band in zip((x0, x1), bands, strict=False):
        if c[7] >= F32(0.5):
            x *= gains
        else:
            x[:] = (x - band) + gains * band
