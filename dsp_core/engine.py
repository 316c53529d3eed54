"""The engine: renders a session block by block with the chosen backend.

>>> engine = Engine(session, sample_rate=192000, block_size=1024)
>>> block = engine.render(0, 1024)          # float32 (2, 1024)
>>> engine.apply(edited_session)            # live edits glide, no clicks

Each call to :meth:`Engine.render_block` is ONE call into the C engine for
the whole graph; Python touches only the block boundaries.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from .backend import default_backend, get_backend
from .effects import SLOT_TARGET, EffectState
from .errors import DspError
from .graph import (
    Graph,
    SourceLoader,
    TrackState,
    automation_key,
    balance_gains,
    build_automation,
    build_graph,
    build_track,
    send_levels,
    set_fader_target,
    track_gains,
)
from .instrument_edit import carry_voices
from .instrument_graph import instrument_structure, same_sound
from .session import Bus, Session, Track, db_to_linear

log = logging.getLogger(__name__)

MAX_BLOCK = 16384
MAX_THREADS = 16  # DAW_MAX_THREADS (tests/test_engine_header.py)


def _default_loader() -> SourceLoader:
    from .audio_io import load_source

    return load_source


def _track_structure(track: Track) -> tuple:
    clips = tuple(
        (c.source, c.position, c.length, c.offset, c.gain_db, c.fade_in, c.fade_out)
        for c in sorted(track.clips, key=lambda c: c.position)
    )
    return track.channels, clips, _chain_structure(track.effects), tuple(
        (s.bus, s.pre_fader) for s in track.sends
    ), instrument_structure(track)


def _chain_structure(effects) -> tuple:
    # a convolution's impulse response is structure: a new one builds a new state
    return tuple((e.kind, e.enabled, e.id, e.params.get("ir")) for e in effects)


@dataclass
class _Entry:
    structure: tuple
    state: TrackState


class Engine:
    """Renders a :class:`Session` at ``sample_rate`` in blocks of up to ``block_size``.

    Parameters
    ----------
    session:
        The project to render; validated on construction.
    sample_rate:
        Render rate (defaults to the session's); clips are resampled to it.
    block_size:
        Largest block handed to the backend in one call.
    backend:
        ``"native"`` or ``"reference"``; default from :func:`default_backend`.
    loader:
        ``loader(path, sample_rate) -> (channels, frames) float32``; defaults to
        :func:`dsp_core.audio_io.load_source`.
    threads:
        Threads the C engine splits the tracks over (default ``$DAW_THREADS`` or 1).
        The numpy twin always uses one.
    """

    def __init__(
        self,
        session: Session,
        sample_rate: int | None = None,
        block_size: int = 1024,
        backend: str | None = None,
        loader: SourceLoader | None = None,
        threads: int | None = None,
    ) -> None:
        if not 1 <= block_size <= MAX_BLOCK:
            raise DspError(f"block size {block_size} must be between 1 and {MAX_BLOCK}")
        self.sample_rate = int(sample_rate or session.sample_rate)
        if not 8000 <= self.sample_rate <= 192000:
            raise DspError(f"render rate {self.sample_rate} Hz is outside 8000-192000 Hz")
        self.block_size = block_size
        self.threads = int(threads or os.environ.get("DAW_THREADS", "1") or 1)
        if not 1 <= self.threads <= MAX_THREADS:
            raise DspError(f"threads must be between 1 and {MAX_THREADS}, got {self.threads}")
        self.backend_name = backend or default_backend()
        self._backend = get_backend(self.backend_name)
        self._render = self._backend.render
        self._load = loader or _default_loader()
        self._build(session, frames_done=0)
        self._out = np.zeros((2, block_size), dtype=np.float32)

    # ------------------------------------------------------------ rendering

    @property
    def length(self) -> int:
        """Frames up to the end of the last clip, at the render rate."""
        return int(round(self.session.length * self.sample_rate / self.session.sample_rate))

    def render_block(self, start: int, frames: int) -> np.ndarray:
        """Render one block (``frames <= block_size``).

        Returns a view that stays valid until the next call.
        """
        if not 0 <= frames <= self.block_size:
            raise DspError(f"block of {frames} frames exceeds block size {self.block_size}")
        self._render(self.graph, start, frames, self._out)
        return self._out if frames == self.block_size else self._out[:, :frames]

    def render(self, start: int, frames: int) -> np.ndarray:
        """Render ``frames`` frames from timeline frame ``start`` into a new (2, frames) array."""
        out = np.empty((2, frames), dtype=np.float32)
        for offset, block in self.blocks(start, start + frames):
            out[:, offset : offset + block.shape[1]] = block
        return out

    def blocks(self, start: int = 0, end: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(offset, block)`` pairs covering [start, end) in block-size steps."""
        end = self.length if end is None else end
        position = start
        while position < end:
            frames = min(self.block_size, end - position)
            yield position - start, self.render_block(position, frames)
            position += frames

    def reset(self) -> None:
        """Clear filter memories and smoothing, as after a transport stop."""
        self.graph.frames_done = 0
        for fx in self._all_effects():
            fx.reset()

    def use_backend(self, name: str) -> None:
        """Switch backend between blocks; the state carries over."""
        self._backend = get_backend(name)
        self._render = self._backend.render
        self.backend_name = name

    # ------------------------------------------------------------ live edits

    def apply(self, session: Session) -> None:
        """Follow an edited session: parameters glide, structural edits rebuild a track."""
        session.validate(allow_overlaps=True)
        if self._buses_structure(session) != self._bus_structure or (
            session.sample_rate != self.session.sample_rate
        ):
            self._build(session, self.graph.frames_done)
            return
        any_solo = any(t.solo for t in session.tracks)
        tracks: list[TrackState] = []
        entries: dict[str, _Entry] = {}
        rebuilt = [t.id for t in session.tracks] != [t.id for t in self.session.tracks]
        for track in session.tracks:
            structure = _track_structure(track)
            entry = self._entries.get(track.id)
            if entry is None or entry.structure != structure:
                state = build_track(track, session, self.sample_rate, self.block_size,
                                    self._load, any_solo)
                if entry is not None and entry.structure[2] == structure[2]:
                    state.effects = entry.state.effects  # keep filter memory: no click
                if entry is not None:  # MIDI: sounding notes play on through the edit
                    carry_voices(entry.state.instrument, state.instrument,
                                 same_sound(entry.structure[4], structure[4]))
                entry = _Entry(structure, state)
                rebuilt = True
            rebuilt |= self._update_track(entry.state, track, any_solo)
            tracks.append(entry.state)
            entries[track.id] = entry
        for bus, state in zip(session.buses, self.graph.buses, strict=True):
            self._update_bus(bus, state.fader, state.effects)
        self._update_bus(session.master, self.graph.master.fader, self.graph.master.effects)
        self.graph.tracks = tracks
        self._entries = entries
        self.session = session
        if rebuilt:
            self.graph.version += 1

    def _update_track(self, state: TrackState, track: Track, any_solo: bool) -> bool:
        """Follow a track's parameters; True when its automation changed (new C view)."""
        set_fader_target(state.fader, *track_gains(track, any_solo))
        changed = False
        key = automation_key(track, any_solo)
        if key != (state.automation.key if state.automation is not None else ()):
            ratio = self.sample_rate / self.session.sample_rate
            state.automation = build_automation(track, ratio, self.block_size, any_solo)
            changed = True
        for fx, spec in zip(state.effects, track.effects, strict=True):
            _set_effect(fx, spec.params)
        for send_state, send in zip(state.sends, track.sends, strict=True):
            set_fader_target(send_state.fader, *send_levels(track, send.level_db, send.pre_fader))
        return changed

    def _update_bus(self, bus: Bus, fader: np.ndarray, effects: list[EffectState]) -> None:
        set_fader_target(fader, *balance_gains(db_to_linear(bus.gain_db), bus.pan))
        for fx, spec in zip(effects, bus.effects, strict=True):
            _set_effect(fx, spec.params)

    @staticmethod
    def _buses_structure(session: Session) -> tuple:
        return tuple(
            (b.id, _chain_structure(b.effects)) for b in [*session.buses, session.master]
        )

    def _build(self, session: Session, frames_done: int) -> None:
        """Build the whole graph of ``session``; the smoothing phase carries on."""
        self.graph: Graph = build_graph(session, self.sample_rate, self.block_size, self._load,
                                        self.threads)
        self.graph.frames_done = frames_done
        self._entries = {
            t.id: _Entry(_track_structure(t), s)
            for t, s in zip(session.tracks, self.graph.tracks, strict=True)
        }
        self._bus_structure = self._buses_structure(session)
        self.session = session

    def _all_effects(self) -> Iterator[EffectState]:
        for tr in self.graph.tracks:
            yield from tr.effects
        for bus in [*self.graph.buses, self.graph.master]:
            yield from bus.effects


def _set_effect(fx: EffectState, params: dict) -> None:
    before = fx.slots[SLOT_TARGET : SLOT_TARGET + 8].copy()
    fx.set_params(params, replace=True)
    if not np.array_equal(before, fx.slots[SLOT_TARGET : SLOT_TARGET + 8]):
        log.debug("effect %s parameters now %s", fx.spec.kind, fx.spec.params)


ProgressCallback = Callable[[int, int], None]


def render_session(
    session: Session,
    sample_rate: int | None = None,
    block_size: int = 1024,
    backend: str | None = None,
) -> np.ndarray:
    """Render a whole session to a (2, frames) float32 array (offline bounce in memory)."""
    engine = Engine(session, sample_rate=sample_rate, block_size=block_size, backend=backend)
    return engine.render(0, engine.length)

