"""DSP core: the float32 mixing engine, effects, audio I/O and numpy twins.

Public API
----------
- :func:`mix` -- mono tracks to stereo with the equal-power pan law.
- :class:`Engine` -- renders a :class:`Session` block by block.
- :func:`get_backend` -- ``"native"`` (C) or ``"reference"`` (numpy twins).
"""

from __future__ import annotations

import numpy as np

from .arrays import checked_float32
from .backend import BACKENDS, default_backend, get_backend, native_available
from .effects import EffectSpec, three_band_eq
from .engine import Engine, render_session
from .errors import (
    ArrayError,
    AudioFileError,
    BackendUnavailable,
    DspError,
    NativeError,
    ProjectError,
)
from .session import Bus, Clip, Send, Session, Track

__all__ = [
    "BACKENDS", "ArrayError", "AudioFileError", "BackendUnavailable", "Bus", "Clip",
    "DspError", "EffectSpec", "Engine", "NativeError", "ProjectError", "Send", "Session",
    "Track", "default_backend", "get_backend", "mix", "native_available", "render_session",
    "three_band_eq",
]


def mix(
    tracks: np.ndarray, gains: np.ndarray, pans: np.ndarray, *, backend: str | None = None
) -> np.ndarray:
    """Mix mono tracks to stereo.

    Parameters
    ----------
    tracks:
        float32 ``(n_tracks, n_frames)``.
    gains:
        Linear float32 ``(n_tracks,)``.
    pans:
        float32 ``(n_tracks,)`` in ``[-1, 1]``.

    Returns
    -------
    numpy.ndarray
        float32 ``(2, n_frames)`` with ``L = g cos((p+1)pi/4)``, ``R = g sin((p+1)pi/4)``.
    """
    tracks = checked_float32(tracks, "tracks", (None, None))
    gains = checked_float32(gains, "gains", (tracks.shape[0],))
    pans = checked_float32(pans, "pans", (tracks.shape[0],))
    if pans.size and (np.nanmax(np.abs(pans)) > 1.0 or np.isnan(pans).any()):
        raise ArrayError("pans must lie in [-1, 1]")
    return get_backend(backend).mix(tracks, gains, pans)
