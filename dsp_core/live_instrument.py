"""A track's instrument played live: notes as they come from a keyboard, block by block.

The engine plays a MIDI track from its clips, at timeline frames.  A note played on a
keyboard has no timeline frame yet (it is heard now, playing or stopped), so
:class:`LiveInstrument` keeps its own :class:`~dsp_core.instrument_graph.InstrumentState`
of the same instrument and renders it with the backend's ``instrument_render`` (the C
``daw_instrument_render`` or its twin), or a ``soundfont`` instrument with FluidSynth
(:mod:`dsp_core.soundfont`), or an ``lv2`` one in its worker
(:mod:`dsp_core.lv2_instrument`): events queued from any thread act at the start of the
next block rendered.  :meth:`LiveInstrument.panic` lets every note go (a MIDI input that
went away leaves none sounding).

Building an instrument can be slow (a ``soundfont`` one starts a FluidSynth and loads its
font), so a real-time player builds it on its own thread with :meth:`LiveInstrument.prepare`
and swaps it in between blocks with :meth:`LiveInstrument.adopt`, which only assigns.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .backend import get_backend
from .instrument_graph import (
    BEND,
    CC,
    EVENT_DTYPE,
    NOTE_OFF,
    NOTE_ON,
    InstrumentState,
    build_instrument,
    instrument_params,
)
from .midi import Instrument
from .reference_instruments import S_CURSOR
from .session import Track

if TYPE_CHECKING:
    from .lv2_instrument import PluginInstrument
    from .soundfont import SoundFontSource

    #: What plays an instrument the C kernels do not: FluidSynth or an LV2 worker.
    Outside = SoundFontSource | PluginInstrument

#: Event kinds a live event may have (the engine's ``DAW_MIDI_*``).
LIVE_KINDS = (NOTE_ON, NOTE_OFF, CC, BEND)
#: Controllers :meth:`LiveInstrument.panic` sends on every channel: the sustain pedal, and
#: All Notes Off (FluidSynth and LV2 plug-ins act on it; the built-in synth and sampler
#: get a note-off per key held instead).
SUSTAIN, ALL_NOTES_OFF = 64, 123


def _no_samples(source: str, sample_rate: int) -> np.ndarray:
    raise ValueError(f"sampler zone {source!r} needs a loader")


@dataclass(frozen=True)
class PreparedInstrument:
    """An instrument built ahead, ready for :meth:`LiveInstrument.adopt`.

    ``state`` is None when only parameters changed: ``params`` then holds them.
    """

    instrument: Instrument
    params: np.ndarray
    state: InstrumentState | None = None
    font: Outside | None = None


def _keeps_voices(old: Instrument, new: Instrument) -> bool:
    """Whether ``new`` is ``old`` with other parameters (the sounding voices carry over)."""
    return (old.kind == new.kind not in ("soundfont", "lv2") and old.zones == new.zones
            and old.value("voices") == new.value("voices"))


class LiveInstrument:
    """One instrument played from events pushed as they arrive.

    Parameters
    ----------
    instrument : Instrument
        What plays (a synth, or a sampler whose zones ``load`` reads).
    sample_rate, max_block : int
        The render rate and the largest block :meth:`render` is asked for.
    backend : str, optional
        ``native`` or ``reference`` (default: the engine's default).
    load : callable, optional
        ``load(source, sample_rate)`` for sampler zones, as the engine's loader.
    """

    def __init__(self, instrument: Instrument, sample_rate: int, max_block: int,
                 backend: str | None = None,
                 load: Callable[[str, int], np.ndarray] | None = None) -> None:
        self.sample_rate = sample_rate
        self.max_block = max_block
        self._render = get_backend(backend).instrument_render
        self._load = load or _no_samples
        self._lock = threading.Lock()
        self._queue: list[tuple[int, int, int, int]] = []
        self._held: set[tuple[int, int]] = set()  # (channel, key) pushed on, not yet off
        self._panic_queued = False  # a panic is the last thing queued, not yet rendered
        self.frame = 0
        self.instrument = instrument
        self.font: Outside | None = None
        self.state = self._build(instrument)

    def _build(self, instrument: Instrument) -> InstrumentState:
        if self.font is not None:
            self.font.close()
        state, self.font = self._make(instrument)
        return state

    def _make(self, instrument: Instrument) -> tuple[InstrumentState, Outside | None]:
        """A fresh state (and FluidSynth for a ``soundfont``, a worker for an ``lv2``
        instrument) for ``instrument``."""
        font: Outside | None = None
        if instrument.kind == "soundfont":  # FluidSynth, fed each block's events
            from .soundfont import SoundFontSource

            font = SoundFontSource(instrument, np.zeros(0, dtype=EVENT_DTYPE),
                                   self.sample_rate, self.max_block, 1)
            instrument = Instrument("synth")  # an idle state keeps the one render path
        elif instrument.kind == "lv2":  # the plug-in in its worker, fed each block's events
            from .lv2_instrument import PluginInstrument

            font = PluginInstrument("live", instrument, np.zeros(0, dtype=EVENT_DTYPE),
                                    self.sample_rate, self.max_block, 1)
            instrument = Instrument("synth")
        state = build_instrument(Track("live", instrument=instrument), 1.0, self.sample_rate,
                                 self.max_block, self._load)
        assert state is not None
        return state, font

    def push(self, kind: int, channel: int, key: int, value: int) -> None:
        """Queue one event (``NOTE_ON`` with a velocity, ``NOTE_OFF``, ``CC``, ``BEND``);
        safe from any thread."""
        if kind not in LIVE_KINDS:
            raise ValueError(f"live event kind must be one of {LIVE_KINDS}, got {kind!r}")
        with self._lock:
            self._queue.append((kind, channel, key, value))
            self._panic_queued = False
            if kind == NOTE_ON:
                self._held.add((channel, key))
            elif kind == NOTE_OFF:
                self._held.discard((channel, key))

    def panic(self) -> None:
        """Let every note go (safe from any thread, like :meth:`push`): at the start of the
        next block the sustain pedal goes up, the pitch bend back to the centre and All
        Notes Off is sent on every channel, and each key still down gets its note-off;
        the notes end within their release. A panic already queued, with nothing pushed
        after it, is not queued again (the queue stays bounded while nothing renders).

        What a DAW sends when a MIDI input goes away mid-note, and its *panic* button.
        """
        with self._lock:
            if self._panic_queued:
                return
            held, self._held = sorted(self._held), set()
            for channel in range(16):
                self._queue.append((CC, channel, SUSTAIN, 0))
                self._queue.append((BEND, channel, 0, 0))
                self._queue.append((CC, channel, ALL_NOTES_OFF, 0))
            self._queue.extend((NOTE_OFF, channel, key, 0) for channel, key in held)
            self._panic_queued = True

    def set_instrument(self, instrument: Instrument) -> None:
        """Follow an edit of the track's instrument (call between blocks): new parameters
        keep the sounding voices; a new kind, voice count or zones start afresh.

        A new instrument is built here; a real-time caller uses :meth:`prepare` on its
        own thread and :meth:`adopt` between blocks instead.
        """
        if instrument == self.instrument:
            return
        if _keeps_voices(self.instrument, instrument):
            self.state.params[:] = instrument_params(instrument, self.sample_rate)
        else:
            self.state = self._build(instrument)
        self.instrument = instrument

    def prepare(self, instrument: Instrument) -> PreparedInstrument:
        """Build what :meth:`set_instrument` would, without touching what plays (any
        thread but the audio one: this may start a FluidSynth)."""
        params = instrument_params(instrument, self.sample_rate) \
            if instrument.kind not in ("soundfont", "lv2") else np.zeros(0, dtype=np.float32)
        if _keeps_voices(self.instrument, instrument):
            return PreparedInstrument(instrument, params)
        state, font = self._make(instrument)
        return PreparedInstrument(instrument, params, state, font)

    def adopt(self, prepared: PreparedInstrument) -> Outside | None:
        """Play ``prepared`` from the next block (between blocks; it only assigns, unless
        another adopt since :meth:`prepare` changed the kind it was prepared against).

        The FluidSynth (or LV2 worker) it replaced, if any, is returned for the caller to
        close off the audio thread.
        """
        retired = None
        if prepared.state is not None:
            self.state, retired, self.font = prepared.state, self.font, prepared.font
        elif _keeps_voices(self.instrument, prepared.instrument):
            self.state.params[:] = prepared.params
        else:  # prepared against an instrument that another adopt replaced meanwhile
            state, font = self._make(prepared.instrument)
            self.state, retired, self.font = state, self.font, font
        self.instrument = prepared.instrument
        return retired

    def render(self, frames: int) -> np.ndarray:
        """The next ``frames`` frames (mono float32, a view valid until the next call);
        the events queued so far act at its first frame."""
        if not 0 < frames <= self.max_block:
            raise ValueError(f"frames must be in [1, {self.max_block}], got {frames}")
        with self._lock:
            queued, self._queue = self._queue, []
            self._panic_queued = False
        events = np.zeros(len(queued), dtype=EVENT_DTYPE)
        for i, (kind, channel, key, value) in enumerate(queued):
            events[i] = (self.frame, kind, channel, key, value)
        if self.font is not None:
            if self.font.instrument.kind == "lv2":  # sent as they come: no look-ahead
                events["frame"] += self.font.plugin.latency  # type: ignore[union-attr]
            self.font.events, self.font._cursor = events, 0
            self.font.fill(self.frame, frames)
            self.frame += frames
            return self.font.buffer[0, :frames]
        inst = self.state
        inst.events = events
        inst.state[S_CURSOR] = 0  # (the first block is a seek: controllers at rest)
        self._render(inst, float(self.sample_rate), self.frame, frames, inst.scratch)
        self.frame += frames
        return inst.scratch[:frames]


__all__ = ["ALL_NOTES_OFF", "LIVE_KINDS", "LiveInstrument", "PreparedInstrument"]
