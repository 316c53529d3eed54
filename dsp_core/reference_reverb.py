"""Numpy twin of ``native/reverb.c`` (Freeverb-style reverb).

The C kernel walks sample by sample through every line; here each line runs a
chunk at a time (a chunk no longer than the shortest line, so no sample is read
after it is overwritten), and each comb's damping lowpass is one ``lfilter``
call.  Every sample sees the same float32 operations as in C, so the two agree
bit for bit.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter

from .effects import SLOT_COEF, SLOT_VALUE, EffectState
from .reverb_layout import (
    ALLPASS_INDEX,
    COMB_INDEX,
    COMB_STORE,
    INPUT_GAIN,
    MAX_PRE_MS,
    PRE_INDEX,
    WET_SCALE,
    reverb_layout,
)

F32 = np.float32


def reverb_coefficients(slots: np.ndarray, sr: float) -> None:
    """Feedback, damping, wet/dry gains and pre-delay frames into the COEF slots."""
    v = [float(x) for x in slots[SLOT_VALUE:SLOT_VALUE + 5]]
    room, damping, pre_ms, width, mix = v
    damp1 = damping * 0.4
    wet = mix * WET_SCALE
    pre = int(pre_ms * 1e-3 * sr)
    most = int(MAX_PRE_MS * 1e-3 * sr)
    slots[SLOT_COEF:SLOT_COEF + 8] = (room * 0.28 + 0.7, damp1, 1.0 - damp1,
                                      wet * (0.5 + 0.5 * width), wet * (0.5 - 0.5 * width),
                                      1.0 - mix, wet, min(max(pre, 0), most))


def _ring(start: int, length: int, at: int, n: int) -> np.ndarray:
    """Indices of n consecutive frames of a ring buffer from ``at``."""
    return start + (at + np.arange(n)) % length


def _comb(row: np.ndarray, off: int, length: int, k: int, inp: np.ndarray,
          c: np.ndarray) -> np.ndarray:
    fb, damp1, damp2 = c[0], c[1], c[2]
    at = int(row[COMB_INDEX + k])
    idx = _ring(off, length, at, len(inp))
    out = row[idx]
    zi = np.array([row[COMB_STORE + k] * damp1], dtype=F32)
    store, _ = lfilter(np.array([damp2], dtype=F32), np.array([1.0, -damp1], dtype=F32),
                       out, zi=zi)
    store = store.astype(F32, copy=False)
    row[idx] = inp + store * fb
    row[COMB_STORE + k] = store[-1]
    row[COMB_INDEX + k] = (at + len(inp)) % length
    return out


def _allpass(row: np.ndarray, off: int, length: int, k: int, x: np.ndarray) -> np.ndarray:
    at = int(row[ALLPASS_INDEX + k])
    idx = _ring(off, length, at, len(x))
    out = row[idx]
    row[idx] = x + out * F32(0.5)
    row[ALLPASS_INDEX + k] = (at + len(x)) % length
    return out - x


def _network(row: np.ndarray, ch: int, inp: np.ndarray, c: np.ndarray, sr: float) -> np.ndarray:
    g = reverb_layout(sr)
    acc = np.zeros_like(inp)
    for k, off in enumerate(g.comb_off):
        acc += _comb(row, off, g.comb_len[ch][k], k, inp, c)
    for k, off in enumerate(g.ap_off):
        acc = _allpass(row, off, g.ap_len[ch][k], k, acc)
    return acc


def reverb_run(fx: EffectState, x0: np.ndarray, x1: np.ndarray | None, sr: float) -> None:
    """Twin of the C ``reverb_run``: the stereo (or mono) reverb in place."""
    g = reverb_layout(sr)
    c = fx.slots[SLOT_COEF:SLOT_COEF + 8]
    dry, wet1, wet2, wetm = c[5], c[3], c[4], c[6]
    d = int(c[7])
    row0 = fx.memory[0]
    chunk = g.ap_len[0][-1]
    for pos in range(0, len(x0), chunk):
        seg = slice(pos, min(pos + chunk, len(x0)))
        a = x0[seg]
        b = None if x1 is None else x1[seg]
        mono = a if b is None else (a + b) * F32(0.5)
        pw = int(row0[PRE_INDEX])
        n = len(a)
        row0[_ring(g.pre_off, g.pre_len, pw, n)] = mono * F32(INPUT_GAIN)
        inp = row0[_ring(g.pre_off, g.pre_len, (pw - d) % g.pre_len, n)]
        row0[PRE_INDEX] = (pw + n) % g.pre_len
        left = _network(row0, 0, inp, c, sr)
        if b is None:
            a[:] = a * dry + left * wetm
            continue
        right = _network(fx.memory[1], 1, inp, c, sr)
        la, rb = a.copy(), b.copy()
        a[:] = la * dry + (left * wet1 + right * wet2)
        b[:] = rb * dry + (right * wet1 + left * wet2)



