"""The live keyboard monitor lets go of its notes: a key's note-off (or the pedal going up
after it) ends the note within its release, playing or stopped, and an instrument
swapped in while a key is held starts silent."""

from __future__ import annotations

import numpy as np
import pytest
from live_helpers import BLOCK, RATE, RELEASE, SUSTAIN, SYNTH, play
from test_soundfont_seek import QUIET, release_frames

from dawclient.live_midi import LiveMidi
from dawclient.midi_input import MidiMessage
from dsp_core.instrument_graph import CC, NOTE_OFF, NOTE_ON
from dsp_core.live_instrument import LiveInstrument
from dsp_core.midi import Instrument

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("backend", ["native", "reference"])
def test_a_synth_key_under_the_pedal_ends_at_the_pedal_up_after_its_release(
        backend: str) -> None:
    """Pedal down, a key pressed at block 2 and let go at block 10: it sounds on; pedal up
    at block 20: silent (exactly) from its release after, and nothing brings it back."""
    live = LiveInstrument(SYNTH, RATE, BLOCK, backend)
    out = play(live, 60, {0: [(CC, 0, SUSTAIN, 127)], 2: [(NOTE_ON, 0, 60, 100)],
                          10: [(NOTE_OFF, 0, 60, 0)], 20: [(CC, 0, SUSTAIN, 0)]})
    assert np.abs(out[19 * BLOCK:20 * BLOCK]).max() > 0.05  # the pedal holds it
    assert np.abs(out[20 * BLOCK:20 * BLOCK + 64]).max() > 0.05  # released from there
    assert not out[20 * BLOCK + RELEASE:].any()


def test_a_soundfont_key_ends_within_the_release_the_font_gives_it() -> None:
    """FluidR3's piano, a key pressed at block 2, let go at block 20: silent, but for the
    reverb's faint tail, after the release its voices read from the font (and a
    64-frame FluidSynth period); the same under the pedal, from the pedal-up."""
    release = release_frames(60, 100) + 64
    for events, end in (({2: [(NOTE_ON, 0, 60, 100)], 20: [(NOTE_OFF, 0, 60, 0)]}, 20),
                        ({0: [(CC, 0, SUSTAIN, 127)], 2: [(NOTE_ON, 0, 60, 100)],
                          10: [(NOTE_OFF, 0, 60, 0)], 30: [(CC, 0, SUSTAIN, 0)]}, 30)):
        live = LiveInstrument(Instrument("soundfont"), RATE, BLOCK)
        out = play(live, end + 4 * RATE // BLOCK, events)
        assert np.abs(out[(end - 1) * BLOCK:end * BLOCK]).max() > 5e-3  # still sounding
        assert np.abs(out[end * BLOCK + release:]).max() < QUIET


def test_a_soundfont_swapped_in_while_a_key_is_held_starts_silent() -> None:
    """A key held on the piano when another program is adopted: the old FluidSynth is
    handed back (to be closed), the new one plays nothing until a key is pressed."""
    live = LiveInstrument(Instrument("soundfont"), RATE, BLOCK)
    held = play(live, 10, {2: [(NOTE_ON, 0, 60, 100)]})
    assert np.abs(held[-BLOCK:]).max() > 5e-3
    old = live.font
    retired = live.adopt(live.prepare(Instrument("soundfont", {"program_0": 48})))
    assert retired is old
    assert retired is not None
    retired.close()
    after = play(live, 20, {5: [(NOTE_OFF, 0, 60, 0)]})
    assert np.abs(after).max() < 1e-6  # (FluidSynth idles at ~1e-8)


def test_a_key_held_when_the_transport_stops_ends_at_its_note_off() -> None:
    """Through the desktop client's monitor: a key pressed while playing is not cut by a
    stop (the player still holds it: the monitor plays, stopped or not); its note-off,
    after the stop, ends it within the synth's release, and the note is recorded up to
    the stop."""
    live = LiveMidi("keys", SYNTH, RATE, BLOCK, lambda frame: frame)
    blocks: list[np.ndarray] = []

    def block(timeline: int | None) -> None:
        out = np.zeros((2, BLOCK), dtype=np.float32)
        live.block(out, timeline, 0.0)
        blocks.append(out)

    for b in range(4):
        block(b * BLOCK)
    live.message(MidiMessage(NOTE_ON, 0, 60, 100, 0.0))
    for b in range(4, 10):
        block(b * BLOCK)
    for _ in range(10):  # stopped, the key still down
        block(None)
    live.message(MidiMessage(NOTE_OFF, 0, 60, 0, 0.0))
    for _ in range(40):
        block(None)
    out = np.concatenate(blocks, axis=1)[0]
    assert np.abs(out[19 * BLOCK:20 * BLOCK]).max() > 0.05  # held through the stop
    assert not out[20 * BLOCK + RELEASE:].any()
    notes = live.take_notes()
    assert [(n.pitch, n.start, n.start + n.length) for n in notes] == [(60, 3 * BLOCK, 10 * BLOCK)]
