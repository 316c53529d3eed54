"""A sample rendered at a project's tempo and in its key, for auditioning.

Time-stretching and pitch-shifting use Rubber Band (the ``rubberband`` command of
Debian's ``rubberband-cli``, through :mod:`dsp_core.stretch`, the one module that runs
it) when it is installed. Without it the
preview falls back to resampling (soxr), which shifts pitch only: the length then
changes with the pitch and the tempo is not matched (the answer says which was used).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dsp_core.audio_io import resample
from dsp_core.stretch import StretchSpec, render_stretch, rubberband_available

from .errors import BadQuery
from .music import parse_key, semitones_between
from .records import Sample

MAX_RATIO = 4.0


@dataclass(frozen=True)
class Preview:
    """The rendered audio and how it was made."""

    audio: np.ndarray
    sample_rate: int
    tempo_ratio: float
    semitones: int
    method: str


def plan(sample: Sample, tempo: float | None, key: str | None) -> tuple[float, int]:
    """``(tempo ratio, semitones)`` that take ``sample`` to the project's tempo and key."""
    ratio = 1.0
    if tempo is not None:
        if not 20 <= tempo <= 400:
            raise BadQuery(f"tempo {tempo} is outside 20..400 BPM")
        if sample.bpm:
            ratio = tempo / sample.bpm
            if not 1 / MAX_RATIO <= ratio <= MAX_RATIO:
                raise BadQuery(f"tempo {tempo} is over {MAX_RATIO:g}x away from the sample's "
                               f"{sample.bpm} BPM; choose a nearer tempo")
    shift = 0
    if key and sample.key:
        shift = semitones_between(sample.key, parse_key(key))
    return ratio, shift


def render(audio: np.ndarray, rate: int, ratio: float, semitones: int) -> Preview:
    """Stretch planar float32 ``audio`` by ``ratio`` (new tempo / old) and shift it."""
    if ratio == 1.0 and semitones == 0:
        return Preview(audio, rate, ratio, semitones, "none")
    if rubberband_available():
        spec = StretchSpec(stretch=1.0 / ratio, semitones=semitones)
        out = render_stretch(np.ascontiguousarray(audio, dtype=np.float32), rate, spec)
        return Preview(out, rate, ratio, semitones, "rubberband")
    factor = 2.0 ** (semitones / 12)
    shifted = resample(np.ascontiguousarray(audio, dtype=np.float32), rate,
                       max(1, round(rate / factor)))
    return Preview(shifted, rate, 1.0, semitones, "resample")
