"""MIDI input to hosted LV2 plug-ins (dsp_core.lv2_worker, lv2_host), and LV2
instruments playing MIDI tracks (dsp_core.lv2_instrument)."""

from __future__ import annotations

import numpy as np
import pytest
from lv2_helpers import INSTRUMENT, SWH_AMP, lv2_path, needs_plugin  # noqa: F401

from dsp_core import lv2_catalog
from dsp_core.errors import ProjectError
from dsp_core.lv2_host import HostedPlugin
from dsp_core.lv2_layout import pack_midi

pytestmark = [pytest.mark.timeout(240), pytest.mark.usefixtures("lv2_path")]

RATE = 48000
LSP_SAMPLER = "http://lsp-plug.in/plugins/lv2/sampler_mono"
X42_FAT1 = "http://gareus.org/oss/lv2/fat1"  # autotune: audio in, MIDI in (an effect)
#: Port indices of the test instrument (tests/lv2_bundle/instrument.c).
EVENTS, ERRORS, BEND = 5, 6, 7


def _port(plugin: HostedPlugin, index: int) -> float:
    return float(plugin.area[plugin.layout.control(0, index)])


def test_instruments_are_told_apart_from_effects() -> None:
    needs_plugin(LSP_SAMPLER)
    test = lv2_catalog.plugin(INSTRUMENT)
    assert test.playable and not test.supported  # no audio input: not an effect
    assert test.midi_input is not None and test.midi_input.symbol == "midi_in"
    sampler = lv2_catalog.plugin(LSP_SAMPLER)  # its dry inputs get silence
    assert sampler.playable and sampler.midi_input is not None
    assert sampler.midi_input.minimum_size == 406016  # rsz:minimumSize, honoured
    amp = lv2_catalog.plugin(SWH_AMP)
    assert not amp.playable and "no MIDI input" in amp.instrument_problems[0]
    fat1 = lv2_catalog.plugin(X42_FAT1)
    assert not fat1.playable and "not an lv2:InstrumentPlugin" in fat1.instrument_problems[0]
    assert lv2_catalog.plugin(INSTRUMENT).to_dict()["instrument"] is True


def test_a_plugin_without_midi_input_is_refused_as_an_instrument() -> None:
    with pytest.raises(ProjectError, match="cannot play a MIDI track here: has no MIDI input"):
        lv2_catalog.validate_spec({"uri": SWH_AMP}, instrument=True)
    with pytest.raises(ProjectError, match="cannot be hosted here"):  # nor as an effect
        lv2_catalog.validate_spec({"uri": INSTRUMENT})


@pytest.mark.parametrize("block", [64, 256])
def test_midi_events_reach_the_plugin_at_their_frames_in_a_well_formed_sequence(
        block: int) -> None:
    """The test instrument checks every sequence it gets (type, frame-time unit, 8-byte
    aligned events that fill the body, frames inside the block and in order) and the
    output capacity given before each run; its output steps to velocity / 127 at a
    note-on's frame and back to 0 at the note-off's."""
    plugin = HostedPlugin({"uri": INSTRUMENT}, 1, RATE, block, instrument=True)
    try:
        out = np.zeros((1, 4 * block), dtype=np.float32)
        on, bend, off = block + 7, block + 8, 3 * block - 1
        notes = pack_midi(np.array([on, bend, off]), np.array([0x90, 0xE0, 0x80]),
                          np.array([60, 0x00, 60]), np.array([100, 0x50, 0]))
        for start in range(0, out.shape[1], block):
            inside = (notes[:, 0] >= start) & (notes[:, 0] < start + block)
            events = notes[inside].copy()
            events[:, 0] -= start
            assert plugin.process(out[:, start:], block, events), plugin.failed
        expected = np.zeros(out.shape[1], dtype=np.float32)
        expected[on:off] = np.float32(100 / 127)
        np.testing.assert_array_equal(out[0], expected)
        assert (_port(plugin, EVENTS), _port(plugin, ERRORS)) == (3.0, 0.0)
        assert _port(plugin, BEND) == (0x50 << 7) - 8192
    finally:
        plugin.close()


def test_a_block_without_events_gets_an_empty_sequence() -> None:
    plugin = HostedPlugin({"uri": INSTRUMENT}, 2, RATE, 128, instrument=True)
    try:
        out = np.ones((2, 128), dtype=np.float32)  # an instrument writes over the buffer
        for _ in range(3):
            assert plugin.process(out, 128), plugin.failed
        assert not out.any() and _port(plugin, ERRORS) == 0.0 and _port(plugin, EVENTS) == 0.0
    finally:
        plugin.close()
