"""The immersive mix streamed block by block, folded to two channels for monitoring.

>>> engine = ImmersiveLiveEngine(session, 48000, monitor="binaural")
>>> block = engine.render(start, 960)      # float32 (2, 960): headphones
>>> engine.apply(edited_session)           # positions glide; new routes rebuild

The same parts as :func:`dsp_core.immersive_render.render_stems` (each routed track on
its own engine, the tracks without a route with the buses and master onto the bed's
front pair), rendered for each block instead of for the whole file; the bed and objects
are panned in C with the gains gliding over the block when a position moved, then either
folded to stereo (the stereo layout's gains) or, for headphones, each 7.1.4 loudspeaker
convolved with its HRIR (one batched FFT per block), the tail carried into the next block. The
interface is the engine's (``render``, ``apply``), so the live mix
(:mod:`dawserver.live_mix`) plays it like the stereo engine.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import soxr

from .engine import Engine
from .errors import DspError
from .graph import SourceLoader
from .immersive import BED_714, LFE, nominal_position
from .immersive_binaural import load_sofa
from .immersive_panner import direct_gains, panner
from .immersive_render import HEADPHONES, _alone, _mono, _with_keys, pan_kernel
from .session import Bus, Session

#: What the live mix can be monitored as besides its plain stereo mix.
MONITORS = (HEADPHONES, "stereo")


class ImmersiveLiveEngine:
    """A session's immersive mix for monitoring, rendered block by block (two channels)."""

    def __init__(self, session: Session, sample_rate: int | None = None, *,
                 monitor: str = HEADPHONES, backend: str | None = None,
                 loader: SourceLoader | None = None, sofa: str | None = None,
                 block_size: int = 1024, threads: int | None = None) -> None:
        if monitor not in MONITORS:
            raise DspError(f"unknown monitoring {monitor!r}; choose one of {', '.join(MONITORS)}")
        self.sample_rate = int(sample_rate or session.sample_rate)
        self.monitor, self.backend, self.loader = monitor, backend, loader
        self.block_size, self.threads = block_size, threads
        self._kernel = pan_kernel(backend)
        self._layout = "7.1.4" if monitor == HEADPHONES else "stereo"
        self._hrirs = self._load_hrirs(sofa) if monitor == HEADPHONES else None
        self._tails: np.ndarray | None = None
        self._spectra: dict[int, np.ndarray] = {}
        self._build(session)

    # -- structure -----------------------------------------------------------------------

    def _load_hrirs(self, sofa: str | None) -> dict[int, np.ndarray]:
        """Per 7.1.4 loudspeaker (not the LFE): its HRIR pair (2, taps) at our rate."""
        hrtf = load_sofa(sofa)
        out = {}
        for index, label in enumerate(BED_714):
            if label == LFE:
                continue
            ir = hrtf.nearest(*nominal_position(label))
            if hrtf.sample_rate != self.sample_rate:
                ir = soxr.resample(ir.T, hrtf.sample_rate, self.sample_rate).T
                ir = ir * (hrtf.sample_rate / self.sample_rate)  # keep the gain per sample
            out[index] = np.asarray(ir, dtype=np.float64)
        return out

    @staticmethod
    def _structure(session: Session) -> tuple:
        """What a rebuild follows: which tracks are routed, how, and their channels."""
        return tuple((t.id, t.channels, t.immersive.kind,
                      tuple(t.immersive.channels) if t.immersive.kind == "bed" else ())
                     for t in session.tracks if t.immersive is not None)

    def _parts(self, session: Session) -> list[tuple[str | None, Session]]:
        """(routed track id or None for the rest, the session that part renders)."""
        any_solo = any(t.solo for t in session.tracks)
        plain = [t for t in session.tracks if t.immersive is None]
        parts: list[tuple[str | None, Session]] = []
        if plain:
            if any_solo:
                plain = [dataclasses.replace(t, mute=t.mute or not t.solo) for t in plain]
            parts.append((None, dataclasses.replace(session, tracks=_with_keys(
                plain, session.buses, session, any_solo))))
        for track in session.tracks:
            if track.immersive is not None:  # (every other field, the tempo map too, carries)
                parts.append((track.id, dataclasses.replace(session, tracks=_with_keys(
                    [_alone(track, any_solo)], [], session, any_solo), buses=[],
                    master=Bus(id="master", name="Master"))))
        return parts

    def _build(self, session: Session) -> None:
        session.validate(allow_overlaps=True)
        self.session = session
        self._shape = self._structure(session)
        self._engines = [(track_id, Engine(part, sample_rate=self.sample_rate,
                                            block_size=self.block_size, backend=self.backend,
                                            loader=self.loader, threads=self.threads))
                         for track_id, part in self._parts(session)]
        self._gains = self._source_gains(session)

    def _source_gains(self, session: Session) -> np.ndarray:
        """(12 bed channels + objects, layout channels), as source_gains."""
        rows = [direct_gains(label, self._layout) for label in BED_714]
        rows += [panner(self._layout).gains(t.immersive.azimuth, t.immersive.elevation)
                 for t in session.tracks
                 if t.immersive is not None and t.immersive.kind == "object"]
        return np.array(rows, dtype=np.float32)

    def apply(self, session: Session) -> None:
        """Follow an edited session: parameters and positions glide over the next block;
        a changed set of routes rebuilds the parts."""
        session.validate(allow_overlaps=True)
        if self._structure(session) != self._shape or len(session.tracks) != len(
                self.session.tracks) or {b.id for b in session.buses} != {
                b.id for b in self.session.buses}:
            self._build(session)
            return
        for (_, engine), (_, part) in zip(self._engines, self._parts(session), strict=True):
            engine.apply(part)
        self.session = session
        self._next_gains = self._source_gains(session)

    # -- audio ---------------------------------------------------------------------------

    def render(self, start: int, frames: int) -> np.ndarray:
        """``frames`` frames of the monitoring mix from timeline frame ``start``: (2, frames)."""
        bed = np.zeros((len(BED_714), frames), dtype=np.float32)
        objects = []
        channels = {t.id: t for t in self.session.tracks}
        for track_id, engine in self._engines:
            stereo = engine.render(start, frames)
            if track_id is None:
                bed[0] += stereo[0]  # M+030
                bed[1] += stereo[1]  # M-030
                continue
            track = channels[track_id]
            if track.immersive.kind == "object":
                objects.append(_mono(stereo, track.channels))
            elif track.channels == 1:
                bed[BED_714.index(track.immersive.channels[0])] += _mono(stereo, 1)
            else:
                for side, label in enumerate(track.immersive.channels):
                    bed[BED_714.index(label)] += stereo[side]
        sources = np.ascontiguousarray(np.concatenate([bed, *[o[None, :] for o in objects]]))
        target = getattr(self, "_next_gains", None)
        to = self._gains if target is None else target
        speakers = self._kernel(sources, self._gains, to)
        self._gains, self._next_gains = to, None
        if self._hrirs is None:
            return speakers
        return self._binaural(speakers)

    def _binaural(self, speakers: np.ndarray) -> np.ndarray:
        """Each loudspeaker convolved with its HRIR pair and summed per ear: one batched FFT
        of the block (the HRIRs' spectra kept per FFT size), the tail carried on."""
        frames = speakers.shape[1]
        assert self._hrirs is not None
        indices = list(self._hrirs)
        taps = max(ir.shape[1] for ir in self._hrirs.values())
        size = 1 << (frames + taps - 2).bit_length()  # >= frames + taps - 1
        spectra = self._spectra.get(size)
        if spectra is None:
            irs = np.zeros((len(indices), 2, taps))
            for row, index in enumerate(indices):
                irs[row, :, :self._hrirs[index].shape[1]] = self._hrirs[index]
            spectra = self._spectra[size] = np.fft.rfft(irs, size)  # (speakers, 2, bins)
        if self._tails is None:
            self._tails = np.zeros((2, taps - 1))
        x = np.fft.rfft(speakers[indices].astype(np.float64), size)  # (speakers, bins)
        y = np.fft.irfft(np.einsum("sb,seb->eb", x, spectra), size)[:, :frames + taps - 1]
        y[:, :taps - 1] += self._tails
        self._tails = y[:, frames:].copy()
        return y[:, :frames].astype(np.float32)
