"""A track's instrument played live: notes as they come from a keyboard, block by block.

The engine plays a MIDI track from its clips, at timeline frames.  A note played on a
keyboard has no timeline frame yet (it is heard now, playing or stopped), so
:class:`LiveInstrument` keeps its own :class:`~dsp_core.instrument_graph.InstrumentState`
of the same instrument and renders it with the backend's ``instrument_render`` (the C
``daw_instrument_render`` or its twin), or a ``soundfont`` instrument with FluidSynth
(:mod:`dsp_core.soundfont`): events queued from any thread act at the start of the next
block rendered.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
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
    from .soundfont import SoundFontSource

#: Event kinds a live event may have (the engine's ``DAW_MIDI_*``).
LIVE_KINDS = (NOTE_ON, NOTE_OFF, CC, BEND)


def _no_samples(source: str, sample_rate: int) -> np.ndarray:
    raise ValueError(f"sampler zone {source!r} needs a loader")


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
        self.frame = 0
        self.instrument = instrument
        self.font: SoundFontSource | None = None
        self.state = self._build(instrument)

    def _build(self, instrument: Instrument) -> InstrumentState:
        if self.font is not None:
            self.font.close()
            self.font = None
        if instrument.kind == "soundfont":  # FluidSynth, fed each block's events
            from .soundfont import SoundFontSource

            self.font = SoundFontSource(instrument, np.zeros(0, dtype=EVENT_DTYPE),
                                        self.sample_rate, self.max_block, 1)
            instrument = Instrument("synth")  # an idle state keeps the one render path
        state = build_instrument(Track("live", instrument=instrument), 1.0, self.sample_rate,
                                 self.max_block, self._load)
        assert state is not None
        return state

    def push(self, kind: int, channel: int, key: int, value: int) -> None:
        """Queue one event (``NOTE_ON`` with a velocity, ``NOTE_OFF``, ``CC``, ``BEND``);
        safe from any thread."""
        if kind not in LIVE_KINDS:
            raise ValueError(f"live event kind must be one of {LIVE_KINDS}, got {kind!r}")
        with self._lock:
            self._queue.append((kind, channel, key, value))

    def set_instrument(self, instrument: Instrument) -> None:
        """Follow an edit of the track's instrument (call between blocks): new parameters
        keep the sounding voices; a new kind, voice count or zones start afresh."""
        if instrument == self.instrument:
            return
        old = self.instrument
        if (old.kind == instrument.kind != "soundfont" and old.zones == instrument.zones
                and old.value("voices") == instrument.value("voices")):
            self.state.params[:] = instrument_params(instrument, self.sample_rate)
        else:
            self.state = self._build(instrument)
        self.instrument = instrument

    def render(self, frames: int) -> np.ndarray:
        """The next ``frames`` frames (mono float32, a view valid until the next call);
        the events queued so far act at its first frame."""
        if not 0 < frames <= self.max_block:
            raise ValueError(f"frames must be in [1, {self.max_block}], got {frames}")
        with self._lock:
            queued, self._queue = self._queue, []
        events = np.zeros(len(queued), dtype=EVENT_DTYPE)
        for i, (kind, channel, key, value) in enumerate(queued):
            events[i] = (self.frame, kind, channel, key, value)
        if self.font is not None:
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


__all__ = ["LIVE_KINDS", "LiveInstrument"]
