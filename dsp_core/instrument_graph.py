"""A MIDI track's instrument in the render graph (``daw_instrument``).

Both backends share these arrays: the C engine (``native/instruments.c``) points its
struct at them, the twin (:mod:`dsp_core.reference_instruments`) works on them directly.

Layouts (float64 unless noted; the C enums in instruments.c name the same slots):

- ``params`` (``DAW_INST_PARAMS``): gain (linear), bend range (semitones), amp attack,
  decay (frames), sustain, release (frames), osc1, osc2 (wave index), osc2 detune
  (frequency ratio), osc mix, cutoff (Hz), Q, filter envelope depth (octaves), filter
  attack, decay (frames), sustain, release (frames), then the reciprocals of the six
  envelope times (0 where a time is 0: the envelopes multiply, never divide);
- ``voices`` (n_voices x ``DAW_VOICE_SLOTS``): active, key, channel, velocity (0..1),
  note-on frame, release frame (-1 while held), amp and filter levels at release, two
  oscillator phases, filter memory z1 z2, filter coefficients b0 b1 b2 a1 a2, sampler
  zone, sample position, held by the sustain pedal, serial (age, for voice stealing);
- ``state`` (``DAW_INST_STATE``): the frame after the last block (-1: seek first), the
  event cursor, the next serial, per channel pitch bend (semitones), volume (gain) and
  sustain pedal (0/1), then note chase off (1: a seek starts no note that began before
  it, the project's ``chase_notes`` is false; controllers are chased all the same);
- ``events``: a structured array of (frame int64, kind int32, channel int32, key int32,
  value int32) sorted by frame; at one frame controllers come first, then note-offs,
  then note-ons.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .midi import INSTRUMENT_PARAMS, WAVES, Instrument, MidiClip
from .session import Track, db_to_linear

INST_PARAMS = 24  # DAW_INST_PARAMS (tests/test_engine_header.py)
VOICE_SLOTS = 24  # DAW_VOICE_SLOTS
INST_STATE = 64  # DAW_INST_STATE
#: ``state`` slot: 1 turns note chase off (DAW_INST_NO_CHASE)
S_NO_CHASE = 3 + 3 * 16
SYNTH, SAMPLER = 1, 2  # DAW_INST_SYNTH, DAW_INST_SAMPLER
NOTE_ON, NOTE_OFF, CC, BEND = 1, 2, 3, 4  # DAW_MIDI_*
KINDS = {"synth": SYNTH, "sampler": SAMPLER}

EVENT_DTYPE = np.dtype([("frame", np.int64), ("kind", np.int32), ("channel", np.int32),
                        ("key", np.int32), ("value", np.int32)])
#: Order of events at one frame: controllers, then note-offs, then note-ons.
_PRIORITY = {CC: 0, BEND: 0, NOTE_OFF: 1, NOTE_ON: 2}


@dataclass
class ZoneState:
    """A sampler zone: its sample (mono, render rate) and where it plays."""

    data: np.ndarray  # float32 (frames,), C-contiguous
    root: int
    key_lo: int
    key_hi: int
    vel_lo: int
    vel_hi: int


@dataclass
class InstrumentState:
    """One MIDI track's instrument: events, parameters, voices and controller state."""

    kind: int
    events: np.ndarray
    params: np.ndarray
    voices: np.ndarray
    state: np.ndarray
    scratch: np.ndarray  # float32 (max_block,)
    zones: list[ZoneState] = field(default_factory=list)


def instrument_params(instrument: Instrument, sample_rate: float) -> np.ndarray:
    """The derived parameter array the C engine and the twin read."""
    v = instrument.value
    frames = sample_rate / 1000.0
    p = np.zeros(INST_PARAMS, dtype=np.float64)
    p[:17] = (
        db_to_linear(v("gain_db")), v("bend_range"),
        v("attack_ms") * frames, v("decay_ms") * frames, v("sustain"), v("release_ms") * frames,
        v("osc1"), v("osc2"), 2.0 ** (v("osc2_detune") / 1200.0), v("osc_mix"),
        v("cutoff_hz"), 0.5 + 19.5 * v("resonance") ** 2, v("filter_env"),
        v("filter_attack_ms") * frames, v("filter_decay_ms") * frames, v("filter_sustain"),
        v("filter_release_ms") * frames,
    )
    for i, time in enumerate((2, 3, 5, 13, 14, 16)):  # reciprocals of the times (0 for 0)
        p[17 + i] = 1.0 / p[time] if p[time] > 0.0 else 0.0
    return p


def midi_events(clips: list[MidiClip], ratio: float, tempo: Any = None,
                session_rate: int = 0) -> np.ndarray:
    """Every note and controller of ``clips`` as render-frame events, sorted.

    A note that starts at or after its clip's end is left out; one that runs past the end
    is released there.  Session frames become render frames by ``ratio``.  A clip that
    follows the tempo has its frames mapped through ``tempo`` (the session's
    :class:`~dsp_core.tempo.TempoMap`, at ``session_rate``) first.
    """
    rows: list[tuple[int, int, int, int, int]] = []

    def at(frame: int) -> int:
        return int(round(frame * ratio))

    for clip in clips:
        if clip.follow_tempo and tempo is not None:
            def mapped(frame: int, clip: MidiClip = clip) -> int:
                return clip.tempo_frame(frame, tempo, session_rate)
        else:
            def mapped(frame: int) -> int:
                return frame
        for note in clip.notes:
            start = mapped(note.start)
            if start >= clip.length:
                continue
            end = clip.position + min(mapped(note.end), clip.length)
            rows.append((at(clip.position + start), NOTE_ON, note.channel, note.pitch,
                         note.velocity))
            rows.append((at(end), NOTE_OFF, note.channel, note.pitch, 0))
        for event in clip.controls:
            frame = mapped(event.frame)
            if frame >= clip.length:
                continue
            kind = CC if event.kind == "cc" else BEND
            rows.append((at(clip.position + frame), kind, event.channel, event.number,
                         event.value))
    rows.sort(key=lambda r: (r[0], _PRIORITY[r[1]]))
    return np.array(rows, dtype=EVENT_DTYPE) if rows else np.zeros(0, dtype=EVENT_DTYPE)


def chased_notes(events: np.ndarray, start: int) -> np.ndarray:
    """The note-ons a seek to ``start`` plays again there (MIDI note chase): the notes of
    :func:`chase`, whether held by the pedal or not."""
    return chase(events, start)[0]


def chase(events: np.ndarray, start: int) -> tuple[np.ndarray, np.ndarray]:
    """The notes a seek to ``start`` starts again there, and which of them the sustain
    pedal holds (twin of the C ``chase_notes``).

    A note sounds across ``start`` when its note-on comes before it and its note-off
    after it.  Note-offs pair with the note-ons of their channel and key first in, first
    out, so of each key's note-ons before ``start`` the last ones, as many as are not
    ended by ``start``, are chased.  A note whose note-off came while the sustain pedal
    (CC 64 >= 64) of its channel was down, and the pedal is still down at ``start``,
    sounds too (as in playback): it is chased held by the pedal, to be released when the
    pedal goes up.  Returns those note-ons in event order with their frame moved to
    ``start``, and a boolean array marking the ones the pedal holds.
    """
    upto = events[:int(np.searchsorted(events["frame"], start, side="right"))]
    down = _pedal_down_since(upto)
    ended: dict[tuple[int, int], int] = {}
    late: dict[tuple[int, int], int] = {}
    for i in np.flatnonzero(upto["kind"] == NOTE_OFF):
        key = (int(upto[i]["channel"]) & 15, int(upto[i]["key"]))
        ended[key] = ended.get(key, 0) + 1
        if i > down.get(key[0], len(upto)):
            late[key] = late.get(key, 0) + 1
    seen: dict[tuple[int, int], int] = {}
    keep, held = [], []
    for i in np.flatnonzero((upto["kind"] == NOTE_ON) & (upto["frame"] < start)):
        key = (int(upto[i]["channel"]) & 15, int(upto[i]["key"]))
        rank = seen.get(key, 0)
        seen[key] = rank + 1
        if rank >= ended.get(key, 0) - late.get(key, 0) and 0 <= key[1] < 128:
            keep.append(i)
            held.append(rank < ended.get(key, 0))
    chased = upto[keep].copy()
    chased["frame"] = start
    return chased, np.array(held, dtype=bool)


def _pedal_down_since(events: np.ndarray) -> dict[int, int]:
    """Per channel whose sustain pedal is down after ``events``, the index of the CC 64
    that put it down."""
    down: dict[int, int] = {}
    for i in np.flatnonzero((events["kind"] == CC) & (events["key"] == 64)):
        channel = int(events[i]["channel"]) & 15
        if events[i]["value"] < 64:
            down.pop(channel, None)
        else:
            down.setdefault(channel, int(i))
    return down


def build_instrument(track: Track, ratio: float, sample_rate: int, max_block: int,
                     load: Callable[[str, int], np.ndarray], tempo: Any = None,
                     session_rate: int = 0) -> InstrumentState | None:
    """The instrument state of ``track``, or None when it has no instrument (or one the C
    engine does not play: a ``soundfont``, :mod:`dsp_core.soundfont`)."""
    instrument = track.instrument
    if instrument is None or instrument.kind not in KINDS:
        return None
    zones = []
    if instrument.kind == "sampler":
        for zone in instrument.zones:
            data = load(zone.source, sample_rate)
            mono = data.mean(axis=0, dtype=np.float32) if data.shape[0] > 1 else data[0]
            zones.append(ZoneState(np.ascontiguousarray(mono, dtype=np.float32), zone.root,
                                   zone.key_lo, zone.key_hi, zone.vel_lo, zone.vel_hi))
    state = np.zeros(INST_STATE, dtype=np.float64)
    state[0] = -1.0
    return InstrumentState(
        kind=KINDS[instrument.kind],
        events=midi_events(track.midi_clips, ratio, tempo, session_rate),
        params=instrument_params(instrument, sample_rate),
        voices=np.zeros((int(instrument.value("voices")), VOICE_SLOTS), dtype=np.float64),
        state=state,
        scratch=np.zeros(max_block, dtype=np.float32),
        zones=zones,
    )


def instrument_structure(track: Track) -> tuple:
    """What a track's instrument state is built from: a change rebuilds it.

    Each clip's part is computed once per :class:`MidiClip` object (:func:`clip_structure`),
    so an apply after one clip changed sorts that clip's notes only.
    """
    if track.instrument is None:
        return ()
    inst = track.instrument
    return (inst.kind, tuple(sorted((k, str(v)) for k, v in inst.params.items())),
            tuple((z.source, z.root, z.key_lo, z.key_hi, z.vel_lo, z.vel_hi)
                  for z in inst.zones),
            tuple(clip_structure(c)
                  for c in sorted(track.midi_clips, key=lambda c: (c.position, c.id))))


#: id(clip) -> (weak reference, fingerprint, key): the memo of :func:`clip_structure`.
_CLIP_KEYS: dict[int, tuple[weakref.ref, tuple, tuple]] = {}


def _fingerprint(clip: MidiClip) -> tuple:
    return (clip.position, clip.length, id(clip.notes), len(clip.notes), id(clip.controls),
            len(clip.controls), clip.follow_tempo, clip.source_bpm)


def _clip_key(clip: MidiClip) -> tuple:
    return (clip.position, clip.length,
            tuple(sorted((n.pitch, n.velocity, n.start, n.length, n.channel)
                         for n in clip.notes)),
            tuple(sorted((e.kind, e.frame, e.value, e.number, e.channel)
                         for e in clip.controls)), clip.follow_tempo, clip.source_bpm)


def clip_structure(clip: MidiClip) -> tuple:
    """One clip's part of :func:`instrument_structure`, kept while the object lives.

    The document hands the engine a new :class:`MidiClip` for each clip that changed and
    the same object for the rest (:meth:`collab.midi.MidiEdits`), so only changed clips are
    sorted again.  A clip edited in place is seen when its position, length or note or
    event lists (object or count) change; other in-place edits must use a copy (as
    ``copy.deepcopy`` of a session does).
    """
    memo = _CLIP_KEYS.get(id(clip))
    fingerprint = _fingerprint(clip)
    if memo is not None and memo[0]() is clip and memo[1] == fingerprint:
        return memo[2]
    key = _clip_key(clip)
    ident = id(clip)
    _CLIP_KEYS[ident] = (weakref.ref(clip, lambda _ref: _CLIP_KEYS.pop(ident, None)),
                         fingerprint, key)
    return key


def same_sound(old: tuple, new: tuple) -> bool:
    """Whether two :func:`instrument_structure` keys play with the same voices: the same
    kind, voice count and zones (parameters and clips may differ)."""
    if not old or not new:
        return False
    default = str(INSTRUMENT_PARAMS["voices"][0])
    voices = [float(dict(key[1]).get("voices", default)) for key in (old, new)]
    return old[0] == new[0] and old[2] == new[2] and voices[0] == voices[1]


__all__ = ["S_NO_CHASE", "WAVES", "InstrumentState", "ZoneState", "build_instrument", "chase",
           "chased_notes", "clip_structure",
           "instrument_params", "instrument_structure", "midi_events"]
