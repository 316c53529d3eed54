"""numpy twin of ``daw_immersive_pan`` (native/immersive.c): same operations, same order."""

from __future__ import annotations

import numpy as np

from .arrays import checked_float32
from .errors import ArrayError


def immersive_pan(inputs: np.ndarray, gains_from: np.ndarray, gains_to: np.ndarray
                  ) -> np.ndarray:
    """Pan ``inputs`` (sources, frames) to (channels, frames); each gain glides linearly
    over the block from ``gains_from`` to ``gains_to`` (sources, channels)."""
    inputs, gains_from, gains_to = _checked(inputs, gains_from, gains_to)
    n_inputs, frames = inputs.shape
    n_out = gains_to.shape[1]
    out = np.zeros((n_out, frames), dtype=np.float32)
    if frames == 0:
        return out
    inv = np.float32(1.0) / np.float32(frames)
    ramp = np.arange(1, frames + 1, dtype=np.float32) * inv
    for c in range(n_out):
        for i in range(n_inputs):
            g0, g1 = gains_from[i, c], gains_to[i, c]
            if g0 == 0.0 and g1 == 0.0:
                continue
            if g0 == g1:
                out[c] += g1 * inputs[i]
            else:
                out[c] += (g0 + (g1 - g0) * ramp) * inputs[i]
    return out


def _checked(inputs: np.ndarray, gains_from: np.ndarray, gains_to: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The one check both backends run before panning."""
    inputs = checked_float32(inputs, "inputs", (None, None))
    gains_to = checked_float32(gains_to, "gains_to", (inputs.shape[0], None))
    gains_from = checked_float32(gains_from, "gains_from", gains_to.shape)
    if gains_to.shape[1] < 1:
        raise ArrayError("gains need at least one output channel")
    return inputs, gains_from, gains_to
