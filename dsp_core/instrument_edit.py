"""Live edits of a MIDI track: the new instrument state carries on the old one's voices.

An edit of a MIDI clip rebuilds the track's :class:`InstrumentState` (a new event list).
Without this, the rebuilt state would start with a seek and cut every sounding note,
including notes nobody touched, each time a collaborator edits the clip.
:func:`carry_voices` hands the sounding voices, controller state and the position over,
and releases the voices whose notes the edit removed (or moved away from the playhead).
"""

from __future__ import annotations

import numpy as np

from .instrument_graph import NOTE_OFF, NOTE_ON, InstrumentState
from .reference_instruments import (
    S_CURSOR,
    S_NEXT,
    V_ACTIVE,
    V_CH,
    V_HELD,
    V_KEY,
    V_OFF,
    release_voice,
)


def _sounding(events: np.ndarray, frame: int) -> set[tuple[int, int]]:
    """(channel, key) of the notes of ``events`` that are on at ``frame``."""
    count: dict[tuple[int, int], int] = {}
    for e in events[events["frame"] < frame]:
        key = (int(e["channel"]), int(e["key"]))
        if e["kind"] == NOTE_ON:
            count[key] = count.get(key, 0) + 1
        elif e["kind"] == NOTE_OFF and count.get(key):
            count[key] -= 1
    return {k for k, n in count.items() if n > 0}


def carry_voices(old: InstrumentState | None, new: InstrumentState | None,
                 same_sound: bool) -> None:
    """Continue ``old``'s playback in ``new`` (in place) when both play the same sound
    (kind, voice count and sampler zones: ``same_sound``); otherwise ``new`` starts with a
    seek as usual."""
    if old is None or new is None or not same_sound or old.kind != new.kind:
        return
    if old.voices.shape != new.voices.shape or old.state[S_NEXT] < 0:
        return
    frame = int(old.state[S_NEXT])
    new.voices[:] = old.voices
    new.state[:] = old.state
    new.state[S_CURSOR] = int(np.searchsorted(new.events["frame"], frame, side="left"))
    sounding = _sounding(new.events, frame)
    for v in new.voices:
        if (v[V_ACTIVE] != 0.0 and v[V_OFF] < 0.0 and v[V_HELD] == 0.0
                and (int(v[V_CH]), int(v[V_KEY])) not in sounding):
            release_voice(new, v, float(frame))
