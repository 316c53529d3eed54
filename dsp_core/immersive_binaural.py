"""Binaural rendering for headphones: virtual 7.1.4 loudspeakers through HRTFs from SOFA.

The mix is panned to 7.1.4 as for loudspeakers, then each loudspeaker's signal is
convolved with the head-related impulse responses measured nearest its direction and
the results summed per ear. HRTFs come from a SOFA file (AES69, SimpleFreeFieldHRIR),
read with h5py; the default is Debian's (package ``libmysofa1``): the MIT KEMAR
measurements at ``/usr/share/libmysofa/default.sofa``. ``$DAW_SOFA`` or the ``sofa``
argument names another file. The LFE channel is not sent to the headphones.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soxr
from scipy.signal import oaconvolve

from .errors import DspError
from .immersive import BED_714, LFE, nominal_position
from .immersive_panner import direction

DEFAULT_SOFA = Path("/usr/share/libmysofa/default.sofa")


@dataclass(frozen=True)
class Hrtf:
    """Head-related impulse responses: ``irs[m]`` (left, right) measured from
    ``directions[m]`` (unit vectors, x right, y front, z up)."""

    sample_rate: float
    directions: np.ndarray  # (M, 3)
    irs: np.ndarray  # float32 (M, 2, taps): left ear, right ear
    source: str

    def nearest(self, azimuth: float, elevation: float) -> np.ndarray:
        """The (2, taps) responses measured nearest to a direction (ADM degrees)."""
        return self.irs[int(np.argmax(self.directions @ direction(azimuth, elevation)))]


def load_sofa(path: str | os.PathLike[str] | None = None) -> Hrtf:
    """Read a SimpleFreeFieldHRIR SOFA file (default: ``$DAW_SOFA`` or Debian's KEMAR)."""
    import h5py  # SOFA files are netCDF-4, i.e. HDF5

    chosen = Path(path or os.environ.get("DAW_SOFA") or DEFAULT_SOFA)
    if not chosen.is_file():
        raise DspError(f"no SOFA file at {chosen}: install Debian's libmysofa1 (it ships "
                       "/usr/share/libmysofa/default.sofa) or pass a SOFA file / set DAW_SOFA")
    try:
        with h5py.File(chosen, "r") as sofa:
            irs = np.asarray(sofa["Data.IR"], dtype=np.float32)
            rate = float(np.asarray(sofa["Data.SamplingRate"]).ravel()[0])
            positions = np.asarray(sofa["SourcePosition"], dtype=np.float64)
            kind = sofa["SourcePosition"].attrs.get("Type", b"spherical")
            receivers = np.asarray(sofa["ReceiverPosition"]).reshape(-1, 3)
    except (OSError, KeyError) as exc:
        raise DspError(f"{chosen} is not a SimpleFreeFieldHRIR SOFA file: {exc}") from exc
    if irs.ndim != 3 or irs.shape[1] != 2:
        raise DspError(f"{chosen}: Data.IR must be (measurements, 2 ears, taps), "
                       f"got {irs.shape}")
    if (kind.decode() if isinstance(kind, bytes) else str(kind)) == "cartesian":
        # SOFA: x front, y left, z up -> ours: x right, y front, z up
        vectors = np.stack([-positions[:, 1], positions[:, 0], positions[:, 2]], axis=1)
    else:
        vectors = np.array([direction(az, el) for az, el in positions[:, :2]])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    if receivers[0, 1] < receivers[1, 1]:  # receiver 0 should be the left ear (y > 0)
        irs = irs[:, ::-1, :]
    return Hrtf(rate, vectors, np.ascontiguousarray(irs), str(chosen))


def binaural(speakers: np.ndarray, hrtf: Hrtf, sample_rate: int) -> np.ndarray:
    """Headphone signal (2, frames) of a 7.1.4 render ``speakers`` (12, frames)."""
    if speakers.shape[0] != len(BED_714):
        raise DspError(f"binaural needs a 7.1.4 render (12 channels), got {speakers.shape}")
    frames = speakers.shape[1]
    out = np.zeros((2, frames), dtype=np.float64)
    for signal, label in zip(speakers, BED_714, strict=True):
        if label == LFE or not np.any(signal):
            continue
        ir = hrtf.nearest(*nominal_position(label))
        if hrtf.sample_rate != sample_rate:
            ir = soxr.resample(ir.T, hrtf.sample_rate, sample_rate).T
            ir = ir * np.float32(hrtf.sample_rate / sample_rate)  # keep the gain per sample
        for ear in (0, 1):
            out[ear] += oaconvolve(signal.astype(np.float64), ir[ear])[:frames]
    return out.astype(np.float32)
