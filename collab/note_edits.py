"""Note edits of a MIDI clip as document writes: quantise, transpose, velocity.

Each edit runs in one transaction (one update on the wire) and writes only the fields it
changes, so a peer editing other fields of the same notes at once keeps its edit.  Every
selected note is checked before the first write: a note a peer wrote out of range (say
``channel: 99``) refuses the edit with a SchemaError naming it, and nothing is written.
``note_ids`` limits an edit to some notes (None: every note of the clip).
"""

from __future__ import annotations

import math
from collections.abc import Collection
from typing import TYPE_CHECKING

from dsp_core.errors import ProjectError
from dsp_core.midi import validate_note

from .errors import SchemaError

if TYPE_CHECKING:
    from dsp_core.tempo import TempoMap

    from .schema import ProjectDocument

#: Grid divisions a quantise accepts (a whole note divided by this: 16 = sixteenths).
DIVISIONS = (1, 2, 4, 8, 16, 32, 64, 3, 6, 12, 24, 48)


def grid_beats(division: int) -> float:
    """Quarter-note beats between grid lines of ``1/division`` notes (4 / division)."""
    if division not in DIVISIONS:
        raise SchemaError(f"grid division {division!r} is not one of "
                          f"{', '.join(map(str, DIVISIONS))} (16 = sixteenth notes)")
    return 4.0 / division


def _selected(project: ProjectDocument, clip_id: str, note_ids: Collection[str] | None):
    notes = project.notes(clip_id)
    if note_ids is not None:
        missing = sorted(set(note_ids) - set(notes))
        if missing:
            raise SchemaError(f"MIDI clip {clip_id!r} has no note(s) {', '.join(missing)}")
        notes = {k: notes[k] for k in note_ids}
    for note_id, note in notes.items():
        try:
            validate_note(note, f"note {note_id!r}")
        except ProjectError as exc:
            raise SchemaError(f"{exc}; fix or delete that note first (nothing was "
                              "changed)") from exc
    return notes


def quantize(project: ProjectDocument, clip_id: str, division: int = 16,
             strength: float = 1.0, note_ids: Collection[str] | None = None) -> int:
    """Move note starts toward the project's grid: ``1/division`` notes counted from
    each bar line (so an odd meter's bar, 7/8 on a quarter grid, starts on the grid), in
    time through the document's tempo map (the grid follows tempo changes); ``strength``
    0..1 is how far.  Returns how many notes moved."""
    if not 0.0 <= strength <= 1.0:
        raise SchemaError(f"quantise strength {strength!r} must be in [0, 1]")
    step = grid_beats(division)
    tempo, rate = project.tempo_map(), project.sample_rate
    position = project.midi_clip(clip_id).position
    changes = {}
    for note_id, note in _selected(project, clip_id, note_ids).items():
        at = position + note.start
        target = tempo.beat_to_frame(_nearest_line(tempo, tempo.frame_to_beat(at, rate), step),
                                     rate)
        start = max(0, round(at + (target - at) * strength) - position)
        if start != note.start:
            changes[note_id] = {"start": start}
    project.update_notes(clip_id, changes)
    return len(changes)


def _nearest_line(tempo: TempoMap, beat: float, step: float) -> float:
    """The grid line nearest quarter-note ``beat`` (halves go later): lines every ``step``
    beats from the start of its bar, and the next bar's line."""
    bar = tempo.beat_to_bar_beat(beat).bar - 1  # 0-based
    start, end = tempo.bar_to_beat(bar), tempo.bar_to_beat(bar + 1)
    lower = start + math.floor((beat - start) / step + 1e-9) * step
    upper = min(lower + step, end)
    return upper if beat - lower >= upper - beat else lower


def transpose(project: ProjectDocument, clip_id: str, semitones: int,
              note_ids: Collection[str] | None = None) -> int:
    """Shift pitches by ``semitones``; refused (nothing changed) when a note would leave
    0..127.  Returns how many notes changed."""
    if isinstance(semitones, bool) or not isinstance(semitones, int):
        raise SchemaError(f"transpose by a whole number of semitones, got {semitones!r}")
    notes = _selected(project, clip_id, note_ids)
    for note_id, note in notes.items():
        if not 0 <= note.pitch + semitones <= 127:
            raise SchemaError(f"transposing note {note_id!r} (pitch {note.pitch}) by "
                              f"{semitones} leaves 0..127; choose a smaller shift")
    if semitones:
        project.update_notes(clip_id, {note_id: {"pitch": note.pitch + semitones}
                                       for note_id, note in notes.items()})
    return len(notes) if semitones else 0


def edit_velocity(project: ProjectDocument, clip_id: str, scale: float = 1.0,
                  offset: int = 0, note_ids: Collection[str] | None = None) -> int:
    """Set each velocity to ``round(velocity * scale + offset)``, kept inside 1..127.
    Returns how many notes changed."""
    if not 0.0 <= scale <= 10.0:
        raise SchemaError(f"velocity scale {scale!r} must be in [0, 10]")
    if not -127 <= offset <= 127:
        raise SchemaError(f"velocity offset {offset!r} must be in [-127, 127]")
    changes = {}
    for note_id, note in _selected(project, clip_id, note_ids).items():
        velocity = min(127, max(1, round(note.velocity * scale + offset)))
        if velocity != note.velocity:
            changes[note_id] = {"velocity": velocity}
    project.update_notes(clip_id, changes)
    return len(changes)
