"""MIDI clips and instruments in the project document, and the note edits.

Layout (``docs/document-schema.md``, ``docs/midi.md``)::

    midi_clips  Map  clip id -> Map(id, track, position, length,
                                    notes: Map note id -> Map(pitch, velocity, start,
                                                              length, channel),
                                    controls: Map event id -> Map(kind, number, frame,
                                                                  value, channel))
    tracks[id].instrument  Map(kind, params: Map, zones: Map zone id -> Map(source, root,
                                                   key_lo, key_hi, vel_lo, vel_hi))

Notes and controller events are maps keyed by id and every field is its own entry, so
two people editing one clip merge without loss: both inserts land, and one moving a note
while the other changes its velocity keeps both.  Edits such as quantise write only the
fields they change.  :class:`MidiEdits` is mixed into
:class:`collab.schema.ProjectDocument`.
"""

from __future__ import annotations

import logging
import math
import uuid
import weakref
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from typing import Any

from pycrdt import Map

from dsp_core import lv2_state
from dsp_core.errors import ProjectError
from dsp_core.midi import (
    LV2_KIND,
    ControlEvent,
    Instrument,
    MidiClip,
    Note,
    SampleZone,
    control_from_dict,
    control_to_dict,
    note_from_dict,
    note_to_dict,
    validate_clip,
    validate_control,
    validate_instrument,
    validate_note,
    validate_param,
)
from dsp_core.session import Track

from .errors import SchemaError

log = logging.getLogger(__name__)

NOTE_FIELDS = ("pitch", "velocity", "start", "length", "channel")
CONTROL_FIELDS = ("kind", "number", "frame", "value", "channel")


def _id(prefix: str) -> str:
    """A fresh id such as ``note-3f2a9c1b0d4e`` (as ``collab.schema.new_id``)."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def _checked(check: Any, *args: Any) -> Any:
    try:
        return check(*args)
    except ProjectError as exc:
        raise SchemaError(str(exc)) from exc


def _fields_map(data: dict[str, Any], keys: Iterable[str]) -> Map:
    return Map({k: data[k] for k in keys})


def instrument_map(instrument: Instrument) -> Map:
    """An instrument as stored in a track's map."""
    return Map({"kind": instrument.kind, "params": Map(dict(instrument.params)),
                "zones": Map({z.id or f"zone{i}": Map({
                    "source": z.source, "root": z.root, "key_lo": z.key_lo, "key_hi": z.key_hi,
                    "vel_lo": z.vel_lo, "vel_hi": z.vel_hi}) for i, z in
                    enumerate(instrument.zones)})})


def clip_map(track_id: str, clip: MidiClip, clip_id: str) -> Map:
    """A MIDI clip as stored in the ``midi_clips`` root (checked first: SchemaError)."""
    _checked(validate_clip, clip, f"MIDI clip {clip_id!r}")
    return Map({
        "id": clip_id, "track": track_id, "position": clip.position, "length": clip.length,
        "notes": Map({n.id or _id("note"): _fields_map(note_to_dict(n), NOTE_FIELDS)
                      for n in clip.notes}),
        "controls": Map({e.id or _id("cc"): _fields_map(control_to_dict(e), CONTROL_FIELDS)
                         for e in clip.controls}),
        **({"follow_tempo": True, "source_bpm": clip.source_bpm} if clip.follow_tempo else {}),
    })


def _whole(value: Any) -> Any:
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return value


def _portable(instrument: Instrument) -> Instrument:
    """An ``lv2`` instrument whose state names asset-store files by their assets (a state a
    server's worker saved), so the document holds no server path."""
    state = instrument.params.get(lv2_state.STATE_KEY)
    if instrument.kind != LV2_KIND or not isinstance(state, str):
        return instrument
    return Instrument(LV2_KIND, {**instrument.params,
                                 lv2_state.STATE_KEY: lv2_state.portable(state)})


def _map(value: Any) -> dict[str, Any]:
    """``value`` if it is a map, else an empty one (a peer may write anything)."""
    return value if isinstance(value, dict) else {}


def instrument_from_json(data: Any, problems: list[str] | None = None) -> Instrument | None:
    """A track's instrument from the document's plain data; a bad one plays as none (a
    log line says why, and so does ``problems`` for an ``lv2`` one: a plug-in not
    installed here, a control out of range), a bad zone is left out."""
    if not isinstance(data, dict):
        return None
    for key in ("params", "zones"):
        if data.get(key) is not None and not isinstance(data.get(key), dict):
            log.info("an instrument in the document plays as none: its %s is a %s, not a "
                     "map", key, type(data.get(key)).__name__)
            return None
    try:
        params = {str(k): _whole(v) for k, v in _map(data.get("params")).items()}
        zones = []
        for zone_id, z in sorted(_map(data.get("zones")).items(), key=lambda kv: str(kv[0])):
            try:
                zone = SampleZone(str(_map(z).get("source", "")), **{
                    k: _whole(z[k]) for k in ("root", "key_lo", "key_hi", "vel_lo", "vel_hi")
                    if k in _map(z)}, id=str(zone_id))
                validate_instrument(Instrument("sampler", {}, [zone]), "instrument")
            except (ProjectError, TypeError, ValueError) as exc:
                log.info("a sampler zone %r in the document is left out: %s", zone_id, exc)
                continue
            zones.append(zone)
        instrument = Instrument(str(data.get("kind", "")), params, zones)
        validate_instrument(instrument, "instrument")
    except Exception as exc:  # noqa: BLE001 - any value a peer wrote plays as none
        log.info("an instrument in the document plays as none: %s", exc)
        if problems is not None and data.get("kind") == LV2_KIND:
            problems.append(f"{exc}; the instrument plays as none")
        return None
    return instrument


def clip_from_json(data: Any) -> MidiClip | None:
    """A MIDI clip from the document; notes and events a peer wrote out of range are left
    out (the rest keeps playing), a clip with a bad position or length is (a log line
    says why)."""
    if not isinstance(data, dict):
        return None
    notes, controls = [], []
    try:
        for note_id, raw in sorted(_map(data.get("notes")).items(), key=lambda kv: str(kv[0])):
            try:
                notes.append(note_from_dict({**_map(raw), "id": str(note_id)}, "note"))
            except (ProjectError, TypeError):
                continue
        for event_id, raw in sorted(_map(data.get("controls")).items(),
                                    key=lambda kv: str(kv[0])):
            try:
                controls.append(control_from_dict({**_map(raw), "id": str(event_id)},
                                                  "control"))
            except (ProjectError, TypeError):
                continue
        clip = MidiClip(_whole(data.get("position")), _whole(data.get("length")), notes,
                        controls, str(data.get("id", "")), data.get("follow_tempo", False),
                        data.get("source_bpm", 0.0))
        validate_clip(clip, "clip")
    except Exception as exc:  # noqa: BLE001 - any value a peer wrote plays as none
        log.info("MIDI clip %r in the document is left out: %s", data.get("id"), exc)
        return None
    return clip


def _stored_note(note_id: str, raw: Any) -> Note:
    """A note as stored (unchecked: fields a peer left out are None, unknown ones go)."""
    fields = {k: _whole(v) for k, v in _map(raw).items() if k in NOTE_FIELDS}
    fields.setdefault("channel", 0)
    return Note(**{k: fields.get(k) for k in NOTE_FIELDS}, id=note_id)


class MidiEdits:
    """MIDI helpers of :class:`collab.schema.ProjectDocument` (one call = one update)."""

    _roots: dict[str, Map]
    #: clip id -> (track id, the clip as last read or None: left out); an entry goes
    #: when its clip changes.
    _midi_cache: dict[str, tuple[str, MidiClip | None]] | None = None
    _midi_watch: Any = None

    def transaction(self, origin: Any = None) -> AbstractContextManager[Any]:  # pragma: no cover
        raise NotImplementedError

    def _track_map(self, track_id: str) -> Map:  # pragma: no cover
        raise NotImplementedError

    # -- instruments ---------------------------------------------------------------------

    def set_instrument(self, track_id: str, instrument: Instrument) -> None:
        """Give a track an instrument (replacing any): it becomes a MIDI track.

        An ``lv2`` instrument is checked as an ``lv2`` effect is (an installed plug-in
        that takes MIDI, its controls' ranges, its state) and its state stored portable
        (asset-store files named by their assets)."""
        _checked(validate_instrument, instrument, f"track {track_id!r} instrument")
        instrument = _portable(instrument)
        with self.transaction():
            self._track_map(track_id)["instrument"] = instrument_map(instrument)

    def set_instrument_params(self, track_id: str, **params: Any) -> None:
        """Change instrument parameters by name (each its own entry: concurrent changes of
        two parameters both land); an ``lv2`` instrument's by port symbol, or ``state``."""
        with self.transaction():
            instrument = self._track_map(track_id).get("instrument")
            if instrument is None:
                raise SchemaError(f"track {track_id!r} has no instrument; set one first")
            if instrument.get("kind") == LV2_KIND:
                merged = Instrument(LV2_KIND, {**dict(instrument["params"].to_py() or {}),
                                               **params})
                _checked(validate_instrument, merged, f"track {track_id!r} instrument")
                params = {k: v for k, v in _portable(merged).params.items() if k in params}
            else:
                for name, value in params.items():
                    _checked(validate_param, name, value, f"track {track_id!r} instrument")
            for name, value in params.items():
                instrument["params"][name] = value

    def instrument(self, track_id: str) -> Instrument | None:
        """The instrument of a track, or None."""
        return instrument_from_json(self._track_map(track_id).to_py().get("instrument"))

    # -- clips ---------------------------------------------------------------------------

    def add_midi_clip(self, track_id: str, clip: MidiClip) -> str:
        """Place a MIDI clip (and its notes) on a track; returns its id."""
        _checked(validate_clip, clip, "MIDI clip")
        self._track_map(track_id)
        clip_id = clip.id or _id("midi")
        with self.transaction():
            self._roots["midi_clips"][clip_id] = clip_map(track_id, clip, clip_id)
        return clip_id

    def update_midi_clip(self, clip_id: str, *, position: int | None = None,
                         length: int | None = None, follow_tempo: bool | None = None,
                         source_bpm: float | None = None) -> None:
        """Move or resize a MIDI clip (frames); ``follow_tempo`` with ``source_bpm`` (the
        tempo its notes were written at) maps its notes through the tempo map."""
        entry = self._midi_clip_map(clip_id)
        probe = MidiClip(entry["position"] if position is None else position,
                         entry["length"] if length is None else length,
                         follow_tempo=entry.get("follow_tempo", False)
                         if follow_tempo is None else follow_tempo,
                         source_bpm=entry.get("source_bpm", 0.0)
                         if source_bpm is None else source_bpm)
        probe.position, probe.length = _whole(probe.position), _whole(probe.length)
        _checked(validate_clip, probe, f"MIDI clip {clip_id!r}")
        with self.transaction():
            if position is not None:
                entry["position"] = position
            if length is not None:
                entry["length"] = length
            if follow_tempo is not None:
                entry["follow_tempo"] = follow_tempo
            if source_bpm is not None:
                entry["source_bpm"] = source_bpm

    def remove_midi_clip(self, clip_id: str) -> None:
        """Delete a MIDI clip and its notes."""
        self._midi_clip_map(clip_id)
        del self._roots["midi_clips"][clip_id]

    def midi_clip(self, clip_id: str) -> MidiClip:
        """A MIDI clip with its notes and controller events."""
        data = self._midi_clip_map(clip_id).to_py()
        clip = clip_from_json(data)
        if clip is None:
            raise SchemaError(f"MIDI clip {clip_id!r} has a bad position or length: "
                              f"{data.get('position')!r}, {data.get('length')!r}")
        return clip

    def midi_clips_of(self, track_id: str) -> list[MidiClip]:
        """The MIDI clips of a track, by position."""
        rows = _map(self._roots["midi_clips"].to_py()).values()
        clips = [clip_from_json(r) for r in rows if _map(r).get("track") == track_id]
        return sorted((c for c in clips if c is not None), key=lambda c: (c.position, c.id))

    # -- notes and controllers -----------------------------------------------------------

    def add_note(self, clip_id: str, pitch: int, velocity: int, start: int, length: int,
                 channel: int = 0) -> str:
        """Add a note to a MIDI clip (``start`` frames from the clip's position); returns
        its id."""
        note = Note(pitch, velocity, start, length, channel)
        _checked(validate_note, note, "note")
        note_id = _id("note")
        with self.transaction():
            self._midi_clip_map(clip_id)["notes"][note_id] = _fields_map(note_to_dict(note),
                                                                         NOTE_FIELDS)
        return note_id

    def update_note(self, clip_id: str, note_id: str, **fields: Any) -> None:
        """Change a note's fields (only those given: concurrent edits of other fields
        merge)."""
        self.update_notes(clip_id, {note_id: fields})

    def update_notes(self, clip_id: str, changes: dict[str, dict[str, Any]]) -> None:
        """Change fields of several notes in one transaction: every changed note is
        checked (with its other fields as stored) before the first write, so a bad one
        refuses the whole edit and writes nothing."""
        entries, writes = {}, []
        for note_id, fields in changes.items():
            unknown = set(fields) - set(NOTE_FIELDS)
            if unknown:
                raise SchemaError(f"unknown note field(s) {sorted(unknown)}; known: "
                                  f"{', '.join(NOTE_FIELDS)}")
            entry = entries[note_id] = self._note_map(clip_id, note_id)
            current = _stored_note(note_id, entry.to_py())
            merged = Note(**{**{k: getattr(current, k) for k in NOTE_FIELDS}, **fields},
                          id=note_id)
            _checked(validate_note, merged, f"note {note_id!r}")
            writes += [(note_id, k, v) for k, v in fields.items() if getattr(current, k) != v]
        if writes:
            with self.transaction():
                for note_id, name, value in writes:
                    entries[note_id][name] = value

    def remove_note(self, clip_id: str, note_id: str) -> None:
        """Delete a note."""
        with self.transaction():
            self._note_map(clip_id, note_id)
            del self._midi_clip_map(clip_id)["notes"][note_id]

    def notes(self, clip_id: str) -> dict[str, Note]:
        """A clip's notes by id (including ones out of range, as stored)."""
        raw = _map(self._midi_clip_map(clip_id)["notes"].to_py())
        return {str(nid): _stored_note(str(nid), n) for nid, n in raw.items()}

    def add_control(self, clip_id: str, event: ControlEvent) -> str:
        """Add a controller change or pitch bend to a clip; returns its id."""
        _checked(validate_control, event, "control")
        event_id = event.id or _id("cc")
        with self.transaction():
            self._midi_clip_map(clip_id)["controls"][event_id] = _fields_map(
                control_to_dict(event), CONTROL_FIELDS)
        return event_id

    def remove_control(self, clip_id: str, event_id: str) -> None:
        """Delete a controller event."""
        controls = self._midi_clip_map(clip_id)["controls"]
        if event_id not in controls:
            raise SchemaError(f"MIDI clip {clip_id!r} has no controller event {event_id!r}")
        del controls[event_id]

    # -- internals -----------------------------------------------------------------------

    def _midi_clip_map(self, clip_id: str) -> Map:
        entry = self._roots["midi_clips"].get(clip_id)
        if entry is None:
            raise SchemaError(f"no MIDI clip with id {clip_id!r}")
        return entry

    def _note_map(self, clip_id: str, note_id: str) -> Map:
        entry = self._midi_clip_map(clip_id)["notes"].get(note_id)
        if entry is None:
            raise SchemaError(f"MIDI clip {clip_id!r} has no note {note_id!r}")
        return entry

    def _put_midi(self, track: Track) -> None:
        """Write a track's instrument and MIDI clips (inside the caller's transaction);
        everything is checked before the first write."""
        if track.instrument is not None:
            _checked(validate_instrument, track.instrument, f"track {track.id!r} instrument")
        clips = {clip.id or f"{track.id}-midi{index}": clip_map(track.id, clip, clip.id or
                                                                 f"{track.id}-midi{index}")
                 for index, clip in enumerate(track.midi_clips)}
        if track.instrument is not None:
            self._track_map(track.id)["instrument"] = instrument_map(track.instrument)
        for clip_id, entry in clips.items():
            self._roots["midi_clips"][clip_id] = entry

    def _midi_into(self, tracks: list[Track], rows: Iterator[dict[str, Any]],
                   bypassed: list[str] | None = None) -> None:
        """Give the session's tracks their instruments (from ``rows``, the track maps) and
        their MIDI clips; why an ``lv2`` instrument plays as none goes in ``bypassed``."""
        by_id = {t.id: t for t in tracks}
        for data in rows:
            track = by_id.get(str(_map(data).get("id")))
            if track is not None:
                problems: list[str] = []
                track.instrument = instrument_from_json(data.get("instrument"), problems)
                if bypassed is not None:
                    bypassed.extend(f"track {track.id!r} {p}" for p in problems)
        for track_id, clip in self._read_midi_clips():
            track = by_id.get(track_id)
            if track is not None and clip is not None:
                track.midi_clips.append(clip)
        for track in tracks:
            track.midi_clips.sort(key=lambda c: (c.position, c.id))

    def _read_midi_clips(self) -> list[tuple[str, MidiClip | None]]:
        """Every MIDI clip as (track id, clip or None when left out); a clip unchanged
        since the last read is the same object (so the engine's
        :func:`dsp_core.instrument_graph.clip_structure` is not computed again), a changed
        one is read afresh."""
        root = self._roots["midi_clips"]
        if self._midi_watch is None:
            self._midi_cache = {}
            self._midi_watch = root.observe_deep(weakly(self._forget_midi_clips))
        # inside an open transaction the observer has not run yet: read, keep nothing
        pending = getattr(getattr(self, "doc", None), "_txn", None) is not None
        cache: dict[str, tuple[str, MidiClip | None]] = {} if pending else (
            self._midi_cache or {})
        out = []
        for clip_id, entry in root.items():
            read = cache.get(clip_id)
            if read is None:
                data = entry.to_py() if hasattr(entry, "to_py") else entry
                read = (str(_map(data).get("track")), clip_from_json(data))
                cache[clip_id] = read
            out.append(read)
        if not pending:
            self._midi_cache = cache
        return out

    def _forget_midi_clips(self, events: list[Any]) -> None:
        """Drop the cached clips a change touched (a clip's own map or an entry of it)."""
        cache = self._midi_cache
        if cache is None:
            return
        for event in events:
            path = list(getattr(event, "path", []) or [])
            if path:
                cache.pop(str(path[0]), None)
            else:
                for key in getattr(event, "keys", {}) or {}:
                    cache.pop(str(key), None)


def weakly(method: Callable[[Any], None]) -> Callable[[Any], None]:
    """An observer calling the bound ``method`` while its object lives.

    A pycrdt document keeps its observers in yrs, where Python's collector cannot
    see a cycle: an observer holding a typed view of the document (and so the
    document) kept every loaded document alive for good (issue 19's soak: each
    bounce's copy of the project was never freed).
    """
    ref = weakref.WeakMethod(method)

    def call(events: Any) -> None:
        bound = ref()
        if bound is not None:
            bound(events)

    return call
