"""A track's instrument played live, block by block, from queued events."""

from __future__ import annotations

import numpy as np
import pytest
from live_helpers import BLOCK, RATE, play

from dsp_core.engine import Engine
from dsp_core.instrument_graph import NOTE_OFF, NOTE_ON
from dsp_core.live_instrument import LiveInstrument
from dsp_core.midi import Instrument, MidiClip, Note
from dsp_core.session import Session, Track

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("backend", ["native", "reference"])
def test_a_live_note_sounds_as_the_same_note_in_a_clip(backend: str) -> None:
    synth = Instrument("synth", {"attack_ms": 0.0, "gain_db": 0.0})
    live = play(LiveInstrument(synth, RATE, BLOCK, backend), 40,
                {4: [(NOTE_ON, 0, 60, 100)], 20: [(NOTE_OFF, 0, 60, 0)]})
    assert np.abs(live[: 4 * BLOCK]).max() == 0.0
    clip = MidiClip(0, 40 * BLOCK, [Note(60, 100, 4 * BLOCK, 16 * BLOCK)])
    track = Track("keys", instrument=synth, midi_clips=[clip], pan=-1.0)
    engine = Engine(Session(tracks=[track]), block_size=BLOCK, backend=backend)
    np.testing.assert_allclose(live, engine.render(0, 40 * BLOCK)[0], atol=1e-6)


def test_new_parameters_keep_a_held_note_and_a_new_kind_starts_afresh() -> None:
    live = LiveInstrument(Instrument("synth", {"attack_ms": 0.0}), RATE, BLOCK)
    play(live, 2, {0: [(NOTE_ON, 0, 60, 100)]})
    live.set_instrument(Instrument("synth", {"attack_ms": 0.0, "cutoff_hz": 500.0}))
    assert np.abs(live.render(BLOCK)).max() > 0.05
    live.set_instrument(Instrument("synth", {"voices": 2}))
    assert np.abs(live.render(BLOCK)).max() == 0.0
    with pytest.raises(ValueError, match="frames must be in"):
        live.render(BLOCK + 1)
    with pytest.raises(ValueError, match="kind"):
        live.push(9, 0, 60, 100)


def test_a_soundfont_instrument_plays_live() -> None:
    pytest.importorskip("fluidsynth")
    live = LiveInstrument(Instrument("soundfont", {"program_0": 0}), RATE, BLOCK)
    out = play(live, 30, {2: [(NOTE_ON, 0, 60, 100)], 12: [(NOTE_OFF, 0, 60, 0)]})
    assert np.abs(out[: 2 * BLOCK]).max() < 1e-6  # FluidSynth idles at ~1e-8
    assert np.abs(out[2 * BLOCK: 12 * BLOCK]).max() > 0.01
