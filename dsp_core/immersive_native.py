"""The C side of immersive panning: ``daw_immersive_pan`` through cffi."""

from __future__ import annotations

import numpy as np

from .native_backend import _ptr, check_status, lib
from .reference_immersive import _checked


def immersive_pan(inputs: np.ndarray, gains_from: np.ndarray, gains_to: np.ndarray
                  ) -> np.ndarray:
    """Same contract as :func:`dsp_core.reference_immersive.immersive_pan`, in C."""
    inputs, gains_from, gains_to = _checked(inputs, gains_from, gains_to)
    n_inputs, frames = inputs.shape
    n_out = gains_to.shape[1]
    out = np.empty((n_out, frames), dtype=np.float32)
    code = lib.daw_immersive_pan(_ptr(inputs), n_inputs, frames, _ptr(gains_from),
                                 _ptr(gains_to), n_out, _ptr(out))
    check_status("daw_immersive_pan", code)
    return out
