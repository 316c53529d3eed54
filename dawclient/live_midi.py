"""Live MIDI in the desktop client: what a keyboard plays is heard, and recorded.

:class:`LiveMidi` sits between a :class:`~.midi_input.MidiInput` (its thread) and the
:class:`~.player.Player` (its thread).  Each message is played at once through the
selected track's instrument (:class:`dsp_core.live_instrument.LiveInstrument`, mixed
into every block, playing or stopped), and while the transport plays, each note is
recorded at the timeline frame that was being heard when it arrived: no arming.  The
client writes finished notes into the document (:func:`write_notes`), which syncs them to
everyone like any other edit.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from collab.schema import ProjectDocument
from dsp_core.instrument_graph import NOTE_OFF, NOTE_ON
from dsp_core.live_instrument import LiveInstrument, PreparedInstrument
from dsp_core.midi import Instrument, MidiClip
from dsp_core.session import Session

from .midi_input import MidiMessage

if TYPE_CHECKING:
    from dsp_core.soundfont import SoundFontSource

#: A sample at or above this magnitude counts as heard (-80 dBFS).
AUDIBLE = 1e-4
#: Notes whose latency is kept (the most recent), and how long a note waits to be heard.
MAX_LATENCIES = 10_000
MAX_WAIT_S = 1.0


@dataclass(frozen=True)
class RecordedNote:
    """A note played while the transport ran: ``start`` and ``length`` in session frames."""

    channel: int
    pitch: int
    velocity: int
    start: int
    length: int


@dataclass(frozen=True)
class NoteLatency:
    """When a note-on arrived, when its first audible sample was rendered and when that
    sample is heard (monotonic seconds; ``heard`` adds what is queued ahead of the device
    and the device's own output latency)."""

    arrived: float
    rendered: float
    heard: float


class LiveMidi:
    """Plays and records one track's notes from a MIDI port.

    Parameters
    ----------
    track_id : str
        The selected MIDI track: what is played sounds with its instrument and lands on it.
    instrument : Instrument
        The track's instrument now (:meth:`follow` keeps it current).
    render_rate, max_block : int
        The player's render rate and block size.
    to_session : callable
        Render-rate timeline frame -> session frame (``Playhead.to_session``).
    backend, load
        As for :class:`dsp_core.engine.Engine`.
    """

    def __init__(self, track_id: str, instrument: Instrument, render_rate: int, max_block: int,
                 to_session: Callable[[int], int], backend: str | None = None,
                 load: Callable[[str, int], np.ndarray] | None = None) -> None:
        self.track_id = track_id
        self.rate = render_rate
        self.to_session = to_session
        self.instrument = LiveInstrument(instrument, render_rate, max_block, backend, load)
        #: The last notes' latencies (a bounded record: a session may last hours).
        self.latencies: deque[NoteLatency] = deque(maxlen=MAX_LATENCIES)
        self._lock = threading.Lock()
        self._anchor: tuple[float, int] | None = None  # (heard at, timeline frame)
        self._end = 0  # timeline frame after the last block played
        self._open: dict[tuple[int, int], tuple[int, int]] = {}  # (ch, key) -> (start, vel)
        self._done: list[RecordedNote] = []
        self._waiting: list[float] = []
        self._followed = instrument
        self._pending_instrument: PreparedInstrument | None = None
        # replaced FluidSynths, closed off the audio thread
        self._retired: list[SoundFontSource] = []

    # -- the MIDI thread -----------------------------------------------------------------

    def message(self, message: MidiMessage) -> None:
        """Play one message now and note it for the recording (any thread)."""
        self.instrument.push(message.kind, message.channel, message.key, message.value)
        if message.kind not in (NOTE_ON, NOTE_OFF):
            return
        with self._lock:
            frame = self._timeline_at(message.at)
            key = (message.channel, message.key)
            if message.kind == NOTE_ON:
                # a note not heard within a second (a silent or muted instrument) is not
                # measured: it must not be given the next audible block's latency
                self._waiting = [t for t in self._waiting if message.at - t < MAX_WAIT_S]
                self._waiting.append(message.at)
                if key in self._open and frame is not None:
                    self._close(key, frame)  # a repeated key ends the note it held
                if frame is not None:
                    self._open[key] = (frame, message.value)
            elif key in self._open:
                self._close(key, frame if frame is not None else self._end)

    def panic(self) -> None:
        """Let every note go (any thread; the port they came from closed or went away):
        the monitor releases them, and the notes being recorded end at the frame heard
        now."""
        self.instrument.panic()
        with self._lock:
            frame = self._timeline_at(time.monotonic())
            for key in list(self._open):
                self._close(key, frame if frame is not None else self._end)

    def _timeline_at(self, at: float) -> int | None:
        if self._anchor is None:
            return None
        heard_at, frame = self._anchor
        return max(0, frame + int(round((at - heard_at) * self.rate)))

    def _close(self, key: tuple[int, int], end: int) -> None:
        start, velocity = self._open.pop(key)
        first, last = self.to_session(start), self.to_session(max(end, start + 1))
        self._done.append(RecordedNote(key[0], key[1], velocity, first, max(1, last - first)))

    # -- the player thread ---------------------------------------------------------------

    def block(self, out: np.ndarray, timeline: int | None, heard_at: float) -> None:
        """Mix the live instrument into ``out`` (channels x frames, in place).

        ``timeline`` is the render-rate timeline frame of the block's first frame while
        the transport plays (None when stopped), ``heard_at`` the monotonic time its
        first frame will be heard.
        """
        with self._lock:
            prepared, self._pending_instrument = self._pending_instrument, None
        if prepared is not None:  # built by follow(): swapping it in only assigns
            retired = self.instrument.adopt(prepared)
            if retired is not None:
                with self._lock:
                    self._retired.append(retired)
        frames = out.shape[1]
        mono = self.instrument.render(frames)
        out += mono
        rendered = time.monotonic()
        with self._lock:
            if self._waiting:
                loud = np.flatnonzero(np.abs(mono) >= AUDIBLE)
                if loud.size:
                    heard = heard_at + int(loud[0]) / self.rate
                    self.latencies.extend(NoteLatency(t, rendered, heard)
                                          for t in self._waiting if heard - t < MAX_WAIT_S)
                    self._waiting = []
            if timeline is None:
                if self._anchor is not None:  # stopped: notes still held end here
                    for key in list(self._open):
                        self._close(key, self._end)
                self._anchor = None
            else:
                self._anchor = (heard_at, timeline)
                self._end = timeline + frames

    # -- the client's loop ---------------------------------------------------------------

    def follow(self, session: Session) -> None:
        """Take the selected track's instrument from a newer session.

        A new instrument (a FluidSynth for a ``soundfont``) is built here, on the client's
        loop, so the player thread only swaps it in; the ones it replaced are closed here.
        """
        track = next((t for t in session.tracks if t.id == self.track_id), None)
        if track is None or track.instrument is None or track.instrument == self._followed:
            self._close_retired()
            return
        self._followed = track.instrument
        prepared = self.instrument.prepare(track.instrument)
        with self._lock:
            unplayed, self._pending_instrument = self._pending_instrument, prepared
            if unplayed is not None and unplayed.font is not None:
                self._retired.append(unplayed.font)
        self._close_retired()

    def _close_retired(self) -> None:
        with self._lock:
            retired, self._retired = self._retired, []
        for font in retired:
            font.close()

    def finish(self) -> None:
        """End the notes still held where playing stopped (the player has stopped)."""
        with self._lock:
            for key in list(self._open):
                self._close(key, self._end)
        self._close_retired()

    def take_notes(self) -> list[RecordedNote]:
        """The notes finished since the last call."""
        with self._lock:
            done, self._done = self._done, []
        return done


def write_notes(document: ProjectDocument, track_id: str, notes: list[RecordedNote],
                clip_id: str | None = None) -> str | None:
    """Write recorded notes onto ``track_id`` in one transaction; the clip they went to.

    A note goes into the track's MIDI clip that holds its start, else into ``clip_id``
    (the clip this recording made, lengthened to hold it), else into a new clip starting
    at the note.
    """
    with document.transaction():
        for note in sorted(notes, key=lambda n: n.start):
            clips = document.midi_clips_of(track_id)
            home = next((c for c in clips if c.position <= note.start < c.end), None)
            if home is None and clip_id is not None:
                home = next((c for c in clips if c.id == clip_id
                             and c.position <= note.start), None)
            if home is None:
                clip_id = document.add_midi_clip(
                    track_id, MidiClip(note.start, note.length))
                home = document.midi_clip(clip_id)
            end = note.start + note.length
            if end > home.end:
                document.update_midi_clip(home.id, length=end - home.position)
            document.add_note(home.id, note.pitch, note.velocity, start=note.start
                              - home.position, length=note.length, channel=note.channel)
    return clip_id


__all__ = ["AUDIBLE", "LiveMidi", "NoteLatency", "RecordedNote", "write_notes"]
