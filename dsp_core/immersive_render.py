"""Immersive renders: a session's bed and objects to 7.1.4, 5.1, stereo or headphones.

>>> out = render_immersive(session, "7.1.4")        # float32 (12, frames)

Each object track and each bed-routed track is rendered by the engine on its own (clips,
inserts, fader, mute/solo, automation; pan and sends left out: position replaces pan),
giving one mono signal per object and the track's channels on its bed channels (the
tracks its sidechains listen to render with it, muted, so it ducks as in the mix). Tracks
without a route are rendered together, with the buses and the master chain, and feed the
bed's front pair. The bed channels and the objects are then panned to the layout, block
by block, in C (``daw_immersive_pan``; numpy twin in :mod:`dsp_core.reference_immersive`).
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .backend import default_backend, get_backend
from .effects import TICK
from .engine import Engine
from .errors import DspError
from .graph import SourceLoader
from .immersive import BED_714, LAYOUTS, ImmersiveRoute
from .immersive_binaural import binaural, load_sofa
from .immersive_panner import direct_gains, panner
from .lv2_chain import PluginError
from .param_automation import ParamLane, param_lane
from .session import Bus, Session, Track

log = logging.getLogger(__name__)

HEADPHONES = "binaural"
#: What :func:`render_immersive` can target: the loudspeaker layouts and headphones.
TARGETS = (*LAYOUTS, HEADPHONES)

PanKernel = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
_KERNELS = {"native": "dsp_core.immersive_native", "reference": "dsp_core.reference_immersive"}


def pan_kernel(backend: str | None = None) -> PanKernel:
    """``immersive_pan`` of the named backend (the C kernel or its numpy twin)."""
    name = (backend or default_backend()).lower()
    get_backend(name)  # refuses an unknown or unbuilt backend with the usual message
    return importlib.import_module(_KERNELS[name]).immersive_pan


@dataclass
class ImmersiveObject:
    """One object: its track, its route (position) and its mono signal."""

    track_id: str
    name: str
    route: ImmersiveRoute
    signal: np.ndarray  # float32 (frames,)
    path: dict[str, ParamLane] = dataclasses.field(default_factory=dict)  # read lanes by axis


@dataclass
class Stems:
    """What an immersive mix is made of: the 7.1.4 bed and the objects."""

    sample_rate: int
    bed: np.ndarray  # float32 (12, frames), channels in BED_714 order
    objects: list[ImmersiveObject]
    has_bed: bool = True  # False when every track is an object: the export leaves it out
    plugin_errors: tuple[PluginError, ...] = ()  # hosted plug-ins that failed, bypassed

    @property
    def frames(self) -> int:
        """Length in frames at :attr:`sample_rate`."""
        return int(self.bed.shape[1])


def _alone(track: Track, any_solo: bool) -> Track:
    """The track as it sounds on its own: centred, no sends, no pan lane, muted when another
    track is soloed."""
    automation = {k: v for k, v in track.automation.items()
                  if k != "pan" and not k.startswith(("send:", "object:"))}
    return dataclasses.replace(track, pan=0.0, sends=[], automation=automation, immersive=None,
                               mute=track.mute or (any_solo and not track.solo))


def render_stems(session: Session, sample_rate: int | None = None, block_size: int = 1024,
                 backend: str | None = None, loader: SourceLoader | None = None,
                 tail: float = 0.0, progress: Callable[[int, int], None] | None = None
                 ) -> Stems:
    """Render ``session``'s bed and objects with the engine (see the module docstring),
    ``tail`` seconds past the last clip; ``progress(done, total)`` after each part."""
    session.validate(allow_overlaps=True)  # as the engine: a live document may layer clips
    rate = int(sample_rate or session.sample_rate)
    frames = int(round(session.length * rate / session.sample_rate)) + int(round(tail * rate))
    any_solo = any(t.solo for t in session.tracks)
    routed = [t for t in session.tracks if t.immersive is not None]
    plain = [t for t in session.tracks if t.immersive is None]
    bed = np.zeros((len(BED_714), frames), dtype=np.float32)
    parts, done = len(routed) + bool(plain), [0]
    errors: dict[PluginError, None] = {}

    def render(tracks: list[Track], buses: list[Bus], master: Bus) -> np.ndarray:
        tracks = _with_keys(tracks, buses, session, any_solo)
        part = dataclasses.replace(session, tracks=tracks, buses=buses, master=master)
        with Engine(part, sample_rate=rate, block_size=block_size, backend=backend,
                    loader=loader) as engine:
            audio = engine.render(0, frames)
            errors.update(dict.fromkeys(engine.plugin_errors()))  # a keying track: once
        done[0] += 1
        if progress is not None:
            progress(done[0], parts)
        return audio

    if plain:
        if any_solo:  # the soloed tracks elsewhere still silence these
            plain = [dataclasses.replace(t, mute=t.mute or not t.solo) for t in plain]
        stereo = render(plain, session.buses, session.master)
        bed[BED_714.index("M+030")] += stereo[0]
        bed[BED_714.index("M-030")] += stereo[1]
    objects = []
    for track in routed:
        assert track.immersive is not None
        stereo = render([_alone(track, any_solo)], [], Bus(id="master", name="Master"))
        if track.immersive.kind == "bed":
            if track.channels == 1:
                bed[BED_714.index(track.immersive.channels[0])] += _mono(stereo, 1)
            else:
                for side, label in enumerate(track.immersive.channels):
                    bed[BED_714.index(label)] += stereo[side]
        else:
            objects.append(ImmersiveObject(track.id, track.name or track.id, track.immersive,
                                           _mono(stereo, track.channels),
                                           object_path(track, rate / session.sample_rate)))
    has_bed = bool(plain) or any(t.immersive.kind == "bed" for t in routed if t.immersive)
    return Stems(rate, bed, objects, has_bed, tuple(errors))


def _with_keys(tracks: list[Track], buses: list[Bus], session: Session, any_solo: bool
               ) -> list[Track]:
    """``tracks`` plus, muted, the tracks their sidechains (and the buses') listen to, so a
    part rendered alone ducks as in the full mix (a muted key still keys). A key on a bus
    the part does not have is dropped: that detector hears its own input (docs)."""
    by_id = {t.id: t for t in session.tracks}
    out = list(tracks)
    present = {t.id for t in out} | {b.id for b in buses} | {session.master.id}
    owners: list[Track | Bus] = [*out, *buses]
    while owners:
        for effect in owners.pop().effects:
            key = effect.sidechain
            if key and key not in present and key in by_id:
                ghost = dataclasses.replace(_alone(by_id[key], any_solo), mute=True)
                out.append(ghost)
                owners.append(ghost)
                present.add(key)
    for index, track in enumerate(out):
        if any(e.sidechain and e.sidechain not in present for e in track.effects):
            log.warning("immersive render: track %r is keyed by a bus it is rendered "
                        "without; its detector hears its own input", track.id)
            out[index] = dataclasses.replace(track, effects=[
                dataclasses.replace(e, sidechain="") if e.sidechain not in present else e
                for e in track.effects])
    return out


def _mono(stereo: np.ndarray, channels: int) -> np.ndarray:
    """A centred track's engine output back to one signal: a mono track's (its equal-power
    centre undone), a stereo track's downmix (L + R) / 2."""
    scale = math.sqrt(0.5) if channels == 1 else 0.5
    return ((stereo[0] + stereo[1]) * np.float32(scale)).astype(np.float32)


def source_gains(stems: Stems, layout: str) -> np.ndarray:
    """Gains (sources, channels) of the bed channels then the objects on ``layout``."""
    rows = [direct_gains(label, layout) for label in BED_714]
    rows += [panner(layout).gains(o.route.azimuth, o.route.elevation) for o in stems.objects]
    return np.array(rows, dtype=np.float32)


def object_path(track: Track, ratio: float) -> dict[str, ParamLane]:
    """An object track's read ``object:azimuth`` / ``object:elevation`` lanes (render
    frames); ``object:distance`` is stored but the loudspeaker panners do not use it."""
    return {axis: param_lane(lane, ratio, lambda v: None)
            for axis in ("azimuth", "elevation")
            if (lane := track.automation.get(f"object:{axis}")) is not None and lane.reads}


def _gains_at(stems: Stems, layout: str, static: np.ndarray, frame: int) -> np.ndarray:
    gains = static.copy()
    base = len(BED_714)
    for i, o in enumerate(stems.objects):
        if o.path:
            azimuth = o.path["azimuth"].value_at(frame) if "azimuth" in o.path \
                else o.route.azimuth
            elevation = o.path["elevation"].value_at(frame) if "elevation" in o.path \
                else o.route.elevation
            gains[base + i] = panner(layout).gains(azimuth, elevation)
    return gains


def pan_stems(stems: Stems, layout: str, block_size: int = 1024,
              backend: str | None = None) -> np.ndarray:
    """The bed and objects panned to a loudspeaker ``layout``, block by block in C.

    An object with a position lane is panned tick by tick (``DAW_TICK`` frames): the
    gains ramp linearly from the position at a tick's first frame to the next tick's."""
    kernel = pan_kernel(backend)
    gains = source_gains(stems, layout)
    sources = np.concatenate([stems.bed, *[o.signal[None, :] for o in stems.objects]])
    out = np.empty((gains.shape[1], stems.frames), dtype=np.float32)
    moving = any(o.path for o in stems.objects)
    step = TICK if moving else block_size
    after = _gains_at(stems, layout, gains, 0) if moving else gains
    for start in range(0, stems.frames, step):
        block = np.ascontiguousarray(sources[:, start:start + step])
        before = after
        if moving:
            after = _gains_at(stems, layout, gains, start + block.shape[1])
        out[:, start:start + block.shape[1]] = kernel(block, before, after)
    return out


def render_immersive(session: Session, layout: str = "7.1.4", *,
                     sample_rate: int | None = None, block_size: int = 1024,
                     backend: str | None = None, loader: SourceLoader | None = None,
                     sofa: str | None = None) -> np.ndarray:
    """Render ``session`` to a layout of :data:`TARGETS`: float32 (channels, frames) in the
    layout's BS.2051 order (12 for 7.1.4), or (2, frames) for ``"binaural"``."""
    if layout not in TARGETS:
        raise DspError(f"unknown immersive target {layout!r}; choose one of "
                       f"{', '.join(TARGETS)}")
    stems = render_stems(session, sample_rate, block_size, backend, loader)
    if layout == HEADPHONES:
        return binaural(pan_stems(stems, "7.1.4", block_size, backend), load_sofa(sofa),
                        stems.sample_rate)
    return pan_stems(stems, layout, block_size, backend)
