"""Panic on the live keyboard monitor: every note let go, the sustain pedal lifted, silence
within the release, and the next note plays as on a fresh instrument."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from live_helpers import BLOCK, PANIC, RATE, RELEASE, SUSTAIN, SYNTH, play
from test_soundfont_seek import QUIET, release_frames

from dsp_core.instrument_graph import BEND, CC, NOTE_OFF, NOTE_ON
from dsp_core.live_instrument import LiveInstrument
from dsp_core.midi import Instrument

pytestmark = pytest.mark.timeout(120)
#: Pedal down, key 60 pressed and let go under the pedal, key 64 pressed and held, on two
#: channels; then panic at block 20, and a fresh note (67) from block 40 to 44.
HELD: dict[int, list[tuple[int, ...] | str]] = {
    0: [(CC, 0, SUSTAIN, 127), (CC, 1, SUSTAIN, 127)],
    2: [(NOTE_ON, 0, 60, 100)], 4: [(NOTE_ON, 1, 64, 90)], 10: [(NOTE_OFF, 0, 60, 0)],
    20: [PANIC], 40: [(NOTE_ON, 0, 67, 100)], 44: [(NOTE_OFF, 0, 67, 0)]}
AFTER = {40: HELD[40], 44: HELD[44]}


@pytest.mark.parametrize("backend", ["native", "reference"])
def test_panic_silences_held_and_pedalled_synth_notes_after_their_release(
        backend: str) -> None:
    """Both notes sound up to the panic, are released there (the pedal up) and are silent,
    exactly, from their release after; the next note is the same samples as on an
    instrument that never heard the held ones (so the pedal is up: it ends at its
    note-off)."""
    out = play(LiveInstrument(SYNTH, RATE, BLOCK, backend), 80, HELD)
    assert np.abs(out[19 * BLOCK:20 * BLOCK]).max() > 0.05  # held by the key and the pedal
    assert np.abs(out[20 * BLOCK:20 * BLOCK + 64]).max() > 0.05  # released from there
    assert not out[20 * BLOCK + RELEASE:40 * BLOCK].any()
    fresh = play(LiveInstrument(SYNTH, RATE, BLOCK, backend), 80, AFTER)
    assert np.abs(fresh[40 * BLOCK:44 * BLOCK]).max() > 0.05
    assert not fresh[44 * BLOCK + RELEASE:].any()  # (the pedal would have held it)
    np.testing.assert_array_equal(out[40 * BLOCK:], fresh[40 * BLOCK:])


def test_panic_from_another_thread_acts_at_the_next_block() -> None:
    """Panic called on the MIDI thread while the audio thread renders: the held note ends
    within the release after the block it was queued before."""
    live = LiveInstrument(SYNTH, RATE, BLOCK)
    live.push(NOTE_ON, 0, 60, 100)
    assert np.abs(live.render(BLOCK)).max() > 0.05
    thread = threading.Thread(target=live.panic)
    thread.start()
    thread.join(10)
    out = np.concatenate([live.render(BLOCK).copy() for _ in range(40)])
    assert np.abs(out[:64]).max() > 0.05
    assert not out[RELEASE:].any()


def test_panic_silences_a_soundfont_within_the_release_the_font_gives() -> None:
    """FluidR3's piano, the same keys and pedal: silent (but for the reverb's faint tail)
    after the longest release its voices read from the font (and a 64-frame FluidSynth
    period) from the panic; the next note sounds."""
    release = max(release_frames(60, 100), release_frames(64, 90)) + 64
    out = play(LiveInstrument(Instrument("soundfont"), RATE, BLOCK), 40 + 4 * RATE // BLOCK,
               {b: e for b, e in HELD.items() if b < 40})
    assert np.abs(out[19 * BLOCK:20 * BLOCK]).max() > 5e-3  # still sounding
    assert np.abs(out[20 * BLOCK + release:]).max() < QUIET
    live = LiveInstrument(Instrument("soundfont"), RATE, BLOCK)
    out = play(live, 80, HELD)
    assert np.abs(out[40 * BLOCK:44 * BLOCK]).max() > 5e-3


@pytest.mark.parametrize("backend", ["native", "reference"])
def test_panic_centres_the_pitch_bend_for_the_next_note(backend: str) -> None:
    """A keyboard unplugged with its wheel up: after the panic the next note is the same
    samples as on an instrument whose wheel was never touched, not bent."""
    bent = {0: [(BEND, 0, 0, 8191)], 2: [(NOTE_ON, 0, 60, 100)], 10: [PANIC],
            40: [(NOTE_ON, 0, 60, 100)], 44: [(NOTE_OFF, 0, 60, 0)]}
    out = play(LiveInstrument(SYNTH, RATE, BLOCK, backend), 60, bent)
    fresh = play(LiveInstrument(SYNTH, RATE, BLOCK, backend), 60,
                 {40: bent[40], 44: bent[44]})
    assert np.abs(out[40 * BLOCK:]).max() > 0.05
    np.testing.assert_array_equal(out[40 * BLOCK:], fresh[40 * BLOCK:])


def test_panics_while_nothing_renders_queue_one_reset() -> None:
    """A port switched or closed many times while no audio runs queues one panic's
    events, not one set per call; a key pressed after it gets its own note-off."""
    live = LiveInstrument(SYNTH, RATE, BLOCK)
    live.push(NOTE_ON, 0, 60, 100)
    live.panic()
    once = len(live._queue)
    for _ in range(150):
        live.panic()
    assert len(live._queue) == once
    live.push(NOTE_ON, 0, 64, 100)
    live.panic()
    assert len(live._queue) == 2 * once  # a second reset, with 64's note-off
    live.render(BLOCK)
    live.panic()
    assert len(live._queue) == 16 * 3  # no key held now: pedal, bend, notes off alone
