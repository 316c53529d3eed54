"""An LV2 instrument playing a MIDI track: the plug-in in its worker, fed the track's
notes and controllers block by block.

:class:`PluginInstrument` is the track's source in the block render path, like a
``soundfont`` instrument (:mod:`dsp_core.soundfont`): the engine asks it for each block
before the C call (:meth:`fill`) and the C engine reads its buffer as the track's first
clip, so the track's chain (built-in and ``lv2`` effects), fader, sends and automation
apply as to any source.  The events are those the built-in instruments play
(:func:`dsp_core.instrument_graph.midi_events`, render frames), each sent at its frame
inside the block as a ``midi:MidiEvent`` of the plug-in's MIDI input
(:mod:`dsp_core.lv2_worker` builds the ``atom:Sequence``).

**Latency.** A plug-in that reports latency ``L`` gets every event ``L`` frames early
(the notes are known ahead), so its output lines up with the timeline without delaying
the rest of the mix.  **Seeks.** A block that does not follow the last one resets the
plug-in (deactivate, activate), sends the controllers and bends before the block, then
every note sounding across the seek point as a note-on at its first frame (note chase,
as the built-in instruments), and pre-rolls ``L`` frames: the chased notes go at the
pre-roll's first frame, so they are heard from the seek point.  A plug-in that fails is
silent, listed in :meth:`dsp_core.engine.Engine.plugin_errors` with effect
``instrument``.
"""

from __future__ import annotations

import logging

import numpy as np

from .instrument_graph import BEND, CC, NOTE_OFF, NOTE_ON, chased_notes
from .lv2_chain import PluginError
from .lv2_host import HostedPlugin
from .lv2_layout import MAX_EVENTS, pack_midi
from .midi import Instrument

log = logging.getLogger(__name__)

#: The ``effect`` an instrument's failure is listed under in ``plugin_errors()``.
OWNER_EFFECT = "instrument"
_STATUS = np.zeros(8, dtype=np.uint32)
_STATUS[[NOTE_ON, NOTE_OFF, CC, BEND]] = (0x90, 0x80, 0xB0, 0xE0)


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


class PluginInstrument:
    """One MIDI track's ``lv2`` instrument, rendered ahead of the C call.

    Parameters
    ----------
    track : str
        The track's id (for :meth:`errors`).
    instrument : Instrument
        Kind ``lv2``: ``params`` holds ``uri``, control values by symbol and ``state``.
    events : numpy.ndarray
        The track's events in render frames, sorted.
    sample_rate, max_block, channels : int
        Render rate, largest block, the track's channels.
    plugin : HostedPlugin, optional
        A running worker of the same plug-in to keep (an edit of the track's notes).
    """

    def __init__(self, track: str, instrument: Instrument, events: np.ndarray,
                 sample_rate: int, max_block: int, channels: int,
                 plugin: HostedPlugin | None = None) -> None:
        self.track = track
        self.instrument = instrument
        self._written = self._events = events
        self.plugin = plugin if plugin is not None else HostedPlugin(
            dict(instrument.params), channels, sample_rate, max_block, instrument=True)
        if plugin is not None and plugin.params != instrument.params:
            plugin.set_params(dict(instrument.params))
        self.buffer = np.zeros((channels, max_block), dtype=np.float32)
        self._next = -1  # the frame after the last block (-1: the next block seeks)
        self._cursor = 0  # the first event not sent yet
        self._held: set[tuple[int, int]] = set()  # (channel, key) sounding
        self._pending: tuple[int, int] | None = None  # a dispatched block (start, frames)

    @property
    def events(self) -> np.ndarray:
        """The track's events in render frames, sorted: what plays (after a seek, with the
        chased note-ons at the seek point)."""
        return self._events

    @events.setter
    def events(self, events: np.ndarray) -> None:
        self._written = self._events = events

    # ------------------------------------------------------------ rendering

    def dispatch(self, start: int, frames: int) -> None:
        """Hand the worker the block [start, start + frames) and return at once, when it
        is one run (no seek, at most ``MAX_EVENTS`` events): the engine dispatches every
        instrument's block first, so the workers run at the same time, then :meth:`fill`
        collects each."""
        if start != self._next or self._pending is not None:
            return
        events, at = self.events, start + self.plugin.latency
        first = self._cursor
        stop = first + int(np.searchsorted(events["frame"][first:], at + frames,
                                           side="left")) if first < events.shape[0] else first
        if stop - first > MAX_EVENTS:
            return
        self.buffer[:, :frames] = 0.0
        words = None
        if stop > first:
            self._track_notes(events[first:stop])
            words = midi_words(events[first:stop], at)
        self.plugin.start(self.buffer, frames, words)
        self._cursor = stop
        self._pending = (start, frames)

    def fill(self, start: int, frames: int) -> None:
        """Render timeline frames [start, start + frames) into :attr:`buffer` (collect the
        block :meth:`dispatch` handed over, if it did)."""
        if self._pending is not None:
            pending, self._pending = self._pending, None
            self.plugin.finish(self.buffer, pending[1])
            if pending == (start, frames):
                self._next = start + frames
                return
            self._next = -1  # (another block was asked for: play it afresh)
        lead = self.plugin.latency
        if start != self._next:
            self._seek(start, lead)
        self._play(start + lead, frames, self.buffer)
        self._next = start + frames

    def _seek(self, start: int, lead: int) -> None:
        """Reset the plug-in, chase controllers and bends, then the notes sounding across
        ``start`` (note-ons at ``start``, ahead of its own events), pre-roll its latency."""
        self.plugin.reset()
        self._held.clear()
        written = self._written  # (without the notes an earlier seek chased)
        self._cursor = int(np.searchsorted(written["frame"], start, side="left"))
        notes = chased_notes(written, start)
        self._events = written if not notes.shape[0] else np.concatenate(
            [written[:self._cursor], notes, written[self._cursor:]])
        before = written[:self._cursor]
        chased = before[(before["kind"] == CC) | (before["kind"] == BEND)]
        scratch = np.zeros_like(self.buffer)
        if chased.shape[0]:
            chased = chased[-MAX_EVENTS:].copy()
            chased["frame"] = 0
            self.plugin.process(scratch, 1, midi_words(chased, 0))
        position = start
        while position < start + lead:  # the events of [start, start + lead) go early
            count = min(self.buffer.shape[1], start + lead - position)
            self._play(position, count, scratch)
            position += count

    def _play(self, at: int, frames: int, out: np.ndarray) -> None:
        """Run the plug-in over ``frames`` frames with the events of [at, at + frames),
        in pieces of at most ``MAX_EVENTS`` events."""
        events, end = self.events, at + frames
        if self._cursor >= events.shape[0] or events["frame"][self._cursor] >= end:
            stop = self._cursor  # most blocks: no event
        else:
            stop = self._cursor + int(np.searchsorted(events["frame"][self._cursor:], end,
                                                      side="left"))
        done = 0
        while True:
            first = self._cursor
            last = min(stop, first + MAX_EVENTS)
            upto = frames if last == stop else int(events["frame"][last]) - at
            skip = last
            if upto <= done:  # more than MAX_EVENTS at one frame: the rest are dropped
                log.warning("lv2 instrument on track %r: over %d MIDI events at frame %d; "
                            "the rest are dropped", self.track, MAX_EVENTS, at + done)
                upto = done + 1
                skip = first + int(np.searchsorted(events["frame"][first:stop], at + done,
                                                   side="right"))
            block = out[:, done:upto]
            block[:] = 0.0
            if last > first:
                piece = events[first:last]
                self._track_notes(piece)
                self.plugin.process(block, upto - done, midi_words(piece, at + done))
            else:  # most blocks: no event
                self.plugin.process(block, upto - done)
            self._cursor = skip
            done = upto
            if done >= frames:
                return

    def _track_notes(self, piece: np.ndarray) -> None:
        for event in piece:
            note = (int(event["channel"]), int(event["key"]))
            if event["kind"] == NOTE_ON:
                self._held.add(note)
            elif event["kind"] == NOTE_OFF:
                self._held.discard(note)

    # ------------------------------------------------------------ edits

    def take_over(self, old: PluginInstrument) -> None:
        """Carry on where ``old`` (the same plug-in, before an edit of the track's notes)
        was: the notes it holds that the new events no longer end are released at once,
        the others play on."""
        self._next, self._held = old._next, set(old._held)
        if self._next < 0:
            return
        at = self._next + self.plugin.latency
        self._cursor = int(np.searchsorted(self.events["frame"], at, side="left"))
        later = self.events[self._cursor:]
        ends = {(int(e["channel"]), int(e["key"])) for e in later[later["kind"] == NOTE_OFF]}
        orphans = sorted(self._held - ends)
        if orphans:
            offs = np.zeros(len(orphans), dtype=self.events.dtype)
            offs["kind"] = NOTE_OFF
            offs["channel"] = [c for c, _ in orphans]
            offs["key"] = [k for _, k in orphans]
            offs["frame"] = at
            self.events = np.concatenate([self.events[:self._cursor], offs, later])
            self._held -= set(orphans)

    def set_params(self, instrument: Instrument) -> None:
        """Follow new control values or state (the same URI)."""
        self.instrument = instrument
        if self.plugin.params != instrument.params:
            self.plugin.set_params(dict(instrument.params))

    # ------------------------------------------------------------ like a hosted chain

    def errors(self) -> list[PluginError]:
        """The instrument's failure, if it failed (it is silent meanwhile)."""
        failed = self.plugin.failed
        return [PluginError(self.track, OWNER_EFFECT, -1, failed)] if failed else []

    def restart(self) -> int:
        """Restart a failed plug-in; returns 1 when it was restarted."""
        if not self.plugin.failed:
            return 0
        self.plugin.restart()
        self._next = -1
        return 1

    def reset(self) -> None:
        """Clear the plug-in's state, as after a transport stop."""
        self._next = -1

    def close(self) -> None:
        """Stop the worker."""
        self.plugin.close()


__all__ = ["OWNER_EFFECT", "PluginInstrument", "midi_words"]
