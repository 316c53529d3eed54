"""A track's MIDI events sent block by block to an LV2 plug-in's MIDI input.

One :class:`MidiFeed` per plug-in that takes a MIDI track's events: the track's ``lv2``
instrument (:mod:`dsp_core.lv2_instrument`) and every ``lv2`` effect with a MIDI input in
the track's chain (:mod:`dsp_core.lv2_chain`, x42's fat1 autotune, LSP's samplers and
MIDI triggers).  Both get the same events (:func:`dsp_core.instrument_graph.midi_events`,
render frames) at their frames inside each block, run in pieces of at most
:data:`~dsp_core.lv2_layout.MAX_EVENTS` events, and the same handling of a seek (a
transport stop ends in one): first :meth:`MidiFeed.silence` (note-offs of the notes it
holds, sustain pedal up, All Notes Off and All Sound Off on every channel), then the note
chase (:func:`dsp_core.instrument_graph.chase`).

The feed counts frames in its plug-in's own time: for an instrument the timeline frame
plus the plug-in's latency (its notes go early), for an effect the timeline frame of the
audio the effect receives (see :mod:`dsp_core.lv2_chain`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import numpy as np

from .instrument_graph import BEND, CC, NOTE_OFF, NOTE_ON, chase
from .lv2_layout import MAX_EVENTS, pack_midi

log = logging.getLogger(__name__)

_STATUS = np.zeros(8, dtype=np.uint32)
_STATUS[[NOTE_ON, NOTE_OFF, CC, BEND]] = (0x90, 0x80, 0xB0, 0xE0)

#: The controllers (value 0) :meth:`MidiFeed.silence` sends on every channel, in order:
#: sustain pedal up (CC 64), All Notes Off (CC 123), All Sound Off (CC 120).
SILENCING = (64, 123, 120)

#: A piece of a block: its first frame, the frame after it (both counted from the
#: block's first), and its events as packed words (None: no event).
Piece = tuple[int, int, "np.ndarray | None"]


def midi_words(events: np.ndarray, start: int) -> np.ndarray:
    """Engine events (:data:`dsp_core.instrument_graph.EVENT_DTYPE`) as the packed words
    of :func:`dsp_core.lv2_layout.pack_midi`, at frames counted from ``start``."""
    kind = events["kind"].astype(np.intp)
    status = _STATUS[kind] | (events["channel"].astype(np.uint32) & 0x0F)
    value = events["value"].astype(np.int64)
    bend = kind == BEND
    off = kind == NOTE_OFF
    data1 = np.where(bend, (value + 8192) & 0x7F, events["key"])
    data2 = np.where(bend, (value + 8192) >> 7, np.where(off, 0, value))
    return pack_midi(events["frame"] - start, status, data1, data2)


class MidiFeed:
    """The events one plug-in plays, the next one to send and the notes it holds.

    Parameters
    ----------
    events : numpy.ndarray
        The track's events in render frames, sorted (as written: a seek adds the chased
        note-ons to :attr:`events`, never to these).
    owner : str
        Who plays them, for the log ("lv2 instrument on track 'keys'").
    """

    def __init__(self, events: np.ndarray, owner: str) -> None:
        self._written = self._events = events
        self.owner = owner
        self.next = -1  # the frame after the last block (-1: the next block seeks)
        self.cursor = 0  # the first event not sent yet
        self.held: set[tuple[int, int]] = set()  # (channel, key) sounding
        #: False (the project's ``chase_notes``): a seek chases controllers, never notes
        self.chase_notes = True

    @property
    def events(self) -> np.ndarray:
        """What plays: the events as written, after a seek with the chased ones."""
        return self._events

    @events.setter
    def events(self, events: np.ndarray) -> None:
        self._written = self._events = events

    # ------------------------------------------------------------ seeks

    def seek(self, at: int, inline: bool = False) -> np.ndarray:
        """Play from frame ``at``: the notes sounding across it are chased (note-ons at
        ``at``, ahead of its own events; those the sustain pedal holds get their note-off
        right after, so the pedal, chased with the controllers, holds them).  Returns the
        controllers and bends before ``at`` (the last ``MAX_EVENTS``, framed at ``at``)
        for the caller to send first.

        ``inline`` (a plug-in that is not reset on a seek: an effect): :meth:`silence`,
        then those controllers, are put ahead of the chased note-ons in :attr:`events`
        instead (at the same frame, in that order), and nothing is returned.  Otherwise
        the caller sends :meth:`silence` first.
        """
        written = self._written
        self.cursor = int(np.searchsorted(written["frame"], at, side="left"))
        before = written[:self.cursor]
        controls = before[(before["kind"] == CC) | (before["kind"] == BEND)][-MAX_EVENTS:].copy()
        controls["frame"] = at
        notes, pedalled = chase(written, at)
        if not self.chase_notes:  # the project turned note chase off
            notes, pedalled = notes[:0], pedalled[:0]
        offs = notes[pedalled].copy()  # ended under the pedal still down: it holds them
        offs["kind"], offs["value"] = NOTE_OFF, 0
        lead = [notes, offs]
        if inline:
            silence = self.silence(at)  # (the controllers leave the chased notes room)
            room = max(MAX_EVENTS - silence.shape[0] - notes.shape[0] - offs.shape[0], 0)
            lead[:0] = [silence, controls[max(controls.shape[0] - room, 0):]]
            controls = controls[:0]
        self.held.clear()
        added = np.concatenate(lead)
        self._events = written if not added.shape[0] else np.concatenate(
            [before, added, written[self.cursor:]])
        return controls

    def silence(self, at: int) -> np.ndarray:
        """Events at ``at`` that stop whatever the plug-in sounds, as a DAW sends on a
        seek or stop: a note-off for each note held now, then on all 16 channels the
        sustain pedal up, All Notes Off and All Sound Off (:data:`SILENCING`: the notes
        the pedal holds, and voices a plug-in keeps over a reset, as LSP's samplers do).
        The held notes are forgotten."""
        offs = self._releases(at)
        self.held.clear()
        controls = np.zeros(16 * len(SILENCING), dtype=self._written.dtype)
        controls["frame"], controls["kind"] = at, CC
        controls["channel"] = np.repeat(np.arange(16), len(SILENCING))
        controls["key"] = np.tile(SILENCING, 16)
        return np.concatenate([offs, controls])

    def _releases(self, at: int) -> np.ndarray:
        """Note-offs at ``at`` for the notes held now."""
        held = sorted(self.held)
        offs = np.zeros(len(held), dtype=self._written.dtype)
        offs["kind"], offs["frame"] = NOTE_OFF, at
        offs["channel"] = [c for c, _ in held]
        offs["key"] = [k for _, k in held]
        return offs

    # ------------------------------------------------------------ blocks

    def count(self, at: int, frames: int) -> int:
        """Events of [at, at + frames) not sent yet."""
        events, first = self._events, self.cursor
        if first >= events.shape[0] or events["frame"][first] >= at + frames:
            return 0  # most blocks: no event
        return int(np.searchsorted(events["frame"][first:], at + frames, side="left"))

    def pieces(self, at: int, frames: int) -> Iterator[Piece]:
        """Split the block [at, at + frames) where more than ``MAX_EVENTS`` events would
        go in one run; yield each piece with its events (sent, and their notes counted
        as held, as each piece is yielded).  Over ``MAX_EVENTS`` events at one frame: the
        rest are dropped, with a warning."""
        events = self._events
        stop = self.cursor + self.count(at, frames)
        done = 0
        while done < frames:
            first = self.cursor
            last = min(stop, first + MAX_EVENTS)
            upto = frames
            if last < stop:  # the piece ends before the frame of the first event left out
                edge = int(events["frame"][last])
                upto = edge - at
                if upto > done:  # (its events at that frame wait for the next piece)
                    last = first + int(np.searchsorted(events["frame"][first:last], edge,
                                                       side="left"))
            skip = last
            if upto <= done:
                log.warning("%s: over %d MIDI events at frame %d; the rest are dropped",
                            self.owner, MAX_EVENTS, at + done)
                upto = done + 1
                skip = first + int(np.searchsorted(events["frame"][first:stop], at + done,
                                                   side="right"))
            words = None
            if last > first:
                piece = events[first:last]
                self.mark(piece)
                words = midi_words(piece, at + done)
            self.cursor = skip
            yield done, upto, words
            done = upto

    def mark(self, piece: np.ndarray) -> None:
        """Count the notes ``piece`` starts and ends in :attr:`held`."""
        for event in piece[(piece["kind"] == NOTE_ON) | (piece["kind"] == NOTE_OFF)]:
            note = (int(event["channel"]), int(event["key"]))
            if event["kind"] == NOTE_ON:
                self.held.add(note)
            else:
                self.held.discard(note)

    # ------------------------------------------------------------ edits

    def take_over(self, old: MidiFeed) -> None:
        """Carry on where ``old`` (the same plug-in, before an edit of the track's notes)
        was: the notes it holds that the new events no longer end are released at once,
        the others play on."""
        self.next, self.held = old.next, set(old.held)
        if self.next < 0:
            return
        at = self.next
        self.cursor = int(np.searchsorted(self._events["frame"], at, side="left"))
        later = self._events[self.cursor:]
        ends = {(int(e["channel"]), int(e["key"])) for e in later[later["kind"] == NOTE_OFF]}
        orphans = self.held - ends
        if orphans:
            self.held = orphans
            offs = self._releases(at)
            self.events = np.concatenate([self._events[:self.cursor], offs, later])
            self.held = set(old.held) - orphans


__all__ = ["SILENCING", "MidiFeed", "Piece", "midi_words"]
