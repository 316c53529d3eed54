"""Where the reverb keeps its state: the memory-row layout shared by C and twin.

Copies of ``native/internal.h``'s ``REVERB_*`` numbers and ``native/reverb.c``'s
tunings (tests/test_effects_more.py holds them to the C source).  Each memory row
(one per channel) is a header of state floats, then eight comb buffers, four
allpass buffers and the pre-delay line; buffer slots are sized for the right
channel, whose lines are ``SPREAD`` tuning samples longer.
"""

from __future__ import annotations

from dataclasses import dataclass

COMB_TUNING = (1116, 1188, 1277, 1356, 1422, 1491, 1557, 1617)
ALLPASS_TUNING = (556, 441, 341, 225)
HEADER = 32
SPREAD = 23
TUNING_RATE = 44100.0
MAX_PRE_MS = 250.0
INPUT_GAIN = 0.03
WET_SCALE = 3.0
# header offsets
COMB_STORE, COMB_INDEX, ALLPASS_INDEX, PRE_INDEX = 0, 8, 16, 20


@dataclass(frozen=True)
class ReverbLayout:
    """Offsets and lengths (frames) of every line at one sample rate."""

    comb_off: tuple[int, ...]
    comb_len: tuple[tuple[int, ...], tuple[int, ...]]  # [channel][comb]
    ap_off: tuple[int, ...]
    ap_len: tuple[tuple[int, ...], tuple[int, ...]]
    pre_off: int
    pre_len: int
    pre_max: int
    total: int


def _scaled(frames: int, sr: float) -> int:
    return int(float(frames) * sr / TUNING_RATE)


def reverb_layout(sr: float) -> ReverbLayout:
    """The layout ``native/reverb.c`` computes for sample rate ``sr``."""
    off = HEADER
    comb_off, ap_off = [], []
    comb_len = ([_scaled(t, sr) for t in COMB_TUNING],
                [_scaled(t + SPREAD, sr) for t in COMB_TUNING])
    for length in comb_len[1]:
        comb_off.append(off)
        off += length
    ap_len = ([_scaled(t, sr) for t in ALLPASS_TUNING],
              [_scaled(t + SPREAD, sr) for t in ALLPASS_TUNING])
    for length in ap_len[1]:
        ap_off.append(off)
        off += length
    pre_max = int(MAX_PRE_MS * 1e-3 * sr)
    pre_len = pre_max + ap_len[0][-1] + 2
    return ReverbLayout(tuple(comb_off), (tuple(comb_len[0]), tuple(comb_len[1])),
                        tuple(ap_off), (tuple(ap_len[0]), tuple(ap_len[1])),
                        off, pre_len, pre_max, off + pre_len)
