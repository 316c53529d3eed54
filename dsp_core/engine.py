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
from typing import TYPE_CHECKING, Any

import numpy as np

from .backend import default_backend, get_backend
from .effects import SLOT_TARGET, TICK, EffectState
from .errors import DspError
from .graph import (
    BusState,
    Graph,
    SourceLoader,
    TrackState,
    automation_key,
    balance_gains,
    build_automation,
    build_graph,
    build_track,
    plugin_source,
    send_levels,
    set_fader_target,
    set_note_chase,
    track_gains,
    track_instrument,
)
from .instrument_edit import carry_voices
from .instrument_graph import clip_structure, instrument_structure, same_sound
from .lv2_bus import finish
from .lv2_chain import HostedChain, PluginError, run_in_turn, run_side_by_side
from .lv2_instrument import PluginInstrument
from .param_automation import build_param_automation
from .schedule import plan_key, plan_schedule
from .session import Bus, Session, Track, db_to_linear

if TYPE_CHECKING:
    from .soundfont import SoundFontSource

log = logging.getLogger(__name__)

MAX_BLOCK = 16384
MAX_THREADS = 16  # DAW_MAX_THREADS (tests/test_engine_header.py)


def _default_loader() -> SourceLoader:
    from .audio_io import load_source

    return load_source


def _track_structure(track: Track, session: Session) -> tuple:
    # a clip's time keys are structure (a new render, new crossfades); a clip that
    # follows the tempo is rebuilt when the tempo map changes
    clips = tuple(
        (c.source, c.position, c.length, c.offset, c.gain_db, c.fade_in, c.fade_out,
         c.crossfade, c.stretch, c.semitones, c.warp, c.follow_tempo, c.source_bpm,
         repr(session.tempo.to_dict()) if c.follow_tempo else None)
        for c in sorted(track.clips, key=lambda c: c.position)
    )
    return track.channels, clips, _chain_structure(track.effects), tuple(
        (s.bus, s.pre_fader) for s in track.sends
    ), instrument_structure(track), (  # MIDI that follows the tempo: rebuilt with the map
        repr(session.tempo.to_dict()) if any(c.follow_tempo for c in track.midi_clips)
        else None), (  # without an instrument its MIDI may still play lv2 effects
        tuple(clip_structure(c) for c in sorted(track.midi_clips,
                                                key=lambda c: (c.position, c.id)))
        if track.instrument is None else ())


def _chain_structure(effects) -> tuple:
    # a convolution's impulse response is structure: a new one builds a new state;
    # so is an lv2 plug-in's URI: a new one starts a new worker
    return tuple((e.kind, e.enabled, e.id, e.params.get("ir"), e.params.get("uri"))
                 for e in effects)


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
        self._tick_out = np.zeros((2, TICK), dtype=np.float32)
        self._next: int | None = None  # the frame after the last block: no pre-roll there
        self._hosted_key: tuple = ()
        self._hosted: list[tuple[int, TrackState, int]] = []
        self._chains_key: tuple = ()
        self._chains: list[HostedChain | PluginInstrument] = []
        #: hosted plug-ins of different tracks (and aux buses) run side by side each block;
        #: False runs them one after another (the output is the same; for benchmarks)
        self.side_by_side = True

    # ------------------------------------------------------------ rendering

    @property
    def latency(self) -> int:
        """Frames of plug-in latency the engine compensates (0 without latency-adding
        processors).

        :meth:`render_block` already renders that far ahead, so its output lines up
        with the timeline; a live mixer adds nothing for it (the clips are read ahead).
        """
        return self.graph.latency

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
        latency = self.graph.latency
        if latency and start != self._next:
            self._preroll(start, latency)
        if self._params is None:
            self._feed_hosted(start + latency, frames)
            self._call(start + latency, frames, self._out)
        else:
            self._render_ticks(start + latency, frames, self._out)
        self._next = start + frames
        return self._out if frames == self.block_size else self._out[:, :frames]

    def _preroll(self, start: int, latency: int) -> None:
        """Fill the latency-adding processors' lines after a seek: render the
        ``latency`` frames before ``start`` and drop them, as a DAW pre-rolls."""
        position = start - latency
        while position < start:
            count = min(self.block_size, start - position)
            if self._params is None:
                self._feed_hosted(position + latency, count)
                self._call(position + latency, count, self._out)
            else:
                self._render_ticks(position + latency, count, self._out)
            position += count

    def _render_ticks(self, start: int, frames: int, out: np.ndarray) -> None:
        """Render a block tick by tick (``DAW_TICK`` frames on the ``frames_done`` grid),
        moving the automated parameters' targets before each tick
        (:mod:`dsp_core.param_automation`)."""
        assert self._params is not None
        tick_out, done = self._tick_out, 0
        while done < frames:
            count = min(frames - done, TICK - self.graph.frames_done % TICK)
            self._params.apply_at(start + done)
            self._feed_hosted(start + done, count)
            self._call(start + done, count, tick_out)
            out[:, done : done + count] = tick_out[:, :count]
            done += count

    def _call(self, start: int, frames: int, out: np.ndarray) -> None:
        """The one C call for the block, then the buses and master run after it
        (:func:`dsp_core.lv2_bus.finish`) when one hosts an lv2 plug-in."""
        self._render(self.graph, start, frames, out)
        if self.graph.master.hosted is not None:
            finish(self.graph, self._backend, out, frames, self.side_by_side)

    def _feed_hosted(self, start: int, frames: int) -> None:
        """Render every hosted chain (a track with an lv2 plug-in) and soundfont or lv2
        instrument ahead of the C call, into its feed clip, placed where the engine reads
        that track in this block."""
        graph = self.graph
        key = self._hosted_key
        if not key or key[0] is not graph or key[1] != graph.version or (
                key[2] is not graph.schedule):
            offsets: dict[int, int] = {}
            for run in graph.schedule.runs if graph.schedule is not None else ():
                if run.bus < 0:
                    offsets.update((i, run.offset) for i in range(run.first,
                                                                  run.first + run.count))
            self._hosted = [(i, t, offsets.get(i, 0)) for i, t in enumerate(graph.tracks)
                            if t.hosted is not None or t.source is not None]
            self._hosted_key = (graph, graph.version, graph.schedule)
        if not self._hosted:
            return
        view = graph.native_view if graph.native_version == graph.version else None
        if self.side_by_side:
            for _index, state, offset in self._hosted:  # lv2 instruments run side by side
                if isinstance(state.source, PluginInstrument):
                    state.source.dispatch(start - offset, frames)
            run_side_by_side(self._hosted_runs(start, frames, view))
        else:
            run_in_turn(self._hosted_runs(start, frames, view))

    def _hosted_runs(self, start: int, frames: int, view: Any
                     ) -> Iterator[Iterator[bool]]:
        """Fill each instrument's feed and place each feed clip; yield each track's chain
        in steps (:meth:`HostedChain.fill_steps`), for :func:`run_side_by_side`."""
        for index, state, offset in self._hosted:
            position = start - offset
            if state.source is not None:  # a soundfont or lv2 instrument: its feed is clip 0
                state.source.fill(position, frames)
                feed = (state.hosted.clips if state.hosted is not None else state.clips)[0]
                feed.position, feed.length = position, frames
                if state.hosted is None:
                    if view is not None:
                        view.place_clip(index, 0, position, frames)
                    continue
            assert state.hosted is not None
            feed = state.clips[0]
            feed.position, feed.length = position, frames
            if view is not None:
                view.place_clip(index, 0, position, frames)
            yield state.hosted.fill_steps(self._backend, position, frames,
                                          self.graph.frames_done)

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
        self._next = None
        if self.graph.schedule is not None:
            self.graph.schedule.reset()
        for fx in self._all_effects():
            fx.reset()
        for chain in self._hosted_chains():
            chain.reset()

    # ------------------------------------------------------------ hosted plug-ins

    def plugin_errors(self) -> list[PluginError]:
        """Hosted plug-ins that failed (hung, crashed, NaN) and are bypassed."""
        return [e for chain in self._hosted_chains() for e in chain.errors()]

    def restart_plugins(self) -> int:
        """Start fresh workers for failed plug-ins; returns how many.

        A fresh worker measures its latency again; when that changes the plan, the graph
        is built again (with new workers) so delay compensation follows.
        """
        restarted = sum(chain.restart() for chain in self._hosted_chains())
        if restarted and plan_key(self.session, self.sample_rate) != self._plan_key:
            self._build(self.session, self.graph.frames_done)
        return restarted

    def close(self) -> None:
        """Stop the workers of hosted plug-ins (the engine renders nothing after)."""
        for chain in self._hosted_chains():
            chain.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _hosted_chains(self) -> list[HostedChain | PluginInstrument]:
        """The graph's hosted chains, found again only after a structural edit: a live
        mix asks for their failures every frame (a 256-track walk took ~0.2 ms)."""
        graph = self.graph
        key = self._chains_key
        if not key or key[0] is not graph or key[1] != graph.version:
            self._chains = graph.hosted_chains()
            self._chains_key = (graph, graph.version)
        return self._chains

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
        ) or plan_key(session, self.sample_rate) != self._plan_key:
            self._build(session, self.graph.frames_done)
            return
        any_solo = any(t.solo for t in session.tracks)
        tracks: list[TrackState] = []
        entries: dict[str, _Entry] = {}
        rebuilt = [t.id for t in session.tracks] != [t.id for t in self.session.tracks]
        for track in session.tracks:
            structure = _track_structure(track, session)
            entry = self._entries.get(track.id)
            if entry is None or entry.structure != structure:
                keep = entry.state.hosted if entry is not None and (
                    entry.structure[2] == structure[2]) else None
                playing = _kept_source(entry.state, track) if entry is not None else None
                played_before = track_instrument(entry.state) if entry is not None else None
                state = build_track(track, session, self.sample_rate, self.block_size,
                                    self._load, any_solo, hosted=keep, source=playing)
                if entry is not None and entry.structure[2] == structure[2]:
                    state.effects = entry.state.effects  # keep filter memory: no click
                if entry is not None:  # MIDI: sounding notes play on through the edit
                    carry_voices(played_before, track_instrument(state),
                                 same_sound(entry.structure[4], structure[4]))
                entry = _Entry(structure, state)
                rebuilt = True
            rebuilt |= self._update_track(entry.state, track, any_solo)
            set_note_chase(entry.state, session.chase_notes)  # (after carry_voices)
            tracks.append(entry.state)
            entries[track.id] = entry
        for bus, state in zip(session.buses, self.graph.buses, strict=True):
            self._update_bus(bus, state)
        self._update_bus(session.master, self.graph.master)
        kept = {id(t.hosted) for t in tracks if t.hosted is not None}
        workers = {id(s.plugin) for s in map(plugin_source, tracks) if s is not None}
        for old in self.graph.tracks:
            if old.hosted is not None and id(old.hosted) not in kept:
                old.hosted.close()
            played = plugin_source(old)
            if played is not None and id(played.plugin) not in workers:
                played.close()
        self.graph.tracks = tracks
        self._entries = entries
        self.session = session
        if rebuilt:
            previous = self.graph.schedule
            if previous is not None:  # keys point at the tracks' buffers: plan again
                self.graph.schedule = plan_schedule(session, tracks, self.graph.buses,
                                                    self.graph.master, self.sample_rate,
                                                    self.block_size)
                if self.graph.schedule is not None:
                    self.graph.schedule.carry_from(previous)
            self.graph.version += 1
        self._bind_params()

    def _bind_params(self) -> None:
        """Bind the session's parameter lanes to the graph (None when there are none)."""
        self._params = build_param_automation(
            self.session, self.graph, self.sample_rate / self.session.sample_rate)

    def _update_track(self, state: TrackState, track: Track, any_solo: bool) -> bool:
        """Follow a track's parameters; True when its automation changed (new C view)."""
        set_fader_target(state.fader, *track_gains(track, any_solo))
        changed = False
        key = automation_key(track, any_solo)
        if key != (state.automation.key if state.automation is not None else ()):
            ratio = self.sample_rate / self.session.sample_rate
            state.automation = build_automation(track, ratio, self.block_size, any_solo)
            changed = True
        if state.hosted is not None:
            state.hosted.set_params(track.effects)
        else:
            for fx, spec in zip(state.effects, track.effects, strict=True):
                _set_effect(fx, spec.params)
        for send_state, send in zip(state.sends, track.sends, strict=True):
            set_fader_target(send_state.fader, *send_levels(track, send.level_db, send.pre_fader))
        return changed

    def _update_bus(self, bus: Bus, state: BusState) -> None:
        set_fader_target(state.level, *balance_gains(db_to_linear(bus.gain_db), bus.pan))
        if state.hosted is not None:
            state.hosted.set_params(bus.effects)
            return
        for fx, spec in zip(state.effects, bus.effects, strict=True):
            _set_effect(fx, spec.params)

    @staticmethod
    def _buses_structure(session: Session) -> tuple:
        return tuple(
            (b.id, _chain_structure(b.effects)) for b in [*session.buses, session.master]
        )

    def _build(self, session: Session, frames_done: int) -> None:
        """Build the whole graph of ``session``; the smoothing phase carries on.

        Hosted plug-ins of the previous graph are stopped (the new graph starts its own).
        A rebuild is no seek: each kept track's built-in instrument carries on its voices.
        """
        previous = getattr(self, "graph", None)
        before: dict[str, _Entry] = getattr(self, "_entries", {})
        sources = {t.id: kept for t in session.tracks if t.id in before
                   and (kept := _kept_source(before[t.id].state, t)) is not None}
        self.graph: Graph = build_graph(session, self.sample_rate, self.block_size, self._load,
                                        self.threads, sources)
        self.graph.frames_done = frames_done
        self._entries = {
            t.id: _Entry(_track_structure(t, session), s)
            for t, s in zip(session.tracks, self.graph.tracks, strict=True)
        }
        for track_id, entry in self._entries.items():
            old = before.get(track_id)
            if old is not None:  # else, with chase off, an unrelated edit cut held notes
                carry_voices(track_instrument(old.state), track_instrument(entry.state),
                             same_sound(old.structure[4], entry.structure[4]))
                set_note_chase(entry.state, session.chase_notes)  # (after carry_voices)
        self._bus_structure = self._buses_structure(session)
        self._plan_key = plan_key(session, self.sample_rate)
        self.session = session
        self._bind_params()
        if previous is not None:
            workers = {id(s.plugin) for s in map(plugin_source, self.graph.tracks)
                       if s is not None}
            for chain in previous.hosted_chains():
                if not (isinstance(chain, PluginInstrument) and id(chain.plugin) in workers):
                    chain.close()

    def _all_effects(self) -> Iterator[EffectState]:
        for tr in self.graph.tracks:
            yield from tr.effects
        for bus in [*self.graph.buses, self.graph.master]:
            yield from bus.effects


def _kept_source(state: TrackState, track: Track) -> SoundFontSource | PluginInstrument | None:
    """The source of ``state`` that ``track``, rebuilt, may play on: its ``lv2`` instrument
    (:func:`_same_plugin`) or its SoundFont (kept when it plays the same instrument and
    events, :meth:`SoundFontSource.plays`)."""
    instrument = track.instrument
    if instrument is not None and instrument.kind == "soundfont":
        from .soundfont import SoundFontSource

        return state.source if isinstance(state.source, SoundFontSource) else None
    return _same_plugin(state, track)


def _same_plugin(state: TrackState, track: Track) -> PluginInstrument | None:
    """The track's playing ``lv2`` instrument when ``track`` still plays that plug-in (its
    worker is kept through an edit of the notes or controls)."""
    played = plugin_source(state)
    instrument = track.instrument
    if played is None or instrument is None or instrument.kind != "lv2":
        return None
    if played.plugin.failed or instrument.params.get("uri") != played.plugin.info.uri:
        return None
    return played


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

