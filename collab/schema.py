"""The project document: one Yjs document per project and typed helpers over it.

Layout (the same in Python and JavaScript; see ``docs/document-schema.md``)::

    meta        Map   schema_version, name, sample_rate
    tracks      Map   track id -> Map(id, name, order, colour, channels, gain_db, pan,
                                      mute, solo, arm, effects: Array[Map], sends: Map,
                                      automation: Map param -> Map(mode, points: Map
                                      point id -> Map(frame, value, curve)))
    clips       Map   clip id  -> Map(id, track, source, position, offset, length,
                                      gain_db, fade_in, fade_out)
    buses       Map   bus id   -> Map(id, name, gain_db, pan, effects: Array[Map]);
                      the master bus has id "master"
    transport   Map   tempo, beats_per_bar, beat_unit, loop_enabled, loop_start,
                      loop_end, playing, position, chase_notes (MIDI note chase on a
                      seek; absent: true)
    markers     Map   marker id -> Map(id, name, position, colour)
    comments    Map   comment id -> Map(id, author, text, created_at, track, position)
    transcripts Map   clip id -> Map(clip, offset, language, language_probability, model,
                                      segments: Array[dict], passages: Array[dict]):
                      a ``transcription.transcript.Transcript``, times from the clip start
                      when the clip's offset was ``offset`` (absent: its offset now)
    jobs        Map   job id   -> Map(id, kind, clip, status, progress, error, updated_at):
                      server work in progress (e.g. transcriptions), for every client to show
    midi_clips  Map   clip id  -> Map(id, track, position, length, notes: Map, controls: Map)
                      and tracks[id].instrument: see :mod:`collab.midi`
    tempos      Map   change id -> Map(id, beat, bpm[, ramp])    (see :mod:`collab.tempo`)
    meters      Map   change id -> Map(id, bar, numerator, denominator)
    (clips[id] may also hold crossfade, stretch, semitones, warp, follow_tempo, source_bpm)
    (tracks[id].immersive: a bed or object route, see :mod:`collab.immersive`)

Collections are maps keyed by id (never arrays) so concurrent inserts cannot
duplicate an entry; ``order`` sorts tracks.  Numbers are JavaScript numbers:
Python reads every number back as ``float`` and the helpers turn frame counts
into ``int``.  No other module pokes at the raw maps: use
:class:`ProjectDocument`.
"""

from __future__ import annotations

import logging
import math
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from pycrdt import Array, Doc, Map

from dsp_core import lv2_limits, lv2_state
from dsp_core.effects import EffectSpec
from dsp_core.errors import ProjectError
from dsp_core.session import (
    SUPPORTED_RATES,
    Bus,
    Clip,
    Send,
    Session,
    Track,
    check_clip,
    check_fader,
    check_send,
    clip_label,
    validate_bus,
    validate_track,
)
from dsp_core.tempo import METER_DENOMINATORS
from transcription.errors import TranscriptDataError
from transcription.transcript import Transcript

from . import automation as lanes
from .changes import Change, DocumentWatch
from .errors import MALFORMED, SchemaError
from .immersive import ImmersiveEdits
from .midi import MidiEdits, weakly
from .tempo import TEMPO_ROOTS, TempoEdits
from .time_fields import (
    TIME_CLIP_FIELDS,
    clip_time_fields,
    clip_time_json,
    parse_time_fields,
)

SCHEMA_VERSION = 1
DEFAULT_SAMPLE_RATE = 48000
MASTER = "master"
ROOTS = ("meta", "tracks", "clips", "buses", "transport", "markers", "comments", "transcripts",
         "jobs", "midi_clips", *TEMPO_ROOTS)
JOB_FIELDS = ("kind", "clip", "status", "progress", "error")

TRACK_FIELDS = {"name", "order", "colour", "channels", "gain_db", "pan", "mute", "solo", "arm"}
CLIP_FIELDS = {"track", "source", "position", "offset", "length", "gain_db", "fade_in",
               "fade_out", *TIME_CLIP_FIELDS}
FRAME_FIELDS = {"position", "offset", "length", "fade_in", "fade_out"}
TRANSPORT_DEFAULTS: dict[str, Any] = {
    "tempo": 120.0, "beats_per_bar": 4, "beat_unit": 4, "loop_enabled": False,
    "loop_start": 0, "loop_end": 0, "playing": False, "position": 0, "recording": False,
    "chase_notes": True,
}
log = logging.getLogger(__name__)
PALETTE = ("#e6194b", "#3cb44b", "#ffe119", "#4363d8", "#f58231", "#911eb4", "#46f0f0",
           "#f032e6")


def new_id(prefix: str) -> str:
    """A fresh, collision-free id such as ``clip-3f2a9c1b``."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def _effect_map(spec: EffectSpec, index: int) -> Map:
    spec.validate()
    fields: dict[str, Any] = {"id": spec.id or f"fx{index}", "kind": spec.kind,
                              "enabled": spec.enabled, "params": Map(dict(spec.params))}
    if spec.sidechain:
        fields["sidechain"] = spec.sidechain
    return Map(fields)


def _effect_spec(data: dict[str, Any]) -> EffectSpec:
    params = {k: (v if isinstance(v, str) else float(v)) for k, v in data.get("params", {}).items()}
    return EffectSpec(str(data["kind"]), params, bool(data.get("enabled", True)),
                      str(data.get("id", "")), str(data.get("sidechain", "") or ""))


def _portable_state(kind: str, params: dict[str, Any]) -> dict[str, Any]:
    """``params`` with an ``lv2`` state's asset-store files named by their assets (a
    state a server's worker saved), so the document holds no server path."""
    state = params.get(lv2_state.STATE_KEY)
    if kind != lv2_limits.HOSTED_KIND or not isinstance(state, str):
        return params
    return {**params, lv2_state.STATE_KEY: lv2_state.portable(state)}


def _left_out(bypassed: list[str], what: str, exc: BaseException) -> None:
    how = "cannot play" if isinstance(exc, ProjectError) else "is malformed"
    reason = (f"{what} {how} ({type(exc).__name__}: {exc}); it is left out of the "
              "mix until it is written again")
    log.warning("%s", reason)
    bypassed.append(reason)


def _order(data: dict[str, Any]) -> float:
    """A track's display order (0 when a peer wrote something else than a number)."""
    order = data.get("order", 0)
    ok = isinstance(order, int | float) and not isinstance(order, bool) and math.isfinite(order)
    return float(order) if ok else 0.0


def _maps(root: Map) -> list[tuple[str, dict[str, Any]]]:
    """A root's entries that are maps, as ``(key, data)`` sorted by key."""
    return sorted((key, data) for key, data in (root.to_py() or {}).items()
                  if isinstance(data, dict))


def _track_rows(root: Map) -> list[tuple[str, dict[str, Any]]]:
    """The tracks' entries that are maps, as ``(key, data)`` in display order."""
    return sorted(_maps(root), key=lambda row: (_order(row[1]), row[0]))


def _clip_from_json(key: str, data: dict[str, Any]) -> tuple[str, Clip]:
    """``(track id, clip)`` of a clip's document data; one of :data:`MALFORMED` when a
    peer wrote it in another shape."""
    clip = Clip(
        source=str(data["source"]), position=int(data["position"]),
        length=int(data["length"]), offset=int(data.get("offset", 0)),
        gain_db=float(data.get("gain_db", 0.0)), fade_in=int(data.get("fade_in", 0)),
        fade_out=int(data.get("fade_out", 0)), id=str(data.get("id", key)),
        **clip_time_fields(data),
    )
    return str(data["track"]), clip


def _playable_effects(owner: str, raw: list[dict[str, Any]], hosted_total: list[int],
                      bypassed: list[str]) -> list[EffectSpec]:
    """A chain as the engine plays it: an ``lv2`` effect that fails validation (a plug-in
    not installed here, a control out of range) or is over a cap is left out (bypassed),
    with the reason in ``bypassed``, so one bad peer write cannot stop the engine; so is
    an effect a peer wrote in another shape, or a built-in one with a value out of range."""
    result: list[EffectSpec] = []
    hosted = 0
    for index, data in enumerate(raw if isinstance(raw, list) else []):
        try:
            spec = _effect_spec(data)
        except MALFORMED as exc:
            _left_out(bypassed, f"{owner} effect {index}", exc)
            continue
        if spec.kind != lv2_limits.HOSTED_KIND:
            try:
                spec.validate()
            except ProjectError as exc:
                _left_out(bypassed, f"{owner} effect {spec.id or index}", exc)
                continue
        else:
            problem = lv2_limits.over_limit(hosted, hosted_total[0])
            if problem is None:
                try:
                    spec.validate()
                except ProjectError as exc:
                    problem = str(exc)
            if problem is not None:
                reason = f"{owner} effect {spec.id or index}: {problem}; played bypassed"
                log.warning("%s", reason)
                bypassed.append(reason)
                continue
            hosted += 1
            hosted_total[0] += 1
        result.append(spec)
    return result


def _clip_problem(track_id: str, clip: Clip, *, timed: bool) -> str | None:
    """Why the mix would leave ``clip`` out (:func:`_playable_clips`: a NaN or +inf gain,
    fades longer than the clip...), or None. ``timed``: its time keys must play too (a
    ``source_bpm`` outside the tempo map's range would play as the defaults)."""
    where = f"track {track_id!r}"
    try:
        if timed:
            check_clip(clip, where)
        else:
            _playable(clip, where)
    except ProjectError as exc:
        return str(exc)
    return None


def _data_problem(clip_id: str, data: dict[str, Any], *, timed: bool) -> str | None:
    """:func:`_clip_problem` of a clip's document data (malformed data is one too)."""
    try:
        track_id, clip = _clip_from_json(clip_id, data)
    except MALFORMED as exc:
        return f"clip {clip_id!r}: {exc}"
    return _clip_problem(track_id, clip, timed=timed)


def _newly_broken(clip_id: str, before: dict[str, Any], after: dict[str, Any], *,
                  timed: bool) -> str | None:
    """Why a write from ``before`` to ``after`` breaks the clip (:func:`_data_problem`),
    or None: a clip left out already (a peer's bad value) may still be moved, trimmed or
    re-pointed, but one the mix plays (``timed``: its time keys too) must go on playing."""
    problem = _data_problem(clip_id, after, timed=timed)
    if problem is not None and _data_problem(clip_id, before, timed=timed) is None:
        return problem
    return None


def _playable(clip: Clip, where: str) -> Clip:
    """``clip`` as the mix plays it, bad time keys (warp markers with ``follow_tempo``)
    as the defaults; :class:`ProjectError` for one the engine refuses even so."""
    try:
        check_clip(clip, where)
        return clip
    except ProjectError as exc:
        untimed = replace(clip, crossfade=0, stretch=1.0, semitones=0.0, warp=(),
                          follow_tempo=False, source_bpm=0.0)
        try:
            check_clip(untimed, where)
        except ProjectError:
            raise exc from None
        return untimed


def _playable_clips(where: str, clips: list[Clip], bypassed: list[str]) -> list[Clip]:
    """``clips`` in position order less those the engine refuses (a length <= 0, fades
    longer than the clip...), with the reason in ``bypassed``; bad time keys play as the
    defaults (:func:`_playable`)."""
    kept = []
    for clip in clips:
        try:
            kept.append(_playable(clip, where))
        except ProjectError as exc:
            _left_out(bypassed, clip_label(clip, where), exc)
    return sorted(kept, key=lambda c: c.position)


def _playable_sends(track: Track, bus_ids: set[str], bypassed: list[str]) -> list[Send]:
    """The track's sends less those to a bus not in ``bus_ids`` (reasons in ``bypassed``)."""
    kept = []
    for send in track.sends:
        try:
            check_send(send, bus_ids, f"track {track.id!r}")
        except ProjectError as exc:
            _left_out(bypassed, f"track {track.id!r} send to {send.bus!r}", exc)
            continue
        kept.append(send)
    return kept


def _check_track_value(name: str, value: Any) -> Any:
    if name in ("gain_db", "pan") and (not isinstance(value, int | float) or math.isnan(value)):
        raise SchemaError(f"track {name} must be a number, got {value!r}")
    if name == "gain_db" and value > 24.0:
        raise SchemaError(f"track gain_db {value} is above the +24 dB maximum")
    if name == "pan" and not -1.0 <= value <= 1.0:
        raise SchemaError(f"track pan {value} is outside [-1, 1]")
    if name in ("mute", "solo", "arm") and not isinstance(value, bool):
        raise SchemaError(f"track {name} must be true or false, got {value!r}")
    return value


def _check_transport_value(name: str, value: Any) -> None:
    """Raise :class:`SchemaError` unless ``value`` is one the transport's ``name`` takes: a
    meter or tempo the tempo map could not play would make it fall back to 120 in 4/4."""
    number = isinstance(value, int | float) and not isinstance(value, bool) \
        and math.isfinite(value)
    whole = number and float(value).is_integer()
    if name == "tempo" and not (number and 10.0 <= value <= 999.0):
        raise SchemaError(f"tempo {value!r} is outside [10, 999] BPM")
    if name == "beats_per_bar" and not (whole and 1 <= value <= 64):
        raise SchemaError(f"beats_per_bar must be a whole number in 1..64, got {value!r}")
    if name == "beat_unit" and not (whole and value in METER_DENOMINATORS):
        raise SchemaError(f"beat_unit must be one of {', '.join(map(str, METER_DENOMINATORS))}"
                          f", got {value!r}")
    if name in ("position", "loop_start", "loop_end") and not (whole and value >= 0):
        raise SchemaError(f"{name} must be a whole number of frames >= 0, got {value!r}")
    if name in ("playing", "recording", "loop_enabled", "chase_notes") \
            and not isinstance(value, bool):
        raise SchemaError(f"{name} must be true or false, got {value!r}")


class ProjectDocument(MidiEdits, ImmersiveEdits, TempoEdits):
    """Typed access to a project's :class:`pycrdt.Doc`.

    Every mutating helper runs in one transaction, so one call is one Yjs
    update on the wire.  Group several calls with :meth:`transaction`.
    """

    #: The maps an undoable server edit (a text edit of a transcript) may restore.
    undo_scopes = ("clips", "transcripts")

    def __init__(self, doc: Doc | None = None) -> None:
        # a uint32 client id, as yjs draws them: ids above are the servers' (presence)
        self.doc = doc if doc is not None else Doc(client_id=secrets.randbits(32))
        self._roots = {name: self.doc.get(name, type=Map) for name in ROOTS}
        self._clip_sources: frozenset[str] | None = None
        self._clips_watch: Any = None
        #: Why the last :meth:`to_session` left out each entry (a track, clip, send, bus or
        #: effect) it did, bypassed an ``lv2`` effect or played an ``lv2`` instrument as none.
        self.bypassed: list[str] = []

    # -- whole-document conversions ------------------------------------------------------

    @classmethod
    def from_session(cls, session: Session, *, name: str | None = None) -> ProjectDocument:
        """A new document holding ``session`` (tracks, clips, buses, master)."""
        project = cls()
        with project.transaction():
            meta = project._roots["meta"]
            meta["schema_version"] = SCHEMA_VERSION
            meta["name"] = name or session.name
            meta["sample_rate"] = session.sample_rate
            for key, value in {**TRANSPORT_DEFAULTS, "chase_notes": session.chase_notes}.items():
                project._roots["transport"][key] = value
            for order, track in enumerate(session.tracks):
                project._put_track(track, order)
            for bus in [*session.buses, session.master]:
                project._put_bus(bus)
            project._put_tempo(session.tempo)
        return project

    def to_session(self) -> Session:
        """The :class:`dsp_core.session.Session` the engine renders for this document.

        A clip, track, bus, send or effect a peer wrote in another shape (the room checks
        only that an update applies), or with a value the engine refuses (a NaN fader, a
        clip length <= 0, a send to no bus), is left out, with the reason in
        :attr:`bypassed`: one bad write must not stop every render of the project. The
        result always passes ``Session.validate(allow_overlaps=True)``.
        """
        meta = self._roots["meta"].to_py() or {}
        bypassed: list[str] = []
        clips_by_track: dict[str, list[Clip]] = {}
        for key, data in _maps(self._roots["clips"]):
            try:
                track_id, clip = _clip_from_json(key, data)
            except MALFORMED as exc:
                _left_out(bypassed, f"clip {key!r}", exc)
                continue
            clips_by_track.setdefault(track_id, []).append(clip)
        tracks: list[Track] = []
        rows = []
        hosted_total = [0]
        for key, data in _track_rows(self._roots["tracks"]):
            track_id = str(data.get("id", key))
            try:
                track = Track(
                    id=track_id, name=str(data.get("name", "")),
                    channels=int(data.get("channels", 1)),
                    gain_db=float(data.get("gain_db", 0.0)), pan=float(data.get("pan", 0.0)),
                    mute=bool(data.get("mute", False)), solo=bool(data.get("solo", False)),
                    sends=[Send(bus, float(s.get("level_db", 0.0)),
                                bool(s.get("pre_fader", False)))
                           for bus, s in sorted((data.get("sends") or {}).items())],
                )
                check_fader(track)
                if any(t.id == track_id for t in tracks):
                    raise ProjectError(f"another track entry has the id {track_id!r}")
            except (*MALFORMED, ProjectError) as exc:
                _left_out(bypassed, f"track {key!r}", exc)
                continue
            where = f"track {track_id!r}"
            track.effects = _playable_effects(where, data.get("effects", []), hosted_total,
                                              bypassed)
            track.clips = _playable_clips(where, clips_by_track.get(track_id, []), bypassed)
            tracks.append(track)
            rows.append(data)
        self._midi_into(tracks, iter(rows), bypassed)
        for track in tracks:  # an lv2 instrument is one more worker: within the caps
            if track.instrument is not None and track.instrument.kind == lv2_limits.HOSTED_KIND:
                problem = lv2_limits.over_limit(lv2_limits.count(track.effects),
                                                hosted_total[0])
                if problem is None:
                    hosted_total[0] += 1
                    continue
                reason = f"track {track.id!r} instrument: {problem}; the instrument plays as none"
                log.warning("%s", reason)
                bypassed.append(reason)
                track.instrument = None
        self._immersive_into(tracks, iter(rows))
        buses, master = self._session_buses(hosted_total, bypassed)
        bus_ids = {bus.id for bus in buses}
        for track, data in zip(tracks, rows, strict=True):
            track.sends = _playable_sends(track, bus_ids, bypassed)
            track.automation = lanes.lanes_from_json(data.get("automation"), track)
        playable = []
        for track in tracks:  # whatever else the engine would refuse
            try:
                validate_track(track, bus_ids, allow_overlaps=True)
            except ProjectError as exc:
                _left_out(bypassed, f"track {track.id!r}", exc)
                continue
            playable.append(track)
        self.bypassed = bypassed
        return Session(sample_rate=self.sample_rate, tracks=playable,
                       buses=buses, master=master, name=str(meta.get("name", "Untitled")),
                       tempo=self.tempo_map(), chase_notes=self.chase_notes)

    def _session_buses(self, hosted_total: list[int],
                       bypassed: list[str]) -> tuple[list[Bus], Bus]:
        """The aux buses and the master as the engine plays them: a bus the engine would
        refuse (a pan outside [-1, 1], an id another bus has) is left out (a default
        master plays instead of a bad one), with the reason in ``bypassed``."""
        buses, master = [], Bus(id=MASTER, name="Master")
        for key, data in _maps(self._roots["buses"]):
            bus_id = str(data.get("id", key))
            try:
                bus = Bus(id=bus_id, name=str(data.get("name", "")),
                          gain_db=float(data.get("gain_db", 0.0)),
                          pan=float(data.get("pan", 0.0)))
                validate_bus(bus)  # its pan, before its effects count toward the lv2 caps
                if bus_id != MASTER and any(b.id == bus_id for b in buses):
                    raise ProjectError(f"another bus entry has the id {bus_id!r}")
                bus.effects = _playable_effects(f"bus {bus_id!r}", data.get("effects", []),
                                                hosted_total, bypassed)
                bus.automation = lanes.lanes_from_json(data.get("automation"), bus)
                validate_bus(bus)
            except (*MALFORMED, ProjectError) as exc:
                _left_out(bypassed, f"bus {key!r}", exc)
                continue
            if bus.id == MASTER:
                master = bus
            else:
                buses.append(bus)
        return buses, master

    @property
    def chase_notes(self) -> bool:
        """Whether a seek restarts the MIDI notes sounding across it (``transport.
        chase_notes``; a document without it chases, as before the setting)."""
        return self.transport()["chase_notes"] is not False

    @property
    def sample_rate(self) -> int:
        """The project's sample rate (``meta.sample_rate``; 48000 when unset, or when a
        peer wrote something that is not a rate the engine plays)."""
        rate = self._roots["meta"].get("sample_rate", DEFAULT_SAMPLE_RATE)
        if isinstance(rate, int | float) and not isinstance(rate, bool) \
                and rate in SUPPORTED_RATES:
            return int(rate)
        return DEFAULT_SAMPLE_RATE

    def to_json(self) -> dict[str, Any]:
        """Every root map as plain JSON-able Python data."""
        return {name: self._roots[name].to_py() or {} for name in ROOTS}

    @contextmanager
    def transaction(self, origin: Any = None) -> Iterator[ProjectDocument]:
        """Group several edits into one transaction (one update)."""
        with self.doc.transaction(origin=origin):
            yield self

    # -- tracks --------------------------------------------------------------------------

    def watch(self, callback: Callable[[list[Change]], None]) -> DocumentWatch:
        """Call ``callback`` with typed :mod:`collab.changes` events after each transaction
        that changes tracks, transport, clips, buses or meta; close the result to stop."""
        return DocumentWatch(self._roots, callback)

    def track_ids(self) -> list[str]:
        """Track ids in display order."""
        return [str(data.get("id", key)) for key, data in _track_rows(self._roots["tracks"])]

    def track(self, track_id: str) -> dict[str, Any]:
        """A plain copy of one track's fields."""
        return self._track_map(track_id).to_py()

    def add_track(self, track: Track, order: float | None = None) -> str:
        """Append ``track`` (and its clips); returns its id."""
        with self.transaction():
            if track.id in self._roots["tracks"]:
                raise SchemaError(f"track id {track.id!r} already exists")
            if order is None:  # after the last: a count would tie once a track was removed
                order = max((_order(data) for _, data in _maps(self._roots["tracks"])),
                            default=-1.0) + 1
            self._put_track(track, order)
        return track.id

    def update_track(self, track_id: str, **fields: Any) -> None:
        """Set track fields (``gain_db``, ``pan``, ``mute``, ``solo``, ``arm``, ``name``...)."""
        unknown = set(fields) - TRACK_FIELDS
        if unknown:
            raise SchemaError(f"unknown track field(s) {sorted(unknown)}; "
                              f"known: {sorted(TRACK_FIELDS)}")
        with self.transaction():
            target = self._track_map(track_id)
            for name, value in fields.items():
                target[name] = _check_track_value(name, value)

    def set_track_gain(self, track_id: str, gain_db: float) -> None:
        """Move a track's fader."""
        self.update_track(track_id, gain_db=float(gain_db))

    def remove_track(self, track_id: str) -> None:
        """Delete a track and its clips."""
        with self.transaction():
            self._track_map(track_id)
            del self._roots["tracks"][track_id]
            clips = self._roots["clips"]
            for clip_id in [k for k, v in clips.items() if v.get("track") == track_id]:
                del clips[clip_id]
            midi = self._roots["midi_clips"]
            for clip_id in [k for k, v in midi.items() if v.get("track") == track_id]:
                del midi[clip_id]

    def set_effect_params(self, track_id: str, index: int, **params: float | str) -> None:
        """Change parameters of the ``index``-th insert effect of a track."""
        effects = self._track_map(track_id)["effects"]
        if not 0 <= index < len(effects):
            raise SchemaError(f"track {track_id!r} has {len(effects)} effects, no index {index}")
        with self.transaction():
            effect = effects[index]
            _effect_spec({**effect.to_py(), "params": {**effect["params"].to_py(), **params}}
                         ).validate()
            params = _portable_state(str(effect.get("kind")), params)
            for name, value in params.items():
                effect["params"][name] = value

    def add_effect(self, track_id: str, spec: EffectSpec) -> str:
        """Append an insert effect to a track's chain; returns its id.

        Raises :class:`~dsp_core.ProjectError` for an unknown kind or a bad parameter.
        """
        effects = self._track_map(track_id)["effects"]
        if spec.kind == lv2_limits.HOSTED_KIND:
            every = [e for root in ("tracks", "buses")
                     for t in (self._roots[root].to_py() or {}).values()
                     for e in t.get("effects", [])]
            problem = lv2_limits.over_limit(lv2_limits.count(effects.to_py()),
                                            lv2_limits.count(every))
            if problem is not None:
                raise ProjectError(f"track {track_id!r}: {problem}; remove one first, or "
                                   "bounce a track to audio and remove its plug-ins")
        spec = EffectSpec(spec.kind, _portable_state(spec.kind, dict(spec.params)),
                          spec.enabled, spec.id or new_id("fx"), spec.sidechain)
        effects.append(_effect_map(spec, len(effects)))
        return spec.id

    def remove_effect(self, track_id: str, index: int) -> None:
        """Take the ``index``-th insert effect out of a track's chain."""
        effects = self._track_map(track_id)["effects"]
        if not 0 <= index < len(effects):
            raise SchemaError(f"track {track_id!r} has {len(effects)} effects, no index {index}")
        del effects[index]

    def set_effect_enabled(self, track_id: str, index: int, enabled: bool) -> None:
        """Bypass or enable one insert effect."""
        effects = self._track_map(track_id)["effects"]
        if not 0 <= index < len(effects):
            raise SchemaError(f"track {track_id!r} has {len(effects)} effects, no index {index}")
        effects[index]["enabled"] = bool(enabled)

    def set_effect_sidechain(self, owner_id: str, index: int, source: str) -> None:
        """Key the ``index``-th compressor or gate of a track or bus by ``source`` (a
        track or bus id); ``""`` returns it to its own input.

        A cycle of sidechains is not refused here (two peers could close one at once);
        the engine refuses it and keeps its previous state.
        """
        owner = self._roots["tracks"].get(owner_id) or self._roots["buses"].get(owner_id)
        if owner is None:
            raise SchemaError(f"no track or bus with id {owner_id!r}")
        effects = owner["effects"]
        if not 0 <= index < len(effects):
            raise SchemaError(f"{owner_id!r} has {len(effects)} effects, no index {index}")
        if source and source not in self._roots["tracks"] and source not in self._roots["buses"]:
            raise SchemaError(f"sidechain {source!r} is neither a track nor a bus")
        if source == owner_id:
            raise SchemaError(f"{owner_id!r} cannot key its own effect; use an empty sidechain")
        effect = effects[index]
        spec = _effect_spec({**effect.to_py(), "sidechain": source})
        try:
            spec.validate()
        except ProjectError as exc:
            raise SchemaError(str(exc)) from exc
        effect["sidechain"] = source

    def set_send(self, track_id: str, bus_id: str, level_db: float, pre_fader: bool = False
                 ) -> None:
        """Create or change a track's send to an aux bus."""
        if bus_id not in self._roots["buses"] or bus_id == MASTER:
            raise SchemaError(f"no aux bus {bus_id!r}")
        sends = self._track_map(track_id)["sends"]
        if not isinstance(level_db, int | float) or isinstance(level_db, bool):
            raise SchemaError(f"send level_db must be a number, got {level_db!r}")
        try:  # what the mix would leave out (a NaN or +inf level) is never stored
            check_send(Send(bus_id, float(level_db), bool(pre_fader)), {bus_id},
                       f"track {track_id!r}")
        except ProjectError as exc:
            raise SchemaError(str(exc)) from exc
        sends[bus_id] = Map({"level_db": float(level_db), "pre_fader": bool(pre_fader)})

    # -- automation ----------------------------------------------------------------------

    def automation(self, track_id: str) -> dict[str, dict[str, Any]]:
        """A plain copy of a track's or bus's lanes: param -> {mode, points: {id: {frame,
        value, curve}}} (the flat entries gathered into lanes)."""
        owner, is_track = self._automation_owner(track_id)
        data = owner.to_py().get("automation") or {}
        return {param: {"mode": lane.mode, "points": {
                    p.id: {"frame": p.frame, "value": p.value, "curve": p.curve}
                    for p in lane.points}}
                for param, lane in lanes.lanes_from_json(
                    data, lanes.owner_from_json(owner.to_py(), is_track)).items()}

    def add_automation_point(self, track_id: str, param: str, frame: int, value: float,
                             curve: str = "linear") -> str:
        """Add a breakpoint to the ``param`` lane of a track or bus (``gain_db``, ``pan``,
        ``mute``, ``send:<bus>``, ``fx:<effect id>:<param>``, ``object:<axis>``); returns
        its id.  ``frame`` is in session frames; :class:`SchemaError` for a bad value."""
        with self.transaction():
            owner, model, is_track = self._lane_owner(track_id)
            point = lanes.check_point(param, frame, value, curve, model)
            lane = lanes.lane_map(owner, param, is_track)
            point_id = new_id("pt")
            lane["points"][point_id] = lanes.point_map(point)
        return point_id

    def move_automation_point(self, track_id: str, param: str, point_id: str, *,
                              frame: int | None = None, value: float | None = None,
                              curve: str | None = None) -> None:
        """Change a breakpoint's frame, value or curve (only the fields given, so a peer
        moving it in time and another changing its value both win)."""
        with self.transaction():
            _, model, _ = self._lane_owner(track_id)
            entry = self._point_map(track_id, param, point_id)
            current = entry.to_py()
            point = lanes.check_point(
                param, current["frame"] if frame is None else frame,
                current["value"] if value is None else value,
                current.get("curve", "linear") if curve is None else curve, model)
            if frame is not None:
                entry["frame"] = point.frame
            if value is not None:
                entry["value"] = float(point.value)
            if curve is not None:
                entry["curve"] = point.curve

    def remove_automation_point(self, track_id: str, param: str, point_id: str) -> None:
        """Delete one breakpoint."""
        with self.transaction():
            self._point_map(track_id, param, point_id)
            del self.automation_lane(track_id, param)["points"][point_id]

    def set_automation_mode(self, track_id: str, param: str, mode: str) -> None:
        """Set a lane's mode: off, read, touch, latch or write (the engine plays read,
        touch and latch)."""
        lanes.check_mode(mode)
        with self.transaction():
            self.automation_lane(track_id, param)["mode"] = mode

    def automation_lane(self, track_id: str, param: str) -> Any:
        """The live lane ``{mode, points}`` of ``param`` on a track or bus (a lane map, or
        a :class:`collab.automation.FlatLane` that reads and writes the same way; for
        writers that edit many points in one transaction, :mod:`collab.automation_write`)."""
        owner, model, is_track = self._lane_owner(track_id)
        lanes.check_param(param, model)
        return lanes.lane_map(owner, param, is_track)

    def automation_owner(self, track_id: str) -> Track | Bus:
        """What the lanes of a track or bus depend on (effects, sends, immersive route)."""
        return self._lane_owner(track_id)[1]

    def automation_data(self, track_id: str) -> dict[str, Any]:
        """The raw ``automation`` map of a track or bus as plain data."""
        return self._automation_owner(track_id)[0].to_py().get("automation") or {}

    def automation_static(self, track_id: str, param: str) -> float:
        """The value ``param`` of a track or bus has without its lane (a fader, a send
        level, an effect parameter, an object coordinate)."""
        owner, is_track = self._automation_owner(track_id)
        return lanes.static_value(owner.to_py(), param, is_track)

    def set_automation_static(self, track_id: str, param: str, value: float) -> None:
        """Set the value ``param`` of a track or bus has without its lane (what a control
        moved outside a writing pass sets): a fader, a send level, an effect parameter or
        an object coordinate; :class:`SchemaError` for a bad value."""
        owner, model, is_track = self._lane_owner(track_id)
        lanes.check_point(param, 0, value, "linear", model)
        kind, colon, rest = param.partition(":")
        with self.transaction():
            if not colon and is_track:
                self.update_track(track_id, **{param: bool(value >= 0.5) if param == "mute"
                                               else float(value)})
            elif not colon:
                owner[param] = float(value)
            elif kind == "send":
                self._track_map(track_id)["sends"][rest]["level_db"] = float(value)
            elif kind == "object":
                self.move_object(track_id, **{rest: float(value)})
            else:
                effect_id, _, name = rest.partition(":")
                for effect in owner["effects"]:
                    if effect.get("id") == effect_id:
                        spec = _effect_spec({**effect.to_py(), "params": {
                            **effect["params"].to_py(), name: float(value)}})
                        try:
                            spec.validate()
                        except ProjectError as exc:
                            raise SchemaError(str(exc)) from exc
                        effect["params"][name] = float(value)

    def _automation_owner(self, owner_id: str) -> tuple[Map, bool]:
        track = self._roots["tracks"].get(owner_id)
        if track is not None:
            return track, True
        bus = self._roots["buses"].get(owner_id)
        if bus is None:
            raise SchemaError(f"no track or bus with id {owner_id!r}")
        return bus, False

    def _lane_owner(self, owner_id: str) -> tuple[Map, Track | Bus, bool]:
        owner, is_track = self._automation_owner(owner_id)
        return owner, lanes.owner_from_json(owner.to_py(), is_track), is_track

    def _point_map(self, track_id: str, param: str, point_id: str) -> Map:
        points = self.automation_lane(track_id, param)["points"]
        entry = points.get(point_id)
        if entry is None:
            raise SchemaError(f"{track_id!r} has no {param} automation point {point_id!r}")
        return entry

    # -- clips ---------------------------------------------------------------------------

    def clip(self, clip_id: str) -> dict[str, Any]:
        """A plain copy of one clip's fields."""
        return self._clip_map(clip_id).to_py()

    def clip_sources(self) -> frozenset[str]:
        """Every audio file a clip uses (read once, then kept until a clip changes)."""
        if self._clip_sources is None:
            if self._clips_watch is None:
                self._clips_watch = self._roots["clips"].observe_deep(
                    weakly(self._forget_sources))
            self._clip_sources = frozenset(str(clip.get("source"))
                                           for clip in self._roots["clips"].values())
        return self._clip_sources

    def clip_source_map(self) -> dict[str, str]:
        """Clip id -> its ``source``, for every clip."""
        return {str(clip_id): str(clip.get("source"))
                for clip_id, clip in self._roots["clips"].items()}

    def _forget_sources(self, _events: object) -> None:
        self._clip_sources = None

    def clips_of(self, track_id: str) -> list[dict[str, Any]]:
        """The clips on one track, by position."""
        rows = [c for _, c in _maps(self._roots["clips"]) if c.get("track") == track_id
                and isinstance(c.get("position"), int | float)]
        return sorted(rows, key=lambda c: c["position"])

    def add_clip(self, track_id: str, clip: Clip) -> str:
        """Place ``clip`` on a track; returns its id (generated when empty)."""
        self._track_map(track_id)
        clip_id = clip.id or new_id("clip")
        problem = _clip_problem(track_id, replace(clip, id=clip_id), timed=True)
        if problem is not None:
            raise SchemaError(problem)
        self._roots["clips"][clip_id] = self._clip_prelim(track_id, clip, clip_id)
        return clip_id

    def update_clip(self, clip_id: str, **fields: Any) -> None:
        """Move, trim or re-gain a clip (``position``, ``offset``, ``length``, ``gain_db``...)."""
        fields = self._clip_write(clip_id, fields)
        with self.transaction():
            target = self._clip_map(clip_id)
            for name, value in fields.items():
                target[name] = value

    def copy_clip(self, clip_id: str, **fields: Any) -> str:
        """A new clip like ``clip_id`` (its track, source, gain, time keys...) with
        ``fields`` changed, refused as :meth:`update_clip` refuses them (so a part of a
        clip a peer broke may be kept as it is); the new clip's id."""
        fields = self._clip_write(clip_id, fields)
        copy_id = new_id("clip")
        self._roots["clips"][copy_id] = Map(
            {**self._clip_map(clip_id).to_py(), **fields, "id": copy_id})
        return copy_id

    def _clip_write(self, clip_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        """``fields`` for a write to ``clip_id``, checked; :class:`SchemaError` when a
        value is malformed or the write would stop the clip playing (:func:`_newly_broken`)."""
        unknown = set(fields) - CLIP_FIELDS
        if unknown:
            raise SchemaError(f"unknown clip field(s) {sorted(unknown)}; "
                              f"known: {sorted(CLIP_FIELDS)}")
        if "track" in fields:
            self._track_map(fields["track"])
        gain = fields.get("gain_db", 0.0)
        if not isinstance(gain, int | float) or isinstance(gain, bool):
            raise SchemaError(f"clip gain_db must be a number, got {gain!r}")
        for name in FRAME_FIELDS & set(fields):
            value = fields[name]
            if not isinstance(value, int) or value < 0 or (name == "length" and value == 0):
                kind = "positive" if name == "length" else "non-negative"
                raise SchemaError(f"clip {name} must be a {kind} whole number of frames, "
                                  f"got {value!r}")
        before = self._clip_map(clip_id).to_py()
        timed = bool(set(TIME_CLIP_FIELDS) & set(fields))
        if timed:
            parse_time_fields({**before, **fields})
        if "warp" in fields:
            fields = {**fields, "warp": [list(m) for m in fields["warp"]]}
        after = {**before, **fields}
        problem = _newly_broken(clip_id, before, after, timed=False)
        if problem is None and timed:
            problem = _newly_broken(clip_id, before, after, timed=True)
        if problem is not None:
            raise SchemaError(problem)
        return fields

    def remove_clip(self, clip_id: str) -> None:
        """Delete a clip (and its transcript)."""
        with self.transaction():
            self._clip_map(clip_id)
            del self._roots["clips"][clip_id]
            if clip_id in self._roots["transcripts"]:
                del self._roots["transcripts"][clip_id]

    # -- name, transport, markers, comments ---------------------------------------------

    def rename(self, name: str) -> None:
        """Set the project's name (``meta.name``); it must not be blank."""
        if not isinstance(name, str) or not name.strip():
            raise SchemaError(f"project name must be a non-empty string, got {name!r}")
        self._roots["meta"]["name"] = name.strip()

    def transport(self) -> dict[str, Any]:
        """Tempo, time signature, loop and play state."""
        return {**TRANSPORT_DEFAULTS, **(self._roots["transport"].to_py() or {})}

    def update_transport(self, **fields: Any) -> None:
        """Set transport fields (``tempo``, ``playing``, ``loop_start``...)."""
        unknown = set(fields) - set(TRANSPORT_DEFAULTS)
        if unknown:
            raise SchemaError(f"unknown transport field(s) {sorted(unknown)}; "
                              f"known: {sorted(TRANSPORT_DEFAULTS)}")
        for name, value in fields.items():
            _check_transport_value(name, value)
        with self.transaction():
            for name, value in fields.items():
                self._roots["transport"][name] = value

    def add_marker(self, position: int, name: str = "", colour: str = "") -> str:
        """Add a timeline marker; returns its id."""
        marker_id = new_id("marker")
        self._roots["markers"][marker_id] = Map(
            {"id": marker_id, "name": name, "position": int(position), "colour": colour})
        return marker_id

    def markers(self) -> list[dict[str, Any]]:
        """Markers by position."""
        return sorted((self._roots["markers"].to_py() or {}).values(), key=lambda m: m["position"])

    def update_marker(self, marker_id: str, *, name: str | None = None,
                      position: int | None = None) -> None:
        """Rename or move a marker."""
        marker = self._entry("markers", marker_id)
        with self.transaction():
            if name is not None:
                marker["name"] = str(name)
            if position is not None:
                marker["position"] = int(position)

    def remove_marker(self, marker_id: str) -> None:
        """Delete a marker."""
        self._entry("markers", marker_id)
        del self._roots["markers"][marker_id]

    def add_comment(self, author: str, text: str, *, track: str = "", position: int | None = None
                    ) -> str:
        """Add a comment (optionally pinned to a track and a timeline position)."""
        comment_id = new_id("comment")
        self._roots["comments"][comment_id] = Map({
            "id": comment_id, "author": author, "text": text, "created_at": time.time(),
            "track": track, "position": -1 if position is None else int(position),
        })
        return comment_id

    def comments(self) -> list[dict[str, Any]]:
        """Comments, oldest first."""
        rows = (self._roots["comments"].to_py() or {}).values()
        return sorted(rows, key=lambda c: c["created_at"])

    def update_comment(self, comment_id: str, text: str) -> None:
        """Replace a comment's text."""
        self._entry("comments", comment_id)["text"] = str(text)

    def remove_comment(self, comment_id: str) -> None:
        """Delete a comment."""
        self._entry("comments", comment_id)
        del self._roots["comments"][comment_id]

    # -- transcripts ---------------------------------------------------------------------

    def set_transcript(self, clip_id: str, transcript: Transcript) -> None:
        """Store (or replace) the transcript of a clip; its times count from the clip's start.

        ``duration`` is not stored: a clip's transcript lasts as long as the clip.  The
        clip's ``offset`` is, so that :meth:`transcript` still finds the words after a trim
        of the clip's start.
        """
        clip = self._clip_map(clip_id)
        data = transcript.to_dict()
        self._roots["transcripts"][clip_id] = Map({
            "clip": clip_id, "offset": int(clip.get("offset") or 0), "language": data["language"],
            "language_probability": data["language_probability"], "model": data["model"],
            "segments": Array(data["segments"]), "passages": Array(data["passages"]),
        })

    def transcript(self, clip_id: str) -> Transcript | None:
        """The transcript of a clip (times from its start, lasting as long as it), or None.

        Stored at another ``offset`` (the clip's start was trimmed since), its words move
        to the clip's start now and those no longer in the clip are left out.
        """
        stored = self._roots["transcripts"].get(clip_id)
        if stored is None:
            return None
        data = stored.to_py()
        clip = self._roots["clips"].get(clip_id)
        try:
            if clip is None:
                return Transcript.from_dict(data)
            length = clip["length"] / self.sample_rate
            found = Transcript.from_dict({**data, "duration": length})
            at = data.get("offset", clip["offset"])
            if isinstance(at, bool) or not isinstance(at, int | float):
                raise TranscriptDataError(f"transcript.offset must be a number, got {at!r}")
        except TranscriptDataError as exc:
            raise SchemaError(f"the transcript of clip {clip_id!r} is malformed: {exc}; "
                              "transcribe the clip again to replace it") from exc
        if at == clip["offset"]:
            return found
        return found.shifted((at - clip["offset"]) / self.sample_rate).within(0.0, length)

    # -- jobs ----------------------------------------------------------------------------

    def set_job(self, job_id: str, **fields: Any) -> None:
        """Create or update the shared state of a server job (``JOB_FIELDS``)."""
        unknown = set(fields) - set(JOB_FIELDS)
        if unknown:
            raise SchemaError(f"unknown job fields {sorted(unknown)}; known: {JOB_FIELDS}")
        jobs = self._roots["jobs"]
        with self.transaction():
            entry = jobs.get(job_id)
            if entry is None:
                jobs[job_id] = Map({"id": job_id, **fields, "updated_at": time.time()})
                return
            for name, value in fields.items():
                if entry.get(name) != value:
                    entry[name] = value
            entry["updated_at"] = time.time()

    def job(self, job_id: str) -> dict[str, Any] | None:
        """The shared state of a job, or None."""
        entry = self._roots["jobs"].get(job_id)
        return None if entry is None else entry.to_py()

    # -- internals -----------------------------------------------------------------------

    def _track_map(self, track_id: str) -> Map:
        track = self._roots["tracks"].get(track_id)
        if track is None:
            raise SchemaError(f"no track with id {track_id!r}")
        return track

    def _entry(self, root: str, entry_id: str) -> Map:
        entry = self._roots[root].get(entry_id)
        if entry is None:
            raise SchemaError(f"no {root[:-1]} with id {entry_id!r}")
        return entry

    def _clip_map(self, clip_id: str) -> Map:
        clip = self._roots["clips"].get(clip_id)
        if clip is None:
            raise SchemaError(f"no clip with id {clip_id!r}")
        return clip

    def _put_track(self, track: Track, order: float) -> None:
        self._roots["tracks"][track.id] = Map({
            "id": track.id, "name": track.name or track.id, "order": order,
            "colour": PALETTE[int(order) % len(PALETTE)], "channels": track.channels,
            "gain_db": track.gain_db, "pan": track.pan, "mute": track.mute, "solo": track.solo,
            "arm": False,
            "effects": Array([_effect_map(e, i) for i, e in enumerate(track.effects)]),
            "sends": Map({s.bus: Map({"level_db": s.level_db, "pre_fader": s.pre_fader})
                          for s in track.sends}),
            "automation": lanes.new_lanes(track.automation),
        })
        for index, clip in enumerate(track.clips):
            clip_id = clip.id or f"{track.id}-clip{index}"
            self._roots["clips"][clip_id] = self._clip_prelim(track.id, clip, clip_id)
        self._put_midi(track)
        self._put_immersive(track)

    def _put_bus(self, bus: Bus) -> None:
        self._roots["buses"][bus.id] = Map({
            "id": bus.id, "name": bus.name or bus.id, "gain_db": bus.gain_db, "pan": bus.pan,
            "effects": Array([_effect_map(e, i) for i, e in enumerate(bus.effects)]),
            "automation": lanes.new_lanes(bus.automation, track=False),
        })

    @staticmethod
    def _clip_prelim(track_id: str, clip: Clip, clip_id: str) -> Map:
        return Map({
            "id": clip_id, "track": track_id, "source": clip.source, "position": clip.position,
            "offset": clip.offset, "length": clip.length, "gain_db": clip.gain_db,
            "fade_in": clip.fade_in, "fade_out": clip.fade_out, **clip_time_json(clip),
        })
