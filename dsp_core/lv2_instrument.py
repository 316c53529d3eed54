"""An LV2 instrument playing a MIDI track: the plug-in in its worker, fed the track's
notes and controllers block by block.

:class:`PluginInstrument` is the track's source in the block render path, like a
``soundfont`` instrument (:mod:`dsp_core.soundfont`): the engine asks it for each block
before the C call (:meth:`fill`) and the C engine reads its buffer as the track's first
clip, so the track's chain (built-in and ``lv2`` effects), fader, sends and automation
apply as to any source.  The events are those the built-in instruments play
(:func:`dsp_core.instrument_graph.midi_events`, render frames), each sent at its frame
inside the block as a ``midi:MidiEvent`` of the plug-in's MIDI input
(:mod:`dsp_core.lv2_worker` builds the ``atom:Sequence``), scheduled by
:class:`dsp_core.lv2_midi.MidiFeed` as for an ``lv2`` effect that takes MIDI.

**Latency.** A plug-in that reports latency ``L`` gets every event ``L`` frames early
(the notes are known ahead), so its output lines up with the timeline without delaying
the rest of the mix.  **Seeks.** A block that does not follow the last one (also the
first after a transport stop) first silences the plug-in (:meth:`MidiFeed.silence`: a
reset does not stop the voices of some plug-ins, LSP's samplers), then resets it
(deactivate, activate), sends the controllers and bends before the block, then
every note sounding across the seek point as a note-on at its first frame (note chase,
as the built-in instruments), and pre-rolls ``L`` frames: the chased notes go at the
pre-roll's first frame, so they are heard from the seek point.  A plug-in that fails is
silent, listed in :meth:`dsp_core.engine.Engine.plugin_errors` with effect
``instrument``.
"""

from __future__ import annotations

import numpy as np

from .lv2_chain import PluginError
from .lv2_host import HostedPlugin
from .lv2_layout import MAX_EVENTS
from .lv2_midi import MidiFeed, midi_words
from .midi import Instrument

#: The ``effect`` an instrument's failure is listed under in ``plugin_errors()``.
OWNER_EFFECT = "instrument"


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
        self.plugin = plugin if plugin is not None else HostedPlugin(
            dict(instrument.params), channels, sample_rate, max_block, instrument=True)
        if plugin is not None and plugin.params != instrument.params:
            plugin.set_params(dict(instrument.params))
        self.buffer = np.zeros((channels, max_block), dtype=np.float32)
        #: the events and the notes sent, in the plug-in's time (timeline + latency)
        self.feed = MidiFeed(events, f"lv2 instrument on track {track!r}")
        self._pending: tuple[int, int] | None = None  # a dispatched block (start, frames)

    @property
    def events(self) -> np.ndarray:
        """The track's events in render frames, sorted: what plays (after a seek, with the
        chased note-ons at the seek point)."""
        return self.feed.events

    @events.setter
    def events(self, events: np.ndarray) -> None:
        self.feed.events = events

    @property
    def chase_notes(self) -> bool:
        """Whether a seek starts the notes sounding across it (the project's
        ``chase_notes``; controllers are chased either way)."""
        return self.feed.chase_notes

    @chase_notes.setter
    def chase_notes(self, on: bool) -> None:
        self.feed.chase_notes = on

    @property
    def _cursor(self) -> int:
        """The first event not sent yet (a live keyboard restarts it each block)."""
        return self.feed.cursor

    @_cursor.setter
    def _cursor(self, cursor: int) -> None:
        self.feed.cursor = cursor

    # ------------------------------------------------------------ rendering

    def dispatch(self, start: int, frames: int) -> None:
        """Hand the worker the block [start, start + frames) and return at once, when it
        is one run (no seek, at most ``MAX_EVENTS`` events): the engine dispatches every
        instrument's block first, so the workers run at the same time, then :meth:`fill`
        collects each."""
        feed, at = self.feed, start + self.plugin.latency
        if (at != feed.next or self._pending is not None or frames <= 0
                or feed.count(at, frames) > MAX_EVENTS):
            return
        self.buffer[:, :frames] = 0.0
        _, _, words = next(feed.pieces(at, frames))
        self.plugin.start(self.buffer, frames, words)
        self._pending = (start, frames)

    def fill(self, start: int, frames: int) -> None:
        """Render timeline frames [start, start + frames) into :attr:`buffer` (collect the
        block :meth:`dispatch` handed over, if it did)."""
        feed, lead = self.feed, self.plugin.latency
        if self._pending is not None:
            pending, self._pending = self._pending, None
            self.plugin.finish(self.buffer, pending[1])
            if pending == (start, frames):
                feed.next = start + lead + frames
                return
            feed.next = -1  # (another block was asked for: play it afresh)
        if start + lead != feed.next:
            self._seek(start, lead)
        self._play(start + lead, frames, self.buffer)

    def _seek(self, start: int, lead: int) -> None:
        """Silence and reset the plug-in, chase controllers and bends, then the notes
        sounding across ``start`` (note-ons at ``start``, ahead of its own events),
        pre-roll its latency."""
        scratch = np.zeros_like(self.buffer)
        self._send_now(self.feed.silence(start), start, scratch)  # (a reset may not)
        self.plugin.reset()
        self._send_now(self.feed.seek(start), start, scratch)
        position = start
        while position < start + lead:  # the events of [start, start + lead) go early
            count = min(self.buffer.shape[1], start + lead - position)
            self._play(position, count, scratch)
            position += count

    def _send_now(self, events: np.ndarray, at: int, scratch: np.ndarray) -> None:
        """Send ``events`` (framed at ``at``) in one-frame runs into ``scratch``."""
        for first in range(0, events.shape[0], MAX_EVENTS):
            self.plugin.process(scratch, 1, midi_words(events[first:first + MAX_EVENTS], at))

    def _play(self, at: int, frames: int, out: np.ndarray) -> None:
        """Run the plug-in over ``frames`` frames with the events of [at, at + frames),
        in pieces of at most ``MAX_EVENTS`` events."""
        for lo, hi, words in self.feed.pieces(at, frames):
            block = out[:, lo:hi]
            block[:] = 0.0
            self.plugin.process(block, hi - lo, words)
        self.feed.next = at + frames

    # ------------------------------------------------------------ edits

    def take_over(self, old: PluginInstrument) -> None:
        """Carry on where ``old`` (the same plug-in, before an edit of the track's notes)
        was: the notes it holds that the new events no longer end are released at once,
        the others play on."""
        self.feed.take_over(old.feed)

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
        self.feed.next = -1
        return 1

    def reset(self) -> None:
        """Clear the plug-in's state, as after a transport stop."""
        self.feed.next = -1

    def close(self) -> None:
        """Stop the worker."""
        self.plugin.close()


__all__ = ["OWNER_EFFECT", "PluginInstrument", "midi_words"]
