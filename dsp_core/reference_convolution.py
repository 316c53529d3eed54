"""Numpy twin of ``native/convolution.c``: partitioned overlap-save convolution.

The same stages, partitions, delay lines, input ring and timing as the C kernel, with
``numpy.fft`` (float64) for the transforms where C runs its own float32 radix-2
FFT: the two agree to float32 rounding of the transforms (tested:
|C - twin| <= 2e-6 x the IR's energy x the input's peak, see docs/engine.md).
"""

from __future__ import annotations

import math

import numpy as np

from .convolution_layout import (
    H_CROSS,
    H_PARTS,
    H_RING,
    H_TAIL_PARTS,
    MAX_PRE_MS,
    ConvolutionLayout,
    StageLayout,
    convolution_layout,
)
from .effects import SLOT_COEF, SLOT_VALUE, EffectState

F32 = np.float32


def conv_coefficients(slots: np.ndarray, sr: float) -> None:
    """Dry and wet gains and the pre-delay in frames into the COEF slots."""
    mix, pre_ms, wet_db = (float(x) for x in slots[SLOT_VALUE:SLOT_VALUE + 3])
    pre = int(pre_ms * 1e-3 * sr)
    most = int(MAX_PRE_MS * 1e-3 * sr)
    slots[SLOT_COEF:SLOT_COEF + 3] = (1.0 - mix, mix * math.pow(10.0, wet_db / 20.0),
                                      min(max(pre, 0), most))


def _transform_input(row: np.ndarray, g: StageLayout) -> None:
    """The newest input window's spectrum onto the delay line at its head."""
    p, bins = g.partition, g.partition + 1
    head = int(row[g.h_head])
    spectrum = np.fft.rfft(row[g.inp:g.inp + 2 * p].astype(np.float64))
    slot = row[g.fdl + head * 2 * bins:g.fdl + (head + 1) * 2 * bins]
    slot[:bins], slot[bins:] = spectrum.real, spectrum.imag


def _delay_line_sum(fdl_row: np.ndarray, irs: np.ndarray, g: StageLayout,
                    head: int) -> np.ndarray:
    """Sum over the delay line of input spectra times IR spectra (complex128)."""
    bins = g.partition + 1
    fdl = fdl_row[g.fdl:g.inp].reshape(g.parts, 2, bins).astype(np.float64)
    irs = irs.reshape(g.parts, 2, bins).astype(np.float64)
    order = (head - np.arange(g.parts)) % g.parts
    x = fdl[order, 0] + 1j * fdl[order, 1]
    return np.sum(x * (irs[:, 0] + 1j * irs[:, 1]), axis=0)


def _accumulate(row: np.ndarray, g: StageLayout, other: np.ndarray | None = None) -> None:
    """This row's output partition from its delay line (plus, true stereo, the other
    input's delay line through the cross IR), then advance the input window."""
    p = g.partition
    head = int(row[g.h_head])
    acc = _delay_line_sum(row, row[g.ir:g.xir], g, head)
    if other is not None:
        acc = acc + _delay_line_sum(other, row[g.xir:g.fdl], g, head)
    row[g.out:g.out + p] = np.fft.irfft(acc, 2 * p)[p:]
    row[g.inp:g.inp + p] = row[g.inp + p:g.inp + 2 * p]
    row[g.h_head] = (head + 1) % g.parts


def _partition(row: np.ndarray, g: StageLayout) -> None:
    _transform_input(row, g)
    _accumulate(row, g)


def _channel(c: np.ndarray, row: np.ndarray, x: np.ndarray, g: ConvolutionLayout,
             partitions: bool = True) -> None:
    dry, wet, d = c[0], c[1], int(c[2])
    length = g.ring_len
    ring = row[g.ring:g.ring + length]
    stages = g.stages
    w, i = int(row[H_RING]), 0
    pos = [int(row[s.h_fill]) for s in stages]
    while i < len(x):
        m = min(len(x) - i, *(s.partition - p for s, p in zip(stages, pos, strict=True)))
        at = (w + np.arange(m)) % length
        ring[at] = x[i:i + m]
        fed = ring[(at - d) % length]
        outs = []
        for s, p in zip(stages, pos, strict=True):
            row[s.inp + s.partition + p:s.inp + s.partition + p + m] = fed
            outs.append(row[s.out + p:s.out + p + m])
        wet_in = outs[0] if len(outs) == 1 else outs[0] + outs[1]
        x[i:i + m] = ring[(at - stages[0].partition) % length] * dry + wet_in * wet
        w, i = (w + m) % length, i + m
        for k, s in enumerate(stages):
            pos[k] += m
            if pos[k] == s.partition:
                if partitions:
                    _partition(row, s)
                pos[k] = 0
    row[H_RING] = w
    for s, p in zip(stages, pos, strict=True):
        row[s.h_fill] = p


def conv_run(fx: EffectState, x0: np.ndarray, x1: np.ndarray | None, sr: float) -> None:
    """Twin of the C ``conv_run``: the convolution reverb in place."""
    row0 = fx.memory[0]
    g = convolution_layout(int(row0[H_PARTS]), int(row0[H_TAIL_PARTS]), sr,
                           cross=bool(row0[H_CROSS]))
    c = fx.slots[SLOT_COEF:SLOT_COEF + 3]
    if g.cross and x1 is not None:
        _true_stereo(c, row0, fx.memory[1], x0, x1, g)
        return
    _channel(c, row0, x0, g)
    if x1 is not None:
        _channel(c, fx.memory[1], x1, g)


def _true_stereo(c: np.ndarray, row0: np.ndarray, row1: np.ndarray, x0: np.ndarray,
                 x1: np.ndarray, g: ConvolutionLayout) -> None:
    """Both channels in step, a partition at a time: each output partition needs both
    inputs' delay lines at the same place."""
    i = 0
    while i < len(x0):
        m = min(len(x0) - i, *(s.partition - int(row0[s.h_fill]) for s in g.stages))
        _channel(c, row0, x0[i:i + m], g, partitions=False)
        _channel(c, row1, x1[i:i + m], g, partitions=False)
        for s in g.stages:
            if row0[s.h_fill] == 0:
                _transform_input(row0, s)
                _transform_input(row1, s)
                _accumulate(row0, s, row1)
                _accumulate(row1, s, row0)
        i += m
