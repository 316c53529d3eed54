"""Session model: tracks of clips on a timeline, buses and a master bus.

Positions and lengths are in frames at the session's sample rate.  The model
is plain data; :mod:`dsp_core.project` reads and writes it as JSON and
:mod:`dsp_core.engine` renders it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from . import lv2_limits
from .automation_targets import FADER_PARAMS, lane_range
from .effects import EffectSpec
from .errors import ProjectError
from .immersive import ImmersiveRoute, validate_route
from .midi import Instrument, MidiClip, validate_clip, validate_instrument
from .stretch import StretchError, StretchSpec
from .tempo import MAX_BPM, MIN_BPM, TempoMap

SUPPORTED_RATES = (8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000, 88200, 96000,
                   176400, 192000)
#: The loudest gain a fader, send or clip may set (dB); ``-inf`` (silence) is allowed.
MAX_GAIN_DB = 24.0
#: A clip's fields in frames (the graph turns each into an integer).
CLIP_FRAME_FIELDS = ("position", "length", "offset", "fade_in", "fade_out", "crossfade")


def db_to_linear(db: float) -> float:
    """Convert decibels to a linear amplitude factor (``-inf`` gives 0)."""
    return 0.0 if db == -math.inf else 10.0 ** (db / 20.0)


@dataclass
class Clip:
    """A region of a source file placed on a track.

    ``offset`` and ``length`` are in session frames (the source is resampled
    to the render rate before it is read).
    """

    source: str
    position: int
    length: int
    offset: int = 0
    gain_db: float = 0.0
    fade_in: int = 0
    fade_out: int = 0
    id: str = ""
    #: Equal-power crossfade with the clip it overlaps: 0 = the whole overlap
    #: (dsp_core/crossfade.py).
    crossfade: int = 0
    #: Output length / source length (Rubber Band), unless warp markers or follow_tempo.
    stretch: float = 1.0
    semitones: float = 0.0
    #: ``(source frame, timeline frame)`` pairs placing the source on the timeline.
    warp: tuple[tuple[int, int], ...] = ()
    #: Stretch the source (at ``source_bpm``) to the session's tempo map.
    follow_tempo: bool = False
    source_bpm: float = 0.0

    @property
    def end(self) -> int:
        """First timeline frame after the clip."""
        return self.position + self.length

    @property
    def is_stretched(self) -> bool:
        """Whether the clip plays a Rubber Band render of its source."""
        return (self.follow_tempo or bool(self.warp) or self.stretch != 1.0
                or self.semitones != 0)


@dataclass
class Send:
    """A send from a track to an aux bus."""

    bus: str
    level_db: float = 0.0
    pre_fader: bool = False


#: The track fader's automatable parameters and their ranges (gain in dB, pan -1..1).
#: A ``mute`` lane's values are 0 (playing) or 1 (muted); it always steps. Sends, effect
#: parameters, buses and immersive objects have lanes too (:mod:`.automation_targets`).
AUTOMATION_PARAMS: dict[str, tuple[float, float]] = FADER_PARAMS
#: Lane modes: ``off`` ignores the lane; the engine reads it in read, touch and latch;
#: ``write`` is stored for the clients that record fader moves (the engine ignores it).
AUTOMATION_MODES = ("off", "read", "touch", "latch", "write")
#: Modes in which the engine plays a lane back.
AUTOMATION_READ_MODES = ("read", "touch", "latch")
AUTOMATION_CURVES = ("linear", "hold")


@dataclass
class AutomationPoint:
    """One breakpoint of a lane: ``value`` at timeline ``frame`` (session frames).

    ``curve`` says how the lane goes on to the next point: ``linear`` ramps,
    ``hold`` keeps this value until the next point (a step).
    """

    frame: int
    value: float
    curve: str = "linear"
    id: str = ""


@dataclass
class AutomationLane:
    """A breakpoint envelope of one track parameter and its mode."""

    mode: str = "read"
    points: list[AutomationPoint] = field(default_factory=list)

    @property
    def reads(self) -> bool:
        """Whether the engine plays this lane back (a read mode and at least one point)."""
        return self.mode in AUTOMATION_READ_MODES and bool(self.points)

    def sorted_points(self) -> list[AutomationPoint]:
        """Points in time order (ties kept in id order, so every peer sees the same)."""
        return sorted(self.points, key=lambda p: (p.frame, p.id))


@dataclass
class Track:
    """A mono or stereo track with clips, an insert chain and a fader."""

    id: str
    name: str = ""
    channels: int = 1
    clips: list[Clip] = field(default_factory=list)
    gain_db: float = 0.0
    pan: float = 0.0
    mute: bool = False
    solo: bool = False
    effects: list[EffectSpec] = field(default_factory=list)
    sends: list[Send] = field(default_factory=list)
    automation: dict[str, AutomationLane] = field(default_factory=dict)
    midi_clips: list[MidiClip] = field(default_factory=list)
    instrument: Instrument | None = None
    immersive: ImmersiveRoute | None = None  # bed channels or an object (docs/immersive.md)


@dataclass
class Bus:
    """An aux bus (or the master bus): an effect chain and a stereo fader."""

    id: str
    name: str = ""
    effects: list[EffectSpec] = field(default_factory=list)
    gain_db: float = 0.0
    pan: float = 0.0
    automation: dict[str, AutomationLane] = field(default_factory=dict)


@dataclass
class Session:
    """A whole project: sample rate, tracks, aux buses and the master bus."""

    sample_rate: int = 48000
    tracks: list[Track] = field(default_factory=list)
    buses: list[Bus] = field(default_factory=list)
    master: Bus = field(default_factory=lambda: Bus(id="master", name="Master"))
    name: str = "Untitled"
    tempo: TempoMap = field(default_factory=TempoMap)  # tempo and meter (dsp_core/tempo.py)
    #: MIDI note chase: a seek (or the start of playback) starts the notes that began
    #: before it and still sound; False leaves them silent (controllers are chased anyway)
    chase_notes: bool = True

    @property
    def length(self) -> int:
        """Frames up to the end of the last clip (a MIDI clip's with its instrument's
        release, so a bounce keeps the last notes' tails)."""
        ends = [c.end for t in self.tracks for c in t.clips]
        for t in self.tracks:
            if t.midi_clips and t.instrument is not None:
                tail = math.ceil(t.instrument.value("release_ms") * self.sample_rate / 1000)
                ends.extend(c.end + tail for c in t.midi_clips)
        return max(ends, default=0)

    def track(self, track_id: str) -> Track:
        """Return the track with ``track_id`` or raise :class:`ProjectError`."""
        for track in self.tracks:
            if track.id == track_id:
                return track
        raise ProjectError(f"no track with id {track_id!r}")

    def validate(self, allow_overlaps: bool = False) -> None:
        """Raise :class:`ProjectError` naming the first structural problem found.

        In a project file a clip may overlap only the clip before it, and must end
        after it: the two crossfade (dsp_core/crossfade.py).  A live document may
        overlap clips freely (two users can drop clips on the same spot at once): with
        ``allow_overlaps`` other overlaps are layered (summed).
        """
        if self.sample_rate not in SUPPORTED_RATES:
            raise ProjectError(
                f"unsupported session sample rate {self.sample_rate} Hz; "
                f"use one of {', '.join(map(str, SUPPORTED_RATES))}"
            )
        bus_ids = {b.id for b in self.buses}
        if len(bus_ids) != len(self.buses):
            raise ProjectError("bus ids must be unique")
        seen: set[str] = set()
        for track in self.tracks:
            if track.id in seen:
                raise ProjectError(f"duplicate track id {track.id!r}")
            seen.add(track.id)
            validate_track(track, bus_ids, allow_overlaps)
        lv2_limits.check([(f"track {t.id!r}", [*t.effects, *filter(None, [t.instrument])])
                          for t in self.tracks]  # an lv2 instrument is a worker too
                         + [(f"bus {b.id!r}", b.effects) for b in [*self.buses, self.master]])
        for bus in [*self.buses, self.master]:
            validate_bus(bus)


def validate_bus(bus: Bus) -> None:
    """Raise :class:`ProjectError` for a bus's pan, effect or automation lane."""
    _check_pan(bus.pan, f"bus {bus.id!r}")
    _check_gain(bus.gain_db, f"bus {bus.id!r}")
    for effect in bus.effects:
        effect.validate()
    for param, lane in bus.automation.items():
        validate_lane(param, lane, f"bus {bus.id!r}", bus)


def _check_pan(pan: float, where: str) -> None:
    if not (-1.0 <= pan <= 1.0) or math.isnan(pan):
        raise ProjectError(f"{where}: pan {pan} is outside [-1, 1]")


def _check_gain(db: float, where: str, what: str = "gain") -> None:
    # NaN or +inf reaches the engine as a NaN or infinite factor: the mix goes NaN
    if math.isnan(db) or db > MAX_GAIN_DB:
        raise ProjectError(f"{where}: {what} {db} dB must be a number <= {MAX_GAIN_DB:g} dB")


def check_fader(track: Track) -> None:
    """Raise :class:`ProjectError` for a track's channel count, pan or gain."""
    where = f"track {track.id!r}"
    if track.channels not in (1, 2):
        raise ProjectError(f"{where}: channels must be 1 or 2, got {track.channels}")
    _check_pan(track.pan, where)
    _check_gain(track.gain_db, where)


def check_send(send: Send, bus_ids: set[str], where: str) -> None:
    """Raise :class:`ProjectError` for a send to a bus not in ``bus_ids`` or its level."""
    if send.bus not in bus_ids:
        raise ProjectError(f"{where}: send to unknown bus {send.bus!r}")
    _check_gain(send.level_db, f"{where} send to {send.bus!r}", "level")


def clip_label(clip: Clip, where: str) -> str:
    """How errors name ``clip`` of the track ``where``."""
    return f"{where} clip {clip.id or clip.source!r}"


def check_clip(clip: Clip, where: str) -> None:
    """Raise :class:`ProjectError` for a clip's frames, gain, fades or time keys (not
    overlaps)."""
    label = clip_label(clip, where)
    for name in CLIP_FRAME_FIELDS:
        value = getattr(clip, name)
        if not math.isfinite(value):
            raise ProjectError(f"{label}: {name} must be a finite number of frames, "
                               f"got {value!r}")
    if clip.position < 0 or clip.offset < 0:
        raise ProjectError(f"{label}: position and offset must be >= 0")
    if clip.length <= 0:
        raise ProjectError(f"{label}: length must be > 0, got {clip.length}")
    if clip.fade_in < 0 or clip.fade_out < 0 or clip.fade_in + clip.fade_out > clip.length:
        raise ProjectError(f"{label}: fades must be >= 0 and fit inside the clip")
    _check_gain(clip.gain_db, label)
    _validate_time(clip, label)


def validate_track(track: Track, bus_ids: set[str], allow_overlaps: bool = False) -> None:
    """Raise :class:`ProjectError` for the first problem of ``track`` (sends to a bus not
    in ``bus_ids``, overlapping clips unless ``allow_overlaps``)."""
    where = f"track {track.id!r}"
    check_fader(track)
    for effect in track.effects:
        effect.validate()
    for param, lane in track.automation.items():
        validate_lane(param, lane, where, track)
    if track.instrument is not None:
        validate_instrument(track.instrument, f"{where} instrument")
    if track.immersive is not None:
        validate_route(track.immersive, track.channels, where)
    for midi_clip in track.midi_clips:
        validate_clip(midi_clip, f"{where} MIDI clip {midi_clip.id or midi_clip.position!r}")
    for send in track.sends:
        check_send(send, bus_ids, where)
    previous: Clip | None = None
    before_previous_end = 0
    for clip in sorted(track.clips, key=lambda c: c.position):
        check_clip(clip, where)
        label = clip_label(clip, where)
        if not allow_overlaps and previous is not None and clip.position < previous.end and (
                clip.position <= previous.position or clip.end <= previous.end
                or clip.position < before_previous_end):
            raise ProjectError(
                f"{label} at frame {clip.position} overlaps the clip ending at {previous.end}; "
                "a clip may overlap only the one before it, starting after it starts and "
                "ending after it ends (the two crossfade)"
            )
        if previous is not None:
            before_previous_end = previous.end
        previous = clip


def _validate_time(clip: Clip, label: str) -> None:
    """Crossfade, stretch, pitch and warp markers of one clip."""
    if clip.crossfade < 0:
        raise ProjectError(f"{label}: crossfade must be >= 0 frames, got {clip.crossfade}")
    if clip.follow_tempo and not MIN_BPM <= clip.source_bpm <= MAX_BPM:
        raise ProjectError(f"{label}: follow_tempo needs the source's tempo: set source_bpm "
                           f"in [{MIN_BPM:g}, {MAX_BPM:g}], got {clip.source_bpm!r}")
    try:
        StretchSpec(clip.stretch, clip.semitones, tuple(clip.warp)).validate(label)
    except StretchError as exc:
        raise ProjectError(str(exc)) from None
    if clip.follow_tempo and clip.warp:
        raise ProjectError(f"{label}: give warp markers or follow_tempo, not both")


def validate_lane(param: str, lane: AutomationLane, where: str,
                  owner: Track | Bus | None = None) -> None:
    """Raise :class:`ProjectError` for an unknown parameter, mode, curve or a bad point.

    ``owner`` (the track or bus holding the lane) gives the range of sends, effect
    parameters and object coordinates; without it only the track fader's lanes pass."""
    label = f"{where} automation {param!r}"
    if owner is None:
        if param not in AUTOMATION_PARAMS:
            raise ProjectError(f"{label}: unknown parameter; automatable: "
                               f"{', '.join(AUTOMATION_PARAMS)}")
        low, high = AUTOMATION_PARAMS[param]
    else:
        try:
            low, high = lane_range(owner, param)
        except ProjectError as exc:
            raise ProjectError(f"{where}: {exc}") from None
    if lane.mode not in AUTOMATION_MODES:
        raise ProjectError(f"{label}: mode {lane.mode!r} is not one of "
                           f"{', '.join(AUTOMATION_MODES)}")
    for point in lane.points:
        validate_point(param, point, f"{label} point {point.id or point.frame!r}", low, high)


#: The latest frame a breakpoint may name (2**53: exact as a float, and far past any
#: project at 192 kHz; a larger one would overflow the engine's 64-bit frame arithmetic).
MAX_AUTOMATION_FRAME = 2 ** 53


def validate_point(param: str, point: AutomationPoint, label: str, low: float | None = None,
                   high: float | None = None) -> None:
    """Check one breakpoint: a frame >= 0, a value inside the parameter's range, a curve."""
    if low is None or high is None:
        low, high = AUTOMATION_PARAMS[param]
    if (isinstance(point.frame, bool) or not isinstance(point.frame, int) or point.frame < 0
            or point.frame > MAX_AUTOMATION_FRAME):
        raise ProjectError(f"{label}: frame must be an integer in [0, {MAX_AUTOMATION_FRAME}], "
                           f"got {point.frame!r}")
    if (isinstance(point.value, bool) or not isinstance(point.value, int | float)
            or math.isnan(point.value) or not low <= point.value <= high):
        raise ProjectError(f"{label}: value {point.value!r} is outside [{low:g}, {high:g}] "
                           f"for {param}")
    if param == "mute" and point.value not in (0, 1):
        raise ProjectError(f"{label}: a mute point's value is 0 (playing) or 1 (muted), "
                           f"got {point.value!r}")
    if point.curve not in AUTOMATION_CURVES:
        raise ProjectError(f"{label}: curve {point.curve!r} is not one of "
                           f"{', '.join(AUTOMATION_CURVES)}")
