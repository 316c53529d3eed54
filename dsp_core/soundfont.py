"""SoundFont playback: a MIDI track whose instrument kind is ``soundfont`` is played by
FluidSynth (libfluidsynth through pyfluidsynth) with a General MIDI font.

:class:`SoundFontSource` is the track's source in the block render path: the engine asks
it for each block before the C call (:meth:`fill`), and the C engine reads its buffer as
the track's first clip (placed where the block is), so the track's inserts, fader, sends
and automation apply as to any source.  Events are sent at their frames: a block is cut
at each one (FluidSynth itself starts a sound at its next 64-frame tick, as its own
player does).  A block that does not follow the last one is a seek: sounds stop (All
Sound Off after FluidSynth's reset, which only releases them, carried out over one
64-frame period before anything is sent; the rest of the period rendered before the seek
is dropped, so what played before does not move the chased notes), controllers and
bend are chased from the events before it, then every note sounding across the seek
point starts there afresh (note chase: a held pad is heard at once; not when the
project's ``chase_notes`` is off, :attr:`SoundFontSource.chase_notes`).

The font is ``$DAW_SOUNDFONT`` or the system's General MIDI font (Debian's
``fluid-soundfont-gm``: ``/usr/share/sounds/sf2/FluidR3_GM.sf2``).  Each channel plays
its ``program_N`` parameter (bank 0; channel 10, index 9, the GM drum kit, bank 128).
The default ``gain_db`` (-6) plays at FluidSynth's own default gain (0.2), so a render
matches ``fluidsynth -F`` of the same file.

pyfluidsynth's ``get_samples`` gives dithered 16-bit samples; the float writer
``fluid_synth_write_float`` is bound here through pyfluidsynth's own library loader.
"""

from __future__ import annotations

import ctypes
import os
import weakref
from pathlib import Path
from typing import Any

import numpy as np

from .errors import DspError
from .instrument_graph import BEND, CC, NOTE_OFF, NOTE_ON, chase
from .midi import INSTRUMENT_PARAMS, Instrument
from .session import db_to_linear

#: Where a General MIDI font is looked for when ``$DAW_SOUNDFONT`` is not set.
DEFAULT_FONTS = ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/sounds/sf2/default-GM.sf2",
                 "/usr/share/soundfonts/FluidR3_GM.sf2", "/usr/share/soundfonts/default.sf2")
#: FluidSynth's default ``synth.gain``: what the default ``gain_db`` plays at.
FLUID_GAIN = 0.2
DRUM_CHANNEL = 9
#: FluidSynth's period: it renders, and acts on the calls made before, 64 frames at a time.
TICK = 64


class SoundFontError(DspError):
    """No FluidSynth, no font, or a font FluidSynth cannot load."""


def default_font() -> Path:
    """The SoundFont a ``soundfont`` instrument plays (``$DAW_SOUNDFONT`` or the system's)."""
    named = os.environ.get("DAW_SOUNDFONT", "").strip()
    if named:
        if not Path(named).is_file():
            raise SoundFontError(f"$DAW_SOUNDFONT names {named!r}, which is not a file")
        return Path(named)
    for path in DEFAULT_FONTS:
        if Path(path).is_file():
            return Path(path)
    raise SoundFontError("no General MIDI SoundFont: apt-get install fluid-soundfont-gm, or "
                         "set $DAW_SOUNDFONT to an .sf2 file")


def _fluidsynth() -> Any:
    try:
        import fluidsynth
    except (ImportError, OSError) as exc:
        raise SoundFontError(f"soundfont instruments need FluidSynth ({exc}): apt-get install "
                             "libfluidsynth3 and pip install pyfluidsynth") from None
    return fluidsynth


_WRITE_FLOAT: Any = None


def _write_float() -> Any:
    """``fluid_synth_write_float`` (pyfluidsynth binds only the 16-bit writer)."""
    global _WRITE_FLOAT
    if _WRITE_FLOAT is None:
        fs = _fluidsynth()
        _WRITE_FLOAT = fs.cfunc("fluid_synth_write_float", ctypes.c_int,
                                ("synth", ctypes.c_void_p, 1), ("len", ctypes.c_int, 1),
                                ("lout", ctypes.c_void_p, 1), ("loff", ctypes.c_int, 1),
                                ("lincr", ctypes.c_int, 1), ("rout", ctypes.c_void_p, 1),
                                ("roff", ctypes.c_int, 1), ("rincr", ctypes.c_int, 1))
    return _WRITE_FLOAT


def _program(instrument: Instrument, channel: int) -> int:
    return int(instrument.value(f"program_{channel}"))


class SoundFontSource:
    """One ``soundfont`` track's FluidSynth, fed the track's events block by block.

    Parameters
    ----------
    instrument : Instrument
        Kind ``soundfont``: ``gain_db`` and ``program_0`` ... ``program_15``.
    events : numpy.ndarray
        The track's events (:func:`dsp_core.instrument_graph.midi_events`, render frames).
    sample_rate, max_block, channels : int
        Render rate, largest block, the track's channels (a mono track gets the mean of
        FluidSynth's left and right).
    font : path, optional
        An ``.sf2`` file (default :func:`default_font`).
    """

    def __init__(self, instrument: Instrument, events: np.ndarray, sample_rate: int,
                 max_block: int, channels: int, font: str | os.PathLike[str] | None = None
                 ) -> None:
        fs = _fluidsynth()
        self.instrument = instrument
        self.events = events
        self.sample_rate = sample_rate
        self.font = Path(font) if font is not None else default_font()
        default_db = INSTRUMENT_PARAMS["gain_db"][0]
        gain = FLUID_GAIN * db_to_linear(instrument.value("gain_db") - default_db)
        self._synth = fs.Synth(gain=gain, samplerate=float(sample_rate), channels=16)
        self._finalizer = weakref.finalize(self, self._synth.delete)
        self._sfid = self._synth.sfload(str(self.font))
        if self._sfid < 0:
            self.close()
            raise SoundFontError(f"FluidSynth cannot load the SoundFont {str(self.font)!r}")
        self._write = _write_float()
        self._lr = np.zeros((2, max_block), dtype=np.float32)
        self._scratch = np.zeros((2, TICK), dtype=np.float32)
        self.buffer = np.zeros((channels, max_block), dtype=np.float32)
        self._next = -1
        self._cursor = 0
        self._phase = 0  # frames rendered, modulo TICK
        #: False (the project's ``chase_notes``): a seek starts no note that began before it
        self.chase_notes = True

    def plays(self, instrument: Instrument, events: np.ndarray, sample_rate: int,
              max_block: int, channels: int) -> bool:
        """Whether this source plays what a new one built with these would (a rebuilt
        track then plays this one on, its sounding notes kept: no seek)."""
        return (instrument == self.instrument and sample_rate == self.sample_rate
                and self.buffer.shape == (channels, max_block)
                and np.array_equal(events, self.events))

    def close(self) -> None:
        """Free the synthesizer (nothing renders after)."""
        self._finalizer()

    def _programs(self) -> None:
        for channel in range(16):
            bank = 128 if channel == DRUM_CHANNEL else 0
            program = _program(self.instrument, channel)
            if self._synth.program_select(channel, self._sfid, bank, program) != 0:
                self._synth.program_select(channel, self._sfid, bank, 0)

    def _send(self, event: np.void, notes: bool = True) -> None:
        kind, channel = int(event["kind"]), int(event["channel"])
        key, value = int(event["key"]), int(event["value"])
        if kind == NOTE_ON and notes:
            self._synth.noteon(channel, key, value)
        elif kind == NOTE_OFF and notes:
            self._synth.noteoff(channel, key)
        elif kind == CC:
            self._synth.cc(channel, key, value)
        elif kind == BEND:
            self._synth.pitch_bend(channel, value)

    def _seek(self, start: int) -> None:
        self._discard(-self._phase % TICK)  # the rest of a period rendered before the seek
        self._synth.system_reset()  # (it only releases the voices: they would ring on)
        self._synth.all_sounds_off(-1)  # after it, or its release revives them
        self._discard(TICK)  # carried out, so no chased pedal-up or note revives them
        self._programs()
        frames = self.events["frame"]
        self._cursor = int(np.searchsorted(frames, start, side="left"))
        for event in self.events[:self._cursor]:  # chase controllers and bend
            self._send(event, notes=False)
        if not self.chase_notes:  # controllers only: a held note stays silent
            return
        notes, pedalled = chase(self.events, start)
        for event, held in zip(notes, pedalled, strict=True):  # the notes sounding across
            self._send(event)
            if held:  # ended under the pedal, still down: the pedal holds it
                self._synth.noteoff(int(event["channel"]), int(event["key"]))

    def _discard(self, frames: int) -> None:
        """Render ``frames`` (at most :data:`TICK`) frames that are not heard."""
        scratch = self._scratch
        if self._write(self._synth.synth, frames, scratch[0].ctypes.data, 0, 1,
                       scratch[1].ctypes.data, 0, 1) != 0:
            raise SoundFontError("FluidSynth failed to render a block")
        self._phase = (self._phase + frames) % TICK

    def _render(self, offset: int, frames: int) -> None:
        lr = self._lr
        left = lr[0].ctypes.data + 4 * offset
        right = lr[1].ctypes.data + 4 * offset
        if self._write(self._synth.synth, frames, left, 0, 1, right, 0, 1) != 0:
            raise SoundFontError("FluidSynth failed to render a block")
        self._phase = (self._phase + frames) % TICK

    def fill(self, start: int, frames: int) -> None:
        """Render frames [start, start + frames) into :attr:`buffer`."""
        if start != self._next:
            self._seek(start)
        events, n = self.events, self.events.shape[0]
        pos, end, cursor = start, start + frames, self._cursor
        while pos < end:
            while cursor < n and events[cursor]["frame"] <= pos:
                self._send(events[cursor])
                cursor += 1
            stop = min(int(events[cursor]["frame"]), end) if cursor < n else end
            self._render(pos - start, stop - pos)
            pos = stop
        self._cursor, self._next = cursor, end
        if self.buffer.shape[0] == 2:
            self.buffer[:, :frames] = self._lr[:, :frames]
        else:
            np.add(self._lr[0, :frames], self._lr[1, :frames], out=self.buffer[0, :frames])
            self.buffer[0, :frames] *= 0.5


__all__ = ["DEFAULT_FONTS", "SoundFontError", "SoundFontSource", "default_font"]
