"""DSP core: the float32 mixing engine, effects, audio I/O and numpy twins.

Public API
----------
- :func:`mix` -- mono tracks to stereo with the equal-power pan law.
- :class:`Engine` -- renders a :class:`Session` block by block.
- :func:`get_backend` -- ``"native"`` (C) or ``"reference"`` (numpy twins).
"""

from __future__ import annotations

import os

import numpy as np

from .arrays import checked_float32
from .backend import BACKENDS, default_backend, get_backend, native_available
from .effects import EffectSpec, three_band_eq
from .engine import MAX_THREADS, Engine, render_session
from .errors import (
    ArrayError,
    AudioFileError,
    BackendUnavailable,
    DspError,
    NativeError,
    ProjectError,
)
from .session import AutomationLane, AutomationPoint, Bus, Clip, Send, Session, Track

__all__ = [
    "BACKENDS", "ArrayError", "AudioFileError", "AutomationLane", "AutomationPoint",
    "BackendUnavailable", "Bus", "Clip",
    "DspError", "EffectSpec", "Engine", "NativeError", "ProjectError", "Send", "Session",
    "Track", "default_backend", "get_backend", "mix", "native_available", "render_session",
    "three_band_eq",
]


def mix(
    tracks: np.ndarray, gains: np.ndarray, pans: np.ndarray, *, threads: int | None = None,
    backend: str | None = None,
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
    threads:
        Most threads the C engine splits the frames over (fewer when the mix is small);
        default: every core this process may use, as numpy's BLAS does. The result is
        the same bits for every count.

    Returns
    -------
    numpy.ndarray
        float32 ``(2, n_frames)`` with ``L = g cos((p+1)pi/4)``, ``R = g sin((p+1)pi/4)``.
    """
    pans = checked_float32(pans, "pans", (None,))  # the backend checks every array
    if pans.size and not (pans.min() >= -1.0 and pans.max() <= 1.0):  # NaN fails too
        raise ArrayError("pans must lie in [-1, 1]")
    threads = usable_cores() if threads is None else threads
    if not 1 <= threads <= MAX_THREADS:
        raise DspError(f"threads must be between 1 and {MAX_THREADS}, got {threads}")
    return get_backend(backend).mix(tracks, gains, pans, threads)


def usable_cores() -> int:
    """Cores this process may run on, at most the engine's thread limit."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - platforms without affinity
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_THREADS))
