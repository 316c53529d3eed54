"""Numpy twins of ``native/shaping.c``: gate/expander and saturation."""

from __future__ import annotations

import math

import numpy as np

from .effects import SLOT_COEF, SLOT_MEM, SLOT_VALUE

F32 = np.float32


def gate_coefficients(slots: np.ndarray, sr: float) -> None:
    """Threshold and floor (linear), attack/release coefficients, hold in frames."""
    v = [float(x) for x in slots[SLOT_VALUE:SLOT_VALUE + 5]]
    attack, release = v[2] * 1e-3, v[4] * 1e-3
    slots[SLOT_COEF:SLOT_COEF + 5] = (
        10.0 ** (v[0] / 20.0), 10.0 ** (-v[1] / 20.0),
        math.exp(-1.0 / (attack * sr if attack > 1e-5 else 1e-5 * sr)),
        math.exp(-1.0 / (release * sr if release > 1e-5 else 1e-5 * sr)),
        float(int(v[3] * 1e-3 * sr)),
    )


def gate_run(slots: np.ndarray, x0: np.ndarray, x1: np.ndarray | None,
             k0: np.ndarray | None = None, k1: np.ndarray | None = None) -> None:
    """Stereo-linked gate: open at or above threshold, held, then attenuated by range.

    The detector reads ``k0``/``k1`` (a sidechain key) when given, else the input.
    """
    if k0 is None:
        k0, k1 = x0, x1
    threshold, floor_gain, att, rel, hold_frames = slots[SLOT_COEF:SLOT_COEF + 5]
    g, hold = F32(slots[SLOT_MEM]), F32(slots[SLOT_MEM + 1])
    one, zero = F32(1.0), F32(0.0)
    peaks = np.abs(k0) if k1 is None else np.maximum(np.abs(k0), np.abs(k1))
    gains = np.empty_like(x0)
    for i, peak in enumerate(peaks):
        is_open = True
        if peak >= threshold:
            hold = hold_frames
        elif hold > zero:
            hold = F32(hold - one)
        else:
            is_open = False
        target = one if is_open else floor_gain
        k = att if target > g else rel
        g = F32(target + F32(k * F32(g - target)))
        gains[i] = g
    slots[SLOT_MEM] = g
    slots[SLOT_MEM + 1] = hold
    x0 *= gains
    if x1 is not None:
        x1 *= gains


def saturation_coefficients(slots: np.ndarray) -> None:
    """Drive (linear) and the dry and wet gains, output level included."""
    v = slots[SLOT_VALUE:SLOT_VALUE + 3]
    out, mix = 10.0 ** (float(v[2]) / 20.0), float(v[1])
    slots[SLOT_COEF:SLOT_COEF + 3] = (10.0 ** (float(v[0]) / 20.0), (1.0 - mix) * out,
                                      mix * out)


def saturation_run(slots: np.ndarray, x0: np.ndarray, x1: np.ndarray | None) -> None:
    """x (27 + x^2) / (27 + 9 x^2) of the driven signal, clamped at |x| = 3, mixed."""
    drive, dry, wet = slots[SLOT_COEF:SLOT_COEF + 3]
    for x in (x0, x1):
        if x is None:
            continue
        v = np.clip(x * drive, F32(-3.0), F32(3.0))
        v2 = v * v
        y = np.clip(v * (F32(27.0) + v2) / (F32(27.0) + F32(9.0) * v2), F32(-1.0), F32(1.0))
        x[:] = x * dry + y * wet
