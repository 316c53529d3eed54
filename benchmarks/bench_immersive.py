"""Immersive panning: 64 objects to 7.1.4, the C kernel against its numpy twin.

Run: ``python -m pytest benchmarks/bench_immersive.py -s -p no:cacheprovider``
(``DAW_BENCH_SMOKE=1`` for the quick check CI runs). Both contenders pan the same 64
mono objects (noise) at scattered positions to the 12 channels of 7.1.4 in blocks of
1024 frames, with gains gliding over every block (each object moving: the kernel's
worst case) and static; ratios are taken round by round
(:func:`benchmarks.conftest.median_ratio`). Also reported: what computing one object's
gains in Python costs when it moves (:mod:`dsp_core.immersive_panner`).
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from benchmarks.conftest import SMOKE, median_ratio, record, rounds_of
from dsp_core.immersive_panner import panner
from dsp_core.immersive_render import pan_kernel

OBJECTS = 64
BLOCK = 1024
BLOCKS = 4 if SMOKE else 94  # about 2 s at 48 kHz


def _positions(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.uniform(-180, 180, OBJECTS), rng.uniform(-20, 70, OBJECTS)])


def _gains(positions: np.ndarray) -> np.ndarray:
    return np.array([panner("7.1.4").gains(az, el) for az, el in positions], dtype=np.float32)


@pytest.mark.parametrize("moving", [True, False], ids=["moving", "static"])
def test_64_objects_to_7_1_4_c_vs_twin(benchmark, moving: bool) -> None:
    rng = np.random.default_rng(0)
    audio = (0.1 * rng.standard_normal((OBJECTS, BLOCK * BLOCKS))).astype(np.float32)
    start, end = _gains(_positions(1)), _gains(_positions(2) if moving else _positions(1))
    blocks = [np.ascontiguousarray(audio[:, i * BLOCK:(i + 1) * BLOCK]) for i in range(BLOCKS)]

    def run(kernel):  # noqa: ANN001, ANN202 - a backend's immersive_pan
        return lambda: [kernel(b, start, end) for b in blocks]

    native, twin = pan_kernel("native"), pan_kernel("reference")
    np.testing.assert_array_equal(native(blocks[0], start, end), twin(blocks[0], start, end))
    times = rounds_of({"c": run(native), "twin": run(twin)})
    seconds = BLOCK * BLOCKS / 48000
    record(benchmark, objects=OBJECTS, block=BLOCK,
           c_realtime=seconds / min(times["c"]),
           twin_realtime=seconds / min(times["twin"]),
           c_vs_twin=median_ratio(times, "twin", "c"))


def test_gains_for_a_moved_object(benchmark) -> None:
    positions = _positions(3)
    pan = panner("7.1.4")
    begin = time.perf_counter()
    for az, el in positions:
        pan.gains(az, el)
    record(benchmark, us_per_object=(time.perf_counter() - begin) / OBJECTS * 1e6)
