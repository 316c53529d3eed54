"""The render graph: numpy-owned buffers and state that both backends share.

:func:`build_graph` turns a :class:`~dsp_core.session.Session` plus loaded
sources into a :class:`Graph`.  The C backend points its structs at these
arrays; the numpy twin works on them directly, so a render can move from one
backend to the other between blocks.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .crossfade import Span, plan_crossfades
from .effects import (
    FADER_END,
    FADER_SLOTS,
    FADER_START,
    FADER_TARGET,
    HOSTED_KINDS,
    EffectState,
)
from .errors import ProjectError
from .instrument_graph import S_NO_CHASE, InstrumentState, build_instrument, midi_events
from .schedule import Schedule, plan_schedule
from .session import AUTOMATION_PARAMS, AutomationLane, Bus, Session, Track, db_to_linear
from .stretch import CACHE, StretchSpec

if TYPE_CHECKING:  # lv2_chain imports the twin, which imports this module
    from .lv2_chain import HostedChain
    from .lv2_instrument import PluginInstrument
    from .soundfont import SoundFontSource

SourceLoader = Callable[[str, int], np.ndarray]
LANES = 8  # DAW_LANES (tests/test_engine_header.py): chains the C engine runs side by side


@dataclass
class ClipState:
    """A clip in render frames, with its source already at the render rate."""

    data: np.ndarray  # (channels, frames) float32, C-contiguous
    position: int
    offset: int
    length: int
    gain: float
    fade_in: int
    fade_out: int
    xfade_in_at: int = 0  # equal-power crossfade (dsp_core/crossfade.py)
    xfade_in: int = 0
    xfade_out: int = 0


@dataclass
class SendState:
    """A send's bus index, tap point and smoothed L/R levels."""

    bus: int
    pre_fader: bool
    fader: np.ndarray


@dataclass
class LaneState:
    """A lane's breakpoints in render frames (``daw_lane``)."""

    frames: np.ndarray  # int64, ascending
    values: np.ndarray  # float64
    hold: np.ndarray  # int32: 1 where the value holds until the next point


@dataclass
class AutomationState:
    """An automated fader (``daw_automation``): gain, pan and mute lanes, solo scale."""

    gain: LaneState
    pan: LaneState
    mute: LaneState
    scale: float
    gains: np.ndarray  # (2, max_block) float32: the block's L and R gains
    key: tuple = ()  # what it was built from: a change rebuilds it


@dataclass
class TrackState:
    """One track's clips, insert chain, fader and scratch buffer."""

    channels: int
    clips: list[ClipState]
    effects: list[EffectState]
    fader: np.ndarray
    sends: list[SendState]
    buffer: np.ndarray  # (channels, max_block)
    automation: AutomationState | None = None
    instrument: InstrumentState | None = None  # MIDI tracks
    hosted: HostedChain | None = None  # a chain with an lv2 plug-in, rendered ahead
    # a soundfont or lv2 instrument, rendered ahead into the track's first clip
    source: SoundFontSource | PluginInstrument | None = None


@dataclass
class BusState:
    """An aux or master bus: insert chain, fader and stereo accumulator.

    A bus whose chain runs after the C call (:mod:`dsp_core.lv2_bus`) has ``hosted``:
    the C engine then sees no inserts and a silent (aux) or unity (master) ``fader``, and
    the bus's own fader is ``hosted.fader`` (:attr:`level`).
    """

    effects: list[EffectState]
    fader: np.ndarray
    buffer: np.ndarray  # (2, max_block)
    hosted: HostedChain | None = None

    @property
    def level(self) -> np.ndarray:
        """The fader that sets the bus's gain and pan (edits and automation move it)."""
        return self.hosted.fader if self.hosted is not None else self.fader


@dataclass
class Graph:
    """Everything one render needs; ``frames_done`` sets the smoothing tick phase."""

    sample_rate: int
    max_block: int
    tracks: list[TrackState]
    buses: list[BusState]
    master: BusState
    scratch: np.ndarray  # 3 * max_block
    lane_scratch: np.ndarray  # 2 * LANES * max_block
    threads: int = 1
    thread_scratch: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    frames_done: int = 0
    version: int = 0
    native_view: object = field(default=None, repr=False)
    native_version: int = -1
    schedule: Schedule | None = None  # render order and delay compensation, when needed

    @property
    def latency(self) -> int:
        """Frames the output lags the timeline (0 without latency-adding processors)."""
        return self.schedule.latency if self.schedule is not None else 0

    def hosted_chains(self) -> list[HostedChain | PluginInstrument]:
        """Every chain run outside the C call: tracks' (an ``lv2`` instrument before its
        track's chain), then buses', then the master's."""
        found: list[HostedChain | PluginInstrument] = []
        for track in self.tracks:
            played = plugin_source(track)
            if played is not None:
                found.append(played)
            if track.hosted is not None:
                found.append(track.hosted)
        return found + [o.hosted for o in [*self.buses, self.master] if o.hosted is not None]


def track_instrument(track: TrackState) -> InstrumentState | None:
    """The track's built-in instrument state, played by the C engine or, on a track with
    a hosted chain, by that chain."""
    if track.instrument is not None or track.hosted is None:
        return track.instrument
    return track.hosted.instrument


def set_note_chase(track: TrackState, on: bool) -> None:
    """Turn note chase on a seek on or off for every instrument of ``track`` (the
    session's ``chase_notes``): off, a seek starts no note that began before it, for the
    built-in instruments, a soundfont or ``lv2`` instrument and ``lv2`` effects that take
    MIDI; controllers and bends are chased either way.  Takes effect at the next seek."""
    instrument = track_instrument(track)
    if instrument is not None:
        instrument.state[S_NO_CHASE] = 0.0 if on else 1.0
    if track.source is not None:
        track.source.chase_notes = on
    if track.hosted is not None:
        for feed in track.hosted.midi.values():
            feed.chase_notes = on


def plugin_source(track: TrackState) -> PluginInstrument | None:
    """The track's ``lv2`` instrument (a worker to close, restart and report), if any."""
    from .lv2_instrument import PluginInstrument

    return track.source if isinstance(track.source, PluginInstrument) else None


def new_fader(left: float, right: float) -> np.ndarray:
    """Fader slots already settled at (left, right): no ramp on the first block."""
    fader = np.zeros(FADER_SLOTS, dtype=np.float32)
    for base in (FADER_TARGET, FADER_END, FADER_START):
        fader[base : base + 2] = (left, right)
    return fader


def set_fader_target(fader: np.ndarray, left: float, right: float) -> None:
    """Move a fader's target; the engine glides there at the control rate."""
    fader[FADER_TARGET : FADER_TARGET + 2] = (left, right)


def track_gains(track: Track, any_solo: bool) -> tuple[float, float]:
    """Left/right fader gains of a track: gain, pan law, mute and solo.

    Mono tracks use the equal-power law ``L = g cos((p+1)pi/4)``,
    ``R = g sin((p+1)pi/4)``; stereo tracks use a balance law
    ``L = g min(1, 1-p)``, ``R = g min(1, 1+p)``.
    """
    if track.mute or (any_solo and not track.solo):
        return 0.0, 0.0
    gain = db_to_linear(track.gain_db)
    if track.channels == 1:
        angle = (track.pan + 1.0) * math.pi / 4.0
        return gain * math.cos(angle), gain * math.sin(angle)
    return balance_gains(gain, track.pan)


def balance_gains(gain: float, pan: float) -> tuple[float, float]:
    """Stereo balance: attenuate the opposite side, never boost."""
    return gain * min(1.0, 1.0 - pan), gain * min(1.0, 1.0 + pan)


def send_levels(track: Track, level_db: float, pre_fader: bool) -> tuple[float, float]:
    """L/R send levels: a pre-fader mono signal is sent centred (equal power)."""
    level = db_to_linear(level_db)
    if pre_fader and track.channels == 1:
        return level * math.sqrt(0.5), level * math.sqrt(0.5)
    return level, level


def automation_key(track: Track, any_solo: bool) -> tuple:
    """What a track's automated fader depends on: equal keys render the same."""
    reading = {p: lane for p, lane in track.automation.items()
               if lane.reads and p in AUTOMATION_PARAMS}  # the fader's lanes only
    if not reading:
        return ()
    soloed_out = any_solo and not track.solo
    lanes = tuple(
        (param, tuple((q.frame, q.value, q.curve) for q in lane.sorted_points()))
        for param, lane in sorted(reading.items())
    )
    return track.channels, track.gain_db, track.pan, track.mute, soloed_out, lanes


def _lane_state(lane: AutomationLane | None, static: float, ratio: float,
                steps: bool = False) -> LaneState:
    if lane is None or not lane.reads:
        return LaneState(np.zeros(1, dtype=np.int64), np.array([static], dtype=np.float64),
                         np.zeros(1, dtype=np.int32))
    points = lane.sorted_points()
    return LaneState(
        frames=np.array([_scale(q.frame, ratio) for q in points], dtype=np.int64),
        values=np.array([q.value for q in points], dtype=np.float64),
        hold=np.array([steps or q.curve == "hold" for q in points], dtype=np.int32),
    )


def build_automation(track: Track, ratio: float, max_block: int,
                     any_solo: bool) -> AutomationState | None:
    """The automated fader of ``track``, or None when no lane is read.

    A parameter without a read lane keeps its static value (one point at frame 0).
    Point frames are scaled from session frames to render frames (``ratio``). A mute
    lane always steps; while it is read it replaces the static mute.
    """
    key = automation_key(track, any_solo)
    if not key:
        return None
    return AutomationState(
        gain=_lane_state(track.automation.get("gain_db"), track.gain_db, ratio),
        pan=_lane_state(track.automation.get("pan"), track.pan, ratio),
        mute=_lane_state(track.automation.get("mute"), float(track.mute), ratio, steps=True),
        scale=0.0 if key[4] else 1.0,
        gains=np.zeros((2, max_block), dtype=np.float32),
        key=key,
    )


def _scale(frames: int, ratio: float) -> int:
    return int(round(frames * ratio))


def clip_stretch(clip, session: Session, sample_rate: int,
                 source_frames: int) -> tuple[StretchSpec, int | None]:
    """The Rubber Band render a clip plays (in render frames) and the rendered frame
    its ``position`` plays (None: the offset as it is)."""
    ratio = sample_rate / session.sample_rate
    offset = _scale(clip.offset, ratio)
    if clip.follow_tempo:
        warp = session.tempo.warp_points(_scale(clip.position, ratio), offset, source_frames,
                                         clip.source_bpm, sample_rate)
        spec = StretchSpec(1.0, clip.semitones, tuple(warp))
        return spec, spec.map_frame(offset, source_frames)
    if clip.warp:
        markers = [(_scale(x, ratio), _scale(y, ratio)) for x, y in clip.warp]
        origin = markers[0][1] - markers[0][0]  # where source frame 0 lands
        spec = StretchSpec(1.0, clip.semitones, tuple((x, y - origin) for x, y in markers))
        start = _scale(clip.position, ratio) - origin
        if start < 0:
            raise ProjectError(f"clip {clip.id!r}: its warp markers put the source's start "
                               "after the clip's start; add a marker at or before it")
        return spec, start
    spec = StretchSpec(clip.stretch, clip.semitones)
    return spec, (None if spec.is_identity else round(offset * clip.stretch))


def load_clip(load: SourceLoader, clip, session: Session,
              sample_rate: int) -> tuple[np.ndarray, int | None]:
    """A clip's audio at the render rate (its stretched render when it has one, from
    :data:`~dsp_core.stretch.CACHE`) and the frame of it that plays at ``position``."""
    source = load(clip.source, sample_rate)
    if not clip.is_stretched:
        return source, None
    spec, start = clip_stretch(clip, session, sample_rate, source.shape[1])
    if spec.is_identity:
        return source, start
    key = spec.key(clip.source, sample_rate)
    return CACHE.rendered(key, source, sample_rate, spec), start


def build_clip(clip_source: np.ndarray, clip, ratio: float, where: str,
               start: int | None = None) -> ClipState:
    """Scale a session clip to render frames and check it fits inside its source
    (``start``: the source frame played at the clip's position, in render frames)."""
    position = _scale(clip.position, ratio)
    length = _scale(clip.end, ratio) - position
    offset = _scale(clip.offset, ratio) if start is None else start
    available = clip_source.shape[1] - offset
    if length > available:
        # resampling may round the source a frame short; anything more is an error
        if length - available > max(2, int(ratio) + 1):
            raise ProjectError(
                f"{where}: clip needs {length} frames from offset {offset} but the source "
                f"has only {clip_source.shape[1]} frames"
            )
        length = max(available, 0)
    fade_in = min(_scale(clip.fade_in, ratio), length)
    fade_out = min(_scale(clip.fade_out, ratio), length - fade_in)
    return ClipState(
        data=clip_source,
        position=position,
        offset=offset,
        length=length,
        gain=db_to_linear(clip.gain_db),
        fade_in=fade_in,
        fade_out=fade_out,
    )


def add_crossfades(clips: list[ClipState], explicit: list[int]) -> None:
    """Set the equal-power crossfades of a track's clips (sorted by position)."""
    spans = [Span(c.position, c.length, x) for c, x in zip(clips, explicit, strict=True)]
    for clip, plan in zip(clips, plan_crossfades(spans), strict=True):
        clip.xfade_in_at, clip.xfade_in, clip.xfade_out = plan.in_at, plan.fade_in, plan.fade_out


def build_track(
    track: Track,
    session: Session,
    sample_rate: int,
    max_block: int,
    load: SourceLoader,
    any_solo: bool,
    hosted: HostedChain | None = None,
    source: SoundFontSource | PluginInstrument | None = None,
) -> TrackState:
    """Build one track's state: clips at the render rate, effects, fader, sends.

    A chain with an ``lv2`` effect becomes a :class:`~dsp_core.lv2_chain.HostedChain`
    (``hosted``: one to reuse, its workers kept) and the track's one clip its feed.
    An ``lv2`` instrument is a :class:`~dsp_core.lv2_instrument.PluginInstrument`
    (``source``: the one playing before an edit of the same plug-in, its worker kept);
    a ``soundfont`` track plays ``source`` on (its sounding notes kept) when it is a
    :class:`~dsp_core.soundfont.SoundFontSource` of the same instrument and events.
    """
    ratio = sample_rate / session.sample_rate
    bus_index = {bus.id: i for i, bus in enumerate(session.buses)}
    ordered = sorted(track.clips, key=lambda c: c.position)
    clips = []
    for clip in ordered:
        audio, start = load_clip(load, clip, session, sample_rate)
        clips.append(build_clip(audio, clip, ratio, f"track {track.id!r}", start))
    add_crossfades(clips, [_scale(c.crossfade, ratio) for c in ordered])
    clips = [c for c in clips if c.length > 0]
    sends = [
        SendState(
            bus=bus_index[send.bus],
            pre_fader=send.pre_fader,
            fader=new_fader(*send_levels(track, send.level_db, send.pre_fader)),
        )
        for send in track.sends
    ]
    instrument = build_instrument(track, ratio, sample_rate, max_block, load, session.tempo,
                                  session.sample_rate)
    played: SoundFontSource | PluginInstrument | None = None
    started: PluginInstrument | None = None  # a worker this call started
    if track.instrument is not None and track.instrument.kind in ("soundfont", "lv2"):
        events = midi_events(track.midi_clips, ratio, session.tempo, session.sample_rate)
        if track.instrument.kind == "soundfont":
            from .soundfont import SoundFontSource

            if isinstance(source, SoundFontSource) and source.plays(
                    track.instrument, events, sample_rate, max_block, track.channels):
                played = source
            else:
                played = SoundFontSource(track.instrument, events, sample_rate, max_block,
                                         track.channels)
        else:
            from .lv2_instrument import PluginInstrument

            if not isinstance(source, PluginInstrument):
                source = None
            played = PluginInstrument(track.id, track.instrument, events, sample_rate,
                                      max_block, track.channels,
                                      source.plugin if source is not None else None)
            if source is not None:
                played.take_over(source)
            else:
                started = played
        # its feed: clip 0, placed every block where the engine reads the track
        clips.insert(0, ClipState(played.buffer, 0, 0, 0, 1.0, 0, 0))
    effects: list[EffectState] = []
    if any(spec.kind in HOSTED_KINDS for spec in track.effects):
        from .lv2_chain import HostedChain

        if hosted is None:
            track_view = _HostedTrack(track.id, track.channels, track.effects)
            try:
                hosted = HostedChain.build(track_view, sample_rate, max_block, load)
            except Exception:
                if started is not None:
                    started.close()
                raise
        hosted.clips = clips
        hosted.set_events(midi_events(track.midi_clips, ratio, session.tempo,
                                      session.sample_rate) if track.midi_clips else None)
        hosted.instrument, instrument = instrument, None  # played ahead, with the chain
        clips = [ClipState(hosted.buffer, 0, 0, 0, 1.0, 0, 0)]  # the feed, moved per block
    else:
        hosted = None
        effects = [EffectState(spec, track.channels, sample_rate, load) for spec in track.effects]
    state = TrackState(
        channels=track.channels,
        clips=clips,
        effects=effects,
        fader=new_fader(*track_gains(track, any_solo)),
        sends=sends,
        buffer=np.zeros((track.channels, max_block), dtype=np.float32),
        automation=build_automation(track, ratio, max_block, any_solo),
        instrument=instrument,
        hosted=hosted,
        source=played,
    )
    set_note_chase(state, session.chase_notes)
    return state


@dataclass
class _HostedTrack:
    """What :meth:`HostedChain.build` needs of a track."""

    id: str
    channels: int
    effects: list


def build_bus(bus: Bus, sample_rate: int, max_block: int,
              load: SourceLoader | None = None, after_call: bool = False) -> BusState:
    """Build an aux or master bus (``load`` reads a convolution's impulse response).

    ``after_call`` (the master of a graph with a hosted bus) and an ``lv2`` effect in the
    chain move the chain and fader out of the C call (:mod:`dsp_core.lv2_bus`).
    """
    fader = new_fader(*balance_gains(db_to_linear(bus.gain_db), bus.pan))
    buffer = np.zeros((2, max_block), dtype=np.float32)
    if after_call or any(spec.kind in HOSTED_KINDS for spec in bus.effects):
        from .lv2_bus import build_chain

        chain = build_chain(bus, sample_rate, max_block, load, fader)
        silent = new_fader(1.0, 1.0) if after_call else new_fader(0.0, 0.0)
        return BusState(effects=[], fader=silent, buffer=buffer, hosted=chain)
    return BusState(
        effects=[EffectState(spec, 2, sample_rate, load) for spec in bus.effects],
        fader=fader,
        buffer=buffer,
    )


def thread_scratch(threads: int, n_buses: int, max_block: int) -> np.ndarray:
    """Per-thread accumulators and scratch for a render split over ``threads`` threads."""
    if threads <= 1:
        return np.zeros(0, dtype=np.float32)
    per_thread = (5 + 2 * LANES + 2 * n_buses) * max_block
    return np.zeros(threads * per_thread, dtype=np.float32)


def build_graph(
    session: Session, sample_rate: int, max_block: int, load: SourceLoader, threads: int = 1,
    sources: dict[str, SoundFontSource | PluginInstrument] | None = None,
) -> Graph:
    """Build the whole render graph of ``session`` at ``sample_rate`` (``sources``: by
    track id, the instrument sources of a previous graph to play on, see
    :func:`build_track`; a failed build closes none of their workers)."""
    from .lv2_instrument import PluginInstrument

    sources = sources or {}
    kept = {id(s.plugin) for s in sources.values() if isinstance(s, PluginInstrument)}
    session.validate(allow_overlaps=True)
    any_solo = any(t.solo for t in session.tracks)
    hosted_bus = [b.id for b in session.buses
                  if any(spec.kind in HOSTED_KINDS for spec in b.effects)]
    after_call = bool(hosted_bus) or any(s.kind in HOSTED_KINDS for s in session.master.effects)
    if hosted_bus:
        from .lv2_bus import check_keys

        check_keys(session, set(hosted_bus))
    parts: list = []
    try:
        tracks = []
        for t in session.tracks:
            tracks.append(build_track(t, session, sample_rate, max_block, load, any_solo,
                                      source=sources.get(t.id)))
            parts.append(tracks[-1].hosted)
            parts.append(plugin_source(tracks[-1]))
        buses = []
        for b in session.buses:
            buses.append(build_bus(b, sample_rate, max_block, load))
            parts.append(buses[-1].hosted)
        master = build_bus(session.master, sample_rate, max_block, load, after_call)
    except Exception:
        for chain in parts:  # the workers started before the failure
            if chain is not None and not (isinstance(chain, PluginInstrument)
                                          and id(chain.plugin) in kept):
                chain.close()
        raise
    graph = Graph(
        sample_rate=sample_rate,
        max_block=max_block,
        tracks=tracks,
        buses=buses,
        master=master,
        scratch=np.zeros(3 * max_block, dtype=np.float32),
        lane_scratch=np.zeros(2 * LANES * max_block, dtype=np.float32),
        threads=threads,
        thread_scratch=thread_scratch(threads, len(session.buses), max_block),
    )
    try:
        graph.schedule = plan_schedule(session, graph.tracks, graph.buses, graph.master,
                                       sample_rate, max_block)
    except Exception:
        for chain in graph.hosted_chains():
            chain.close()
        raise
    return graph
