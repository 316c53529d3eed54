"""MIDI in the session model: notes, controllers, MIDI clips and a track's instrument.

Times are integer frames at the session rate, like audio clips: a note's ``start`` counts
from its clip's ``position``.  Standard MIDI Files carry ticks and a tempo map;
:mod:`dsp_core.smf` converts between the two.  The engine plays a MIDI track's clips
through its instrument (:mod:`dsp_core.instrument_graph`), whose output then runs through
the track's inserts, fader and sends like recorded audio.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from .errors import ProjectError

#: Instrument kinds the engine renders (``lv2``: an installed LV2 instrument,
#: :mod:`dsp_core.lv2_instrument`).
INSTRUMENT_KINDS = ("synth", "sampler", "soundfont", "lv2")
#: The kind whose ``params`` are an LV2 plug-in's (``uri``, controls by symbol, ``state``).
LV2_KIND = "lv2"
WAVES = ("saw", "square", "sine")
CONTROL_KINDS = ("cc", "pitch_bend")
#: Controllers the instruments act on (others are kept in the document and files).
CC_MODULATION, CC_VOLUME, CC_SUSTAIN = 1, 7, 64

#: Instrument parameters: default and inclusive range (times in ms, levels 0..1).
INSTRUMENT_PARAMS: dict[str, tuple[float, float, float]] = {
    "voices": (8, 1, 32),
    "gain_db": (-6.0, -60.0, 12.0),
    "bend_range": (2.0, 0.0, 24.0),
    "attack_ms": (5.0, 0.0, 10000.0),
    "decay_ms": (100.0, 0.0, 10000.0),
    "sustain": (0.7, 0.0, 1.0),
    "release_ms": (200.0, 0.0, 10000.0),
    # synth only
    "osc1": (0, 0, 2),  # index into WAVES (a name is accepted too)
    "osc2": (1, 0, 2),
    "osc2_detune": (7.0, -1200.0, 1200.0),  # cents
    "osc_mix": (0.5, 0.0, 1.0),  # 0: osc1 only, 1: osc2 only
    "cutoff_hz": (2000.0, 20.0, 20000.0),
    "resonance": (0.3, 0.0, 1.0),
    "filter_env": (2.0, -8.0, 8.0),  # octaves at the filter envelope's peak
    "filter_attack_ms": (5.0, 0.0, 10000.0),
    "filter_decay_ms": (300.0, 0.0, 10000.0),
    "filter_sustain": (0.2, 0.0, 1.0),
    "filter_release_ms": (200.0, 0.0, 10000.0),
    # soundfont only: the General MIDI program of each channel (dsp_core/soundfont.py)
    **{f"program_{channel}": (0, 0, 127) for channel in range(16)},
}
#: Parameters that must be whole numbers.
WHOLE_PARAMS = frozenset({"voices", "osc1", "osc2", *(f"program_{c}" for c in range(16))})
MAX_PITCH = 127
MAX_FRAME = 2 ** 53


@dataclass
class Note:
    """One note: MIDI ``pitch`` 0..127, ``velocity`` 1..127, ``start`` (frames from the
    clip's position) and ``length`` (frames, > 0), ``channel`` 0..15."""

    pitch: int
    velocity: int
    start: int
    length: int
    channel: int = 0
    id: str = ""

    @property
    def end(self) -> int:
        """First frame after the note, from the clip's position."""
        return self.start + self.length


@dataclass
class ControlEvent:
    """A controller change (``kind="cc"``: ``number`` 0..127, ``value`` 0..127) or a pitch
    bend (``kind="pitch_bend"``: ``value`` -8192..8191) at ``frame`` from the clip's
    position."""

    kind: str
    frame: int
    value: int
    number: int = 0
    channel: int = 0
    id: str = ""


@dataclass
class MidiClip:
    """Notes and controller events placed on a track at ``position`` for ``length`` frames.

    Notes that start at or after ``length`` are not played; a note running past the end
    is released there.
    """

    position: int
    length: int
    notes: list[Note] = field(default_factory=list)
    controls: list[ControlEvent] = field(default_factory=list)
    id: str = ""
    #: Opt-in: the notes' frames were written at ``source_bpm`` and follow the tempo map
    #: (mapped through it at render: a note on a beat stays on that beat).
    follow_tempo: bool = False
    source_bpm: float = 0.0

    def tempo_frame(self, frame: int, tempo: Any, sample_rate: int) -> int:
        """Where clip frame ``frame`` plays, from the clip's position: as written, or
        with :attr:`follow_tempo` the frame of the same beat in ``tempo`` (a
        :class:`dsp_core.tempo.TempoMap`) counted from the clip's start."""
        if not self.follow_tempo:
            return frame
        start = tempo.frame_to_beat(self.position, sample_rate)
        beat = start + frame / sample_rate * self.source_bpm / 60.0
        return round(tempo.beat_to_frame(beat, sample_rate)) - self.position

    @property
    def end(self) -> int:
        """First timeline frame after the clip."""
        return self.position + self.length


@dataclass
class SampleZone:
    """A sample played over a key range and a velocity layer; ``root`` plays unshifted."""

    source: str
    root: int = 60
    key_lo: int = 0
    key_hi: int = 127
    vel_lo: int = 1
    vel_hi: int = 127
    id: str = ""


@dataclass
class Instrument:
    """A track's instrument: ``kind`` ``synth``, ``sampler``, ``soundfont`` or ``lv2``,
    its parameters (missing ones take their default; an ``lv2`` instrument's are the
    plug-in's, as an ``lv2`` effect's) and, for a sampler, its zones."""

    kind: str = "synth"
    params: dict[str, Any] = field(default_factory=dict)
    zones: list[SampleZone] = field(default_factory=list)

    def value(self, name: str) -> float:
        """A parameter's value (its default when unset or the instrument is an ``lv2``
        one; wave names become their index)."""
        if self.kind == LV2_KIND:
            return float(INSTRUMENT_PARAMS[name][0])
        raw = self.params.get(name, INSTRUMENT_PARAMS[name][0])
        return float(WAVES.index(raw)) if isinstance(raw, str) else float(raw)


# ------------------------------------------------------------------ validation


def _integer(value: Any, label: str, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ProjectError(f"{label}: must be an integer in [{low}, {high}], got {value!r}")


def validate_note(note: Note, label: str) -> None:
    """Raise :class:`ProjectError` naming the first bad field of a note."""
    _integer(note.pitch, f"{label} pitch", 0, MAX_PITCH)
    _integer(note.velocity, f"{label} velocity", 1, 127)
    _integer(note.start, f"{label} start", 0, MAX_FRAME)
    _integer(note.length, f"{label} length", 1, MAX_FRAME)
    _integer(note.channel, f"{label} channel", 0, 15)


def validate_control(event: ControlEvent, label: str) -> None:
    """Raise :class:`ProjectError` naming the first bad field of a controller event."""
    if event.kind not in CONTROL_KINDS:
        raise ProjectError(f"{label} kind: {event.kind!r} is not one of "
                           f"{', '.join(CONTROL_KINDS)}")
    _integer(event.frame, f"{label} frame", 0, MAX_FRAME)
    _integer(event.channel, f"{label} channel", 0, 15)
    if event.kind == "cc":
        _integer(event.number, f"{label} number", 0, 127)
        _integer(event.value, f"{label} value", 0, 127)
    else:
        _integer(event.value, f"{label} value", -8192, 8191)


def validate_clip(clip: MidiClip, label: str) -> None:
    """Check a MIDI clip's placement, its notes and its controller events."""
    _integer(clip.position, f"{label} position", 0, MAX_FRAME)
    _integer(clip.length, f"{label} length", 1, MAX_FRAME)
    for note in clip.notes:
        validate_note(note, f"{label} note {note.id or note.start!r}")
    for event in clip.controls:
        validate_control(event, f"{label} control {event.id or event.frame!r}")
    if not isinstance(clip.follow_tempo, bool):
        raise ProjectError(f"{label} follow_tempo: must be true or false")
    if clip.follow_tempo and (isinstance(clip.source_bpm, bool) or not isinstance(
            clip.source_bpm, int | float) or not 20.0 <= clip.source_bpm <= 999.0):
        raise ProjectError(f"{label}: follow_tempo needs source_bpm, the tempo its notes "
                           f"were written at (20..999), got {clip.source_bpm!r}")


def validate_param(name: str, value: Any, label: str) -> None:
    """Check one instrument parameter against :data:`INSTRUMENT_PARAMS`."""
    if name not in INSTRUMENT_PARAMS:
        raise ProjectError(f"{label}: unknown instrument parameter {name!r}; known: "
                           f"{', '.join(INSTRUMENT_PARAMS)}")
    if name in ("osc1", "osc2") and isinstance(value, str):
        if value not in WAVES:
            raise ProjectError(f"{label} {name}: wave {value!r} is not one of {', '.join(WAVES)}")
        return
    _, low, high = INSTRUMENT_PARAMS[name]
    if (isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value)
            or not low <= value <= high):
        raise ProjectError(f"{label} {name}: must be a number in [{low:g}, {high:g}], "
                           f"got {value!r}")
    if name in WHOLE_PARAMS and value != int(value):
        raise ProjectError(f"{label} {name}: must be a whole number, got {value!r}")


def validate_instrument(instrument: Instrument, label: str) -> None:
    """Check an instrument's kind, parameters and zones."""
    if instrument.kind not in INSTRUMENT_KINDS:
        raise ProjectError(f"{label} kind: {instrument.kind!r} is not one of "
                           f"{', '.join(INSTRUMENT_KINDS)}")
    if instrument.kind == LV2_KIND:
        validate_lv2(instrument, label)
        return
    for name, value in instrument.params.items():
        validate_param(name, value, label)
    for zone in instrument.zones:
        where = f"{label} zone {zone.id or zone.source!r}"
        if not isinstance(zone.source, str) or not zone.source:
            raise ProjectError(f"{where}: source must be a non-empty audio file path")
        for name in ("root", "key_lo", "key_hi"):
            _integer(getattr(zone, name), f"{where} {name}", 0, MAX_PITCH)
        for name in ("vel_lo", "vel_hi"):
            _integer(getattr(zone, name), f"{where} {name}", 1, 127)
        if zone.key_lo > zone.key_hi or zone.vel_lo > zone.vel_hi:
            raise ProjectError(f"{where}: key and velocity ranges must run low to high, got "
                               f"keys {zone.key_lo}..{zone.key_hi}, velocities "
                               f"{zone.vel_lo}..{zone.vel_hi}")


def validate_lv2(instrument: Instrument, label: str) -> None:
    """Check an ``lv2`` instrument: no zones, and ``params`` as an ``lv2`` effect's
    (:func:`dsp_core.lv2_catalog.validate_spec`) naming a plug-in that takes MIDI."""
    from . import lv2_catalog  # lilv is loaded only when an lv2 instrument is named

    if instrument.zones:
        raise ProjectError(f"{label}: an lv2 instrument has no sample zones (its samples "
                           "are in the plug-in's state)")
    try:
        lv2_catalog.validate_spec(instrument.params, instrument=True)
    except ProjectError as exc:
        raise ProjectError(f"{label}: {exc}") from None


# ------------------------------------------------------------------ plain data


def note_to_dict(note: Note) -> dict[str, Any]:
    """A note as plain data (project file, document)."""
    return {"id": note.id, "pitch": note.pitch, "velocity": note.velocity, "start": note.start,
            "length": note.length, "channel": note.channel}


def control_to_dict(event: ControlEvent) -> dict[str, Any]:
    """A controller event as plain data."""
    return {"id": event.id, "kind": event.kind, "frame": event.frame, "value": event.value,
            "number": event.number, "channel": event.channel}


def clip_to_dict(clip: MidiClip) -> dict[str, Any]:
    """A MIDI clip as plain data; notes sorted by start, then id."""
    return {"id": clip.id, "position": clip.position, "length": clip.length,
            "notes": [note_to_dict(n) for n in sorted(clip.notes, key=lambda n: (n.start, n.id))],
            "controls": [control_to_dict(e)
                         for e in sorted(clip.controls, key=lambda e: (e.frame, e.id))],
            **({"follow_tempo": True, "source_bpm": clip.source_bpm} if clip.follow_tempo
               else {})}


def instrument_to_dict(instrument: Instrument, source: Any = str) -> dict[str, Any]:
    """An instrument as plain data; ``source`` maps each zone's path (e.g. to relative)."""
    return {"kind": instrument.kind, "params": dict(instrument.params),
            "zones": [{"id": z.id, "source": source(z.source), "root": z.root,
                       "key_lo": z.key_lo, "key_hi": z.key_hi, "vel_lo": z.vel_lo,
                       "vel_hi": z.vel_hi} for z in instrument.zones]}


def _whole(value: Any) -> Any:
    """JavaScript numbers come back as floats: whole ones become ints again."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return value


NOTE_KEYS = ("pitch", "velocity", "start", "length", "channel", "id")
CONTROL_KEYS = ("kind", "frame", "value", "number", "channel", "id")
CLIP_KEYS = ("position", "length", "notes", "controls", "id", "follow_tempo", "source_bpm")
ZONE_KEYS = ("source", "root", "key_lo", "key_hi", "vel_lo", "vel_hi", "id")
INSTRUMENT_KEYS = ("kind", "params", "zones")


def _fields(data: Any, keys: tuple[str, ...], required: tuple[str, ...], label: str
            ) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ProjectError(f"{label}: must be an object, got {type(data).__name__}")
    unknown = sorted(set(data) - set(keys))
    if unknown:
        raise ProjectError(f"{label}: unknown key(s) {', '.join(map(repr, unknown))}; "
                           f"allowed keys: {', '.join(keys)}")
    missing = [k for k in required if k not in data]
    if missing:
        raise ProjectError(f"{label}: missing required key(s) {', '.join(missing)}")
    return {k: _whole(v) for k, v in data.items()}


def note_from_dict(data: Any, label: str) -> Note:
    """A checked note from plain data."""
    f = _fields(data, NOTE_KEYS, ("pitch", "velocity", "start", "length"), label)
    note = Note(f["pitch"], f["velocity"], f["start"], f["length"], f.get("channel", 0),
                str(f.get("id", "")))
    validate_note(note, label)
    return note


def control_from_dict(data: Any, label: str) -> ControlEvent:
    """A checked controller event from plain data."""
    f = _fields(data, CONTROL_KEYS, ("kind", "frame", "value"), label)
    event = ControlEvent(f["kind"], f["frame"], f["value"], f.get("number", 0),
                         f.get("channel", 0), str(f.get("id", "")))
    validate_control(event, label)
    return event


def clip_from_dict(data: Any, label: str) -> MidiClip:
    """A checked MIDI clip from plain data (notes and controls as lists)."""
    f = _fields(data, CLIP_KEYS, ("position", "length"), label)
    notes, controls = f.get("notes", []), f.get("controls", [])
    if not isinstance(notes, list) or not isinstance(controls, list):
        raise ProjectError(f"{label}: notes and controls must be arrays")
    clip = MidiClip(f["position"], f["length"],
                    [note_from_dict(n, f"{label}.notes[{i}]") for i, n in enumerate(notes)],
                    [control_from_dict(e, f"{label}.controls[{i}]")
                     for i, e in enumerate(controls)],
                    str(f.get("id", "")), f.get("follow_tempo", False),
                    f.get("source_bpm", 0.0))
    validate_clip(clip, label)
    return clip


def instrument_from_dict(data: Any, label: str, source: Any = str) -> Instrument:
    """A checked instrument from plain data; ``source`` resolves each zone's path."""
    f = _fields(data, INSTRUMENT_KEYS, ("kind",), label)
    params = f.get("params", {})
    if not isinstance(params, dict):
        raise ProjectError(f"{label}.params: must be an object")
    zones = []
    for i, z in enumerate(f.get("zones", [])):
        z = _fields(z, ZONE_KEYS, ("source",), f"{label}.zones[{i}]")
        zones.append(SampleZone(source(z["source"]) if isinstance(z["source"], str) and
                                z["source"] else z["source"],
                                **{k: z[k] for k in ZONE_KEYS[1:] if k in z}))
    instrument = Instrument(f["kind"], {k: _whole(v) for k, v in params.items()}, zones)
    validate_instrument(instrument, label)
    return instrument
