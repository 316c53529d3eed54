"""Numpy twin of ``native/lookahead.c``: the lookahead limiter (latency = lookahead).

The same float32 operations in the same order (the running sum in float64, as in C),
so C and twin agree bit for bit; a sample loop, slow by design.
"""

from __future__ import annotations

import math

import numpy as np

from .effects import SLOT_MEM, SLOT_TARGET, SLOT_VALUE, EffectState

F32 = np.float32
W, OVER_AGE, HELD, HELD_AGE, SUM, L_USED, INIT = (SLOT_MEM + k for k in (0, 1, 2, 3, 4, 6, 7))


def lookahead_frames(slots: np.ndarray, sr: float) -> int:
    """The lookahead in frames from the target slot (the C rounding)."""
    return int(math.floor(float(slots[SLOT_TARGET + 2]) * 1e-3 * sr + 0.5))


def _sum_view(slots: np.ndarray) -> np.ndarray:
    return slots[SUM:SUM + 2].view(np.float64)


def lookahead_run(fx: EffectState, x0: np.ndarray, x1: np.ndarray | None, sr: float) -> None:
    """Twin of ``lookahead_run``: delay by the lookahead, gain ramped ahead of peaks."""
    s = fx.slots
    size = fx.memory.shape[1] // 3
    delay0 = fx.memory[0, :size]
    delay1 = fx.memory[1, :size] if x1 is not None else None
    need, held = fx.memory[0, size:2 * size], fx.memory[0, 2 * size:]
    lookahead = min(max(lookahead_frames(s, sr), 0), size - 2)
    if s[INIT] == 0:
        need[:] = 1.0
        held[:] = 1.0
        s[W] = 0.0
        s[OVER_AGE] = s[HELD_AGE] = size
        s[HELD] = 1.0
        s[L_USED] = -1.0
        s[INIT] = 1.0
    w = int(s[W])
    total = float(_sum_view(s)[0])
    if s[L_USED] != F32(lookahead):
        total = 0.0
        for j in range(lookahead + 1):
            total += float(held[(w - 1 - j + 2 * size) % size])
        s[L_USED] = lookahead
        s[OVER_AGE] = s[HELD_AGE] = 0.0
    ceiling = F32(10.0 ** (float(s[SLOT_VALUE]) / 20.0))
    release = float(s[SLOT_VALUE + 1]) * 1e-3
    rel = F32(math.exp(-1.0 / (release * sr if release > 1e-4 else 1e-4 * sr)))
    window = float(lookahead + 1)
    over_age, held_age, r = F32(s[OVER_AGE]), F32(s[HELD_AGE]), F32(s[HELD])
    cap, one, limit = F32(size), F32(1.0), F32(lookahead)
    peaks = np.abs(x0) if x1 is None else np.maximum(np.abs(x0), np.abs(x1))
    for i in range(x0.shape[0]):
        peak = peaks[i]
        needed = F32(ceiling / peak) if peak > ceiling else one
        need[w] = needed
        over_age = F32(0.0) if needed < one else (F32(over_age + one) if over_age < cap else cap)
        m = one
        if over_age <= limit:
            idx = (w - np.arange(lookahead + 1) + size) % size
            m = min(one, F32(need[idx].min()))
        r = F32(one - F32(rel * F32(one - r)))
        r = min(r, m)
        leaving = held[(w - lookahead - 1 + 2 * size) % size]
        held[w] = r
        held_age = F32(0.0) if r < one else (F32(held_age + one) if held_age < cap else cap)
        total = total + float(r) - float(leaving)
        if held_age > limit:
            total = window
        g = F32(total / window)
        rd = (w - lookahead + size) % size
        delay0[w] = x0[i]
        x0[i] = np.clip(F32(delay0[rd] * g), -ceiling, ceiling)
        if x1 is not None and delay1 is not None:
            delay1[w] = x1[i]
            x1[i] = np.clip(F32(delay1[rd] * g), -ceiling, ceiling)
        w = 0 if w + 1 == size else w + 1
    s[W] = w
    s[OVER_AGE] = over_age
    s[HELD_AGE] = held_age
    s[HELD] = r
    _sum_view(s)[0] = total
