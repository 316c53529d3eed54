"""MIDI input to hosted LV2 plug-ins (dsp_core.lv2_worker, lv2_host), and LV2
instruments playing MIDI tracks (dsp_core.lv2_instrument)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from helpers_audio import DictLoader
from lv2_helpers import (  # noqa: F401
    INSTRUMENT,
    INSTRUMENT_KEEP,
    LSP_SAMPLER,
    SWH_AMP,
    live_mix_frames,
    lv2_path,
    needs_plugin,
    sampler_hit,
)
from pycrdt import Map

from collab.errors import SchemaError
from collab.schema import ProjectDocument
from dsp_core import EffectSpec, Engine, Session, Track, lv2_catalog, lv2_limits, lv2_state
from dsp_core.errors import ProjectError
from dsp_core.lv2_host import HostedPlugin
from dsp_core.lv2_layout import pack_midi
from dsp_core.midi import ControlEvent, Instrument, MidiClip, Note, SampleZone
from dsp_core.project import load_project, save_project
from dsp_core.session import AutomationLane, AutomationPoint

pytestmark = [pytest.mark.timeout(240), pytest.mark.usefixtures("lv2_path")]

RATE = 48000
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


# ---------------------------------------------------------------- instruments on tracks


def step(delay: int = 0, **params: float) -> Instrument:
    """The test instrument: a DC step of velocity / 127 while a note is held."""
    return Instrument("lv2", {"uri": INSTRUMENT, "delay": float(delay), **params})


NOTES = [Note(60, 100, 1000, 500), Note(62, 127, 5000, 3000)]


def midi_session(instrument: Instrument, notes: list[Note] | None = None,
                 controls: list[ControlEvent] | None = None, **track: object) -> Session:
    """A mono MIDI track panned hard left (its left channel is the instrument's output),
    its clip at frame 100."""
    return Session(sample_rate=RATE, tracks=[Track(
        "keys", pan=-1.0, instrument=instrument, midi_clips=[MidiClip(
            100, 20000, list(NOTES if notes is None else notes), list(controls or []))],
        **track)])  # type: ignore[arg-type]


def expected_steps(frames: int = 12000) -> np.ndarray:
    out = np.zeros(frames, dtype=np.float32)
    out[1100:1600] = np.float32(100 / 127)
    out[5100:8100] = 1.0
    return out


@pytest.mark.parametrize("block", [64, 100, 1024])
@pytest.mark.parametrize("backend", ["native", "reference"])
def test_an_lv2_instrument_plays_each_note_from_its_exact_frame_to_its_note_off(
        block: int, backend: str) -> None:
    with Engine(midi_session(step()), block_size=block, backend=backend) as engine:
        out = engine.render(0, 12000)
        assert engine.plugin_errors() == []
        plugin = engine.graph.tracks[0].source.plugin
        assert _port(plugin, ERRORS) == 0.0 and _port(plugin, EVENTS) == 4.0
    np.testing.assert_array_equal(out[0], expected_steps())
    assert not out[1].any()


def test_its_notes_land_where_the_built_in_sampler_places_them() -> None:
    """The built-in sampler playing a DC sample with an instant envelope is the same
    step: the same events, at the same frames."""
    sampler = Instrument("sampler", {"attack_ms": 0.0, "decay_ms": 0.0, "sustain": 1.0,
                                     "release_ms": 0.0, "gain_db": 0.0},
                         [SampleZone("dc", root=60)])
    loader = DictLoader({"dc": np.ones((1, RATE), dtype=np.float32)})
    built_in = Engine(midi_session(sampler), block_size=100, loader=loader).render(0, 12000)
    with Engine(midi_session(step()), block_size=100) as engine:
        np.testing.assert_array_equal(engine.render(0, 12000), built_in)


def test_the_plugins_latency_is_compensated_by_sending_the_notes_early() -> None:
    with Engine(midi_session(step(delay=37)), block_size=256) as engine:
        assert engine.graph.tracks[0].source.plugin.latency == 37
        assert engine.latency == 0  # nothing else in the mix is delayed
        np.testing.assert_allclose(engine.render(0, 12000)[0], expected_steps(), atol=1e-12)
        # after a seek it pre-rolls the latency: a note starting right there is in time
        np.testing.assert_array_equal(engine.render(5100, 1000)[0], np.ones(1000))


def test_a_seek_chases_controllers_then_the_notes_sounding_across_it() -> None:
    controls = [ControlEvent("cc", 0, 64, number=7), ControlEvent("pitch_bend", 10, 4096)]
    with Engine(midi_session(step(), controls=controls), block_size=128) as engine:
        out = engine.render(5500, 4000)[0]  # inside the second note: it sounds at once
        np.testing.assert_array_equal(out[:2600], np.float32(64 / 127))  # CC 7 first
        assert not out[2600:].any()  # to its own note-off
        # CC 7, bend, the chased note-on and its note-off: not the note that ended
        assert _port(engine.graph.tracks[0].source.plugin, EVENTS) == 4.0
        engine.render(0, 1200)  # from the start: the first note at CC 7 = 64
        out = engine.render(1200, 100)[0]
        np.testing.assert_allclose(out, np.float32(100 / 127) * np.float32(64 / 127), rtol=1e-6)
        assert _port(engine.graph.tracks[0].source.plugin, BEND) == 4096.0
        assert engine.plugin_errors() == []


@pytest.mark.parametrize("delay", [0, 37])
@pytest.mark.parametrize("block", [64, 100, 1024])
def test_a_note_held_across_a_seek_is_heard_from_the_seek_point_in_time(
        delay: int, block: int) -> None:
    """With latency the chased note goes at the pre-roll's first frame, so it is heard
    from the seek point; a note that ended before it is not started (the test instrument
    plays the last note-on: 62 after 60 would give 1.0)."""
    notes = [Note(60, 100, 1000, 10000), Note(62, 127, 3000, 500)]  # 1100..11100, 3100..3600
    with Engine(midi_session(step(delay=delay), notes), block_size=block) as engine:
        engine.render(0, 700)  # playing, then a jump
        out = engine.render(5500, 6000)[0]
        np.testing.assert_array_equal(out[:5600], np.full(5600, 100 / 127, np.float32))
        assert not out[5600:].any()
        plugin = engine.graph.tracks[0].source.plugin
        assert _port(plugin, EVENTS) == 2.0  # the chased note-on and its note-off
        engine.render(7000, 100)  # another seek: chased from the notes as written, once
        assert _port(plugin, EVENTS) == 1.0
        assert engine.plugin_errors() == []


def test_an_edit_after_a_chase_is_no_seek_and_starts_the_chased_note_once() -> None:
    with Engine(midi_session(step()), block_size=128) as engine:
        first = engine.render(5500, 500)[0]  # a seek into 5100..8100: chased
        engine.apply(midi_session(step(), [*NOTES, Note(64, 127, 9000, 100)]))
        rest = engine.render(6000, 4000)[0]
        expected = np.zeros(4500, dtype=np.float32)
        expected[:8100 - 5500] = 1.0
        expected[9100 - 5500:9200 - 5500] = 1.0
        np.testing.assert_array_equal(np.concatenate([first, rest]), expected)
        # the chased note-on and its note-off, the new note's two: nothing sent twice
        assert _port(engine.graph.tracks[0].source.plugin, EVENTS) == 4.0


def test_render_and_live_blocks_agree_through_an_lv2_effect_and_automation() -> None:
    """A bounce (native, 1024-frame blocks) and a live mix's blocks (the twin, 100 frames)
    agree for a MIDI track playing an lv2 instrument into an lv2 effect (swh's amp) and a
    built-in gain, with its fader automated."""
    needs_plugin(SWH_AMP)
    session = midi_session(step(), effects=[
        EffectSpec("lv2", {"uri": SWH_AMP, "gain": -6.0}, id="amp"),
        EffectSpec("gain", {"gain_db": -3.0})])
    session.tracks[0].automation["gain_db"] = AutomationLane("read", [
        AutomationPoint(0, 0.0), AutomationPoint(6000, 0.0), AutomationPoint(8000, -12.0)])
    outs = []
    for backend, block in (("native", 1024), ("reference", 100)):
        with Engine(session, block_size=block, backend=backend) as engine:
            outs.append(engine.render(0, 12000))
            assert engine.plugin_errors() == []
    np.testing.assert_allclose(outs[0], outs[1], atol=1e-6)
    gain = 10 ** (-9.0 / 20)
    np.testing.assert_allclose(outs[0][0, :6000], gain * expected_steps()[:6000], atol=1e-5)
    assert outs[0][0, 7999] < 0.5 * gain  # the fader went down


def test_an_edit_of_the_notes_keeps_the_worker_and_the_notes_still_ending() -> None:
    with Engine(midi_session(step()), block_size=128) as engine:
        source = engine.graph.tracks[0].source
        pid = source.plugin._process.pid
        first = engine.render(0, 5600)[0]
        # the held note (5100..8100) is kept; a new note is added after it
        engine.apply(midi_session(step(), [*NOTES, Note(64, 127, 9000, 100)]))
        second = engine.render(5600, 6400)[0]
        assert engine.graph.tracks[0].source.plugin._process.pid == pid
        np.testing.assert_array_equal(np.concatenate([first, second])[:9000],
                                      expected_steps(9000))
        assert second[9100 - 5600:9200 - 5600].min() == 1.0
        # the sounding note removed: it is released at the edit, not left hanging
        engine.render(5100, 128)
        engine.apply(midi_session(step(), NOTES[:1]))
        assert not engine.render(5228, 1000)[0].any()
        assert engine.graph.tracks[0].source.plugin._process.pid == pid
        # a control edit reaches the same worker too
        engine.apply(midi_session(step(delay=5), NOTES[:1]))
        assert engine.graph.tracks[0].source.plugin._process.pid == pid
    assert not source.plugin.alive  # closing the engine stopped the instrument's worker


def test_a_plugin_without_midi_input_is_refused_as_a_tracks_instrument() -> None:
    with pytest.raises(ProjectError, match="has no MIDI input"):
        midi_session(Instrument("lv2", {"uri": SWH_AMP})).validate()
    with pytest.raises(ProjectError, match="unknown control 'nope'"):
        midi_session(step(nope=1.0)).validate()
    with pytest.raises(ProjectError, match="no sample zones"):
        midi_session(Instrument("lv2", {"uri": INSTRUMENT}, [SampleZone("x")])).validate()


def test_the_document_and_the_project_file_keep_an_lv2_instrument(tmp_path: Path) -> None:
    doc = ProjectDocument.from_session(Session(sample_rate=RATE, tracks=[Track("keys")]))
    doc.set_instrument("keys", step())
    doc.set_instrument_params("keys", delay=12.0)
    with pytest.raises(SchemaError, match="outside"):
        doc.set_instrument_params("keys", delay=500.0)
    with pytest.raises(SchemaError, match="has no MIDI input"):
        doc.set_instrument("keys", Instrument("lv2", {"uri": SWH_AMP}))
    session = doc.to_session()
    assert session.tracks[0].instrument == step(delay=12)
    assert doc.bypassed == []
    save_project(session, tmp_path / "song")
    assert load_project(tmp_path / "song").tracks[0].instrument == step(delay=12)


def test_a_peer_written_instrument_that_cannot_play_here_is_reported() -> None:
    doc = ProjectDocument.from_session(Session(sample_rate=RATE, tracks=[Track("keys")]))
    doc.set_instrument("keys", step())
    doc._track_map("keys")["instrument"]["params"]["uri"] = "urn:not:installed"
    assert doc.to_session().tracks[0].instrument is None  # plays as none
    assert "no installed plug-in has the URI 'urn:not:installed'" in doc.bypassed[0]


def test_an_lv2_instrument_counts_toward_the_caps_on_workers() -> None:
    effects = [EffectSpec("lv2", {"uri": SWH_AMP})] * lv2_limits.MAX_LV2_PER_TRACK
    with pytest.raises(ProjectError, match="holds 5 lv2 plug-ins"):
        midi_session(step(), effects=effects).validate()


def test_an_lsp_sampler_given_a_sample_through_its_state_is_heard_at_the_notes_frame(
        tmp_path: Path) -> None:
    """LSP Sampler Mono loads the sample its state names through the worker extension
    and plays it, unshifted, for its note (57 by default), scaled by velocity."""
    needs_plugin(LSP_SAMPLER)
    sample, state = sampler_hit(tmp_path, RATE)
    sampler = Instrument("lv2", {"uri": LSP_SAMPLER, "state": state})
    notes = [Note(57, 127, 900, 3000), Note(57, 64, 6900, 3000), Note(60, 127, 12900, 100)]
    with Engine(midi_session(sampler, notes), block_size=256) as engine:
        out = engine.render(0, 16000)[0]
        assert engine.plugin_errors() == []
    np.testing.assert_allclose(out[1000:1300], sample[:300], atol=1e-6)
    assert not out[:1000].any()
    np.testing.assert_allclose(out[7000:7300], sample[:300] * np.float32(64 / 127), atol=1e-6)
    assert np.abs(out[4000 + 600:7000]).max() < 1e-6  # note-off: it stops (a short fade)
    assert not out[13000:].any()  # a note no sample is mapped to is silent
    without = Instrument("lv2", {"uri": LSP_SAMPLER})  # no sample: silence
    with Engine(midi_session(without, notes), block_size=256) as engine:
        assert not engine.render(0, 16000).any()



def test_an_lsp_samplers_note_in_the_very_first_block_is_heard(tmp_path: Path) -> None:
    """LSP's sampler misses the MIDI of its first run after starting with a state; the
    host primes it (one silent frame, then a reset), so a note in the first block, or a
    note chased from the playhead, is heard."""
    needs_plugin(LSP_SAMPLER)
    sample, state = sampler_hit(tmp_path, RATE)
    sampler = Instrument("lv2", {"uri": LSP_SAMPLER, "state": state})
    with Engine(midi_session(sampler, [Note(57, 127, 0, 3000)]), block_size=256) as engine:
        out = engine.render(0, 1000)[0]  # the note at 100, in the first block
        assert engine.plugin_errors() == []
    np.testing.assert_allclose(out[100:400], sample[:300], atol=1e-6)
    assert not out[:100].any()


@pytest.mark.parametrize(("playhead", "note_at"), [
    (256, 306),  # playing on: the note in the block after the change
    (9950, 10000),  # a seek: the note in the first block
    (11000, 10000),  # a seek: the note chased from the playhead
])
def test_an_lsp_samplers_first_note_after_a_state_change_plays_the_new_sample(
        tmp_path: Path, playhead: int, note_at: int) -> None:
    """A new state (another sample) for a playing sampler is restored into its running
    worker. LSP's sampler takes the new sample in at its next run and cuts that run's
    notes, so the host primes it again after the restore: the first block's note (or a
    note chased from the playhead) plays the new sample from its first frame."""
    needs_plugin(LSP_SAMPLER)
    _, state = sampler_hit(tmp_path / "loud", RATE)
    quiet, changed = sampler_hit(tmp_path / "quiet", RATE, gain=0.5)
    notes = [Note(57, 127, note_at - 100, 3000)]  # (the clip starts at 100)
    with Engine(midi_session(Instrument("lv2", {"uri": LSP_SAMPLER, "state": state}), notes),
                block_size=256) as engine:
        engine.render(0, 256)
        plugin = engine.graph.tracks[0].source.plugin
        engine.apply(midi_session(Instrument("lv2", {"uri": LSP_SAMPLER, "state": changed}),
                                  notes))
        assert engine.graph.tracks[0].source.plugin is plugin  # restored, not restarted
        out = engine.render(playhead, 1024)[0]
        assert engine.plugin_errors() == []
    onset = max(note_at - playhead, 0)
    assert not out[:onset].any()
    np.testing.assert_allclose(out[onset:], quiet[:1024 - onset], atol=1e-6)


@pytest.mark.parametrize("as_effect", [False, True])
def test_a_note_held_by_the_sustain_pedal_across_the_playhead_is_chased_into_an_lsp_sampler(
        tmp_path: Path, as_effect: bool) -> None:
    """Playing from a playhead after a note's note-off, with the sustain pedal (CC 64) down
    from before the note-off until after the playhead: the note is chased (its note-on
    at the playhead, after the pedal; then its note-off, which the pedal holds) and heard
    from the first block; without the pedal, or with it up before the playhead, nothing
    sounds. LSP's sampler (the installed instrument that plays a note's sample; as an
    instrument and as an effect taking MIDI) ignores CC 64, so its chased note sounds
    for its note-off's fade-out (``fout``, 50 ms here) rather than while held."""
    needs_plugin(LSP_SAMPLER)
    sample, state = sampler_hit(tmp_path, RATE)
    params = {"uri": LSP_SAMPLER, "state": state, "fout": 50.0}
    note = [Note(57, 127, 1000, 1000)]  # on the timeline 1100 to 2100
    down, up = ControlEvent("cc", 500, 127, number=64), ControlEvent("cc", 30000, 0, number=64)
    early_up = ControlEvent("cc", 3000, 0, number=64)  # up at 3100, before the playhead

    def first_blocks(controls: list[ControlEvent]) -> np.ndarray:
        if as_effect:
            song = Session(sample_rate=RATE, tracks=[Track(
                "keys", pan=-1.0, midi_clips=[MidiClip(100, 40000, note, controls)],
                effects=[EffectSpec("lv2", params)])])
        else:
            song = midi_session(Instrument("lv2", params), note, controls)
        with Engine(song, block_size=256) as engine:
            out = engine.render(5000, 1024)[0]  # the playhead at 5000
            assert engine.plugin_errors() == []
        return out

    held = first_blocks([down, up])
    np.testing.assert_allclose(held[:100], sample[:100], atol=1e-6)  # from the playhead
    assert np.abs(held[256:512]).max() > 0.05  # the second block too (the fade)
    assert not first_blocks([]).any()
    assert not first_blocks([down, early_up]).any()


#: Note 60 at 1100..2100 on the timeline, under the sustain pedal down from 600.
PEDALLED = [Note(60, 100, 1000, 1000)]
PEDAL_DOWN = ControlEvent("cc", 500, 127, number=64)


@pytest.mark.parametrize("playhead", [0, 5000])
def test_the_sustain_pedal_holds_a_note_of_the_test_instrument_until_it_goes_up(
        playhead: int) -> None:
    """The test instrument honours CC 64: a note whose note-off comes under the pedal
    sounds until the pedal goes up (15100), in playback from the start and when chased
    from a playhead after its note-off (its note-on then note-off at the playhead, after
    the pedal), well beyond the first blocks; with the pedal up before the playhead, or
    no pedal, it is over."""
    level = np.float32(100 / 127)
    up = ControlEvent("cc", 15000, 0, number=64)
    song = midi_session(step(), PEDALLED, [PEDAL_DOWN, up])
    with Engine(song, block_size=256) as engine:
        out = engine.render(playhead, 20000 - playhead)[0]
        assert engine.plugin_errors() == []
    expected = np.zeros(20000, dtype=np.float32)
    expected[1100:15100] = level
    np.testing.assert_array_equal(out, expected[playhead:])
    early_up = ControlEvent("cc", 3000, 0, number=64)
    for controls in ([PEDAL_DOWN, early_up], []):
        with Engine(midi_session(step(), PEDALLED, controls), block_size=256) as engine:
            out = engine.render(playhead, 20000 - playhead)[0]
        expected[:] = 0.0
        expected[1100:3100 if controls else 2100] = level
        np.testing.assert_array_equal(out, expected[playhead:])


@pytest.mark.parametrize("stop", [False, True])
def test_a_seek_silences_notes_the_plugin_keeps_over_a_reset_held_or_pedalled(
        stop: bool) -> None:
    """The test instrument's ``-keep`` twin keeps its note over a reset, as LSP's
    samplers do. A note held across a block, then a seek (or a stop, then playing) back to the
    start, where nothing sounds and no controller was sent yet: silent from the seek
    point (the note-off the host sends). A note on channel 10 whose note-off came under
    that channel's pedal (the host holds no note then, and no pedal-up is chased): silent
    too (pedal up, All Notes Off, All Sound Off on every channel)."""
    held = [Note(60, 100, 1000, 500)]  # 1100..1600
    pedalled = [Note(60, 100, 1000, 500, channel=9)]
    pedal = [ControlEvent("cc", 0, 127, number=64, channel=9),
             ControlEvent("cc", 9000, 0, number=64, channel=9)]  # 100..9100
    for notes, controls, upto in ((held, [], 1200), (pedalled, pedal, 2048)):
        kept = Instrument("lv2", {"uri": INSTRUMENT_KEEP})
        with Engine(midi_session(kept, notes, controls), block_size=256) as engine:
            played = engine.render(0, upto)[0]
            assert played[-1] == np.float32(100 / 127)  # held, or pedalled since 1600
            if stop:
                engine.reset()
            out = engine.render(0, 1024)[0]
            assert engine.plugin_errors() == []
        assert not out.any()


def lsp_song(state: str, notes: list[Note], as_effect: bool, fout: float) -> Session:
    """A MIDI track playing LSP's sampler (``fout``: its note-off fade-out, ms), as the
    track's instrument or as an effect taking MIDI (the clip at 100, panned left)."""
    params = {"uri": LSP_SAMPLER, "state": state, "fout": fout}
    if not as_effect:
        return midi_session(Instrument("lv2", params), notes)
    return Session(sample_rate=RATE, tracks=[Track(
        "keys", pan=-1.0, midi_clips=[MidiClip(100, 20000, notes, [])],
        effects=[EffectSpec("lv2", params)])])


@pytest.mark.parametrize("fout", [0.0, 10.0])
@pytest.mark.parametrize("as_effect", [False, True])
@pytest.mark.parametrize("stop", [False, True])
def test_a_seek_silences_the_note_an_lsp_sampler_was_playing(
        tmp_path: Path, fout: float, as_effect: bool, stop: bool) -> None:
    """A note playing a 1 s sample, held across a block, then a seek to where no note
    sounds (or a transport stop, ``Engine.reset``, then playing from there): the old
    voice is released at the seek point, so the blocks after it are silent but for the
    sampler's note-off fade-out (``fout``; none at 0). LSP's sampler keeps its voices
    over a reset (deactivate, activate), so the host sends note-offs and All Notes Off
    first. The next note plays as written."""
    needs_plugin(LSP_SAMPLER)
    sample, state = sampler_hit(tmp_path, RATE, frames=RATE)
    notes = [Note(57, 127, 900, 3000), Note(57, 127, 11900, 1000)]  # 1000..4000, 12000..
    with Engine(lsp_song(state, notes, as_effect, fout), block_size=256) as engine:
        np.testing.assert_allclose(engine.render(0, 2048)[0][1000:], sample[:1048])
        if stop:
            engine.reset()
        out = engine.render(9950, 3050)[0]
        assert engine.plugin_errors() == []
    fade = round(fout * RATE / 1000)  # the sampler's fade-out, in frames
    assert np.abs(out[:fade]).max(initial=0.0) <= 0.25  # the old voice fading, at most
    assert not out[fade:2050].any()  # then silence, to the next note
    np.testing.assert_allclose(out[2050:], sample[:1000], atol=1e-6)


@pytest.mark.parametrize("as_effect", [False, True])
def test_playing_on_after_a_stop_restarts_the_held_note_alone(
        tmp_path: Path, as_effect: bool) -> None:
    """A stop inside a note (``Engine.reset``), then playing from that frame: the old
    voice is silenced and the note chased at the same frame is not cut by it (sent
    after), so the output is the note's sample from its start, with nothing added."""
    needs_plugin(LSP_SAMPLER)
    sample, state = sampler_hit(tmp_path, RATE, frames=RATE)
    notes = [Note(57, 127, 900, 30000)]  # 1000..31000
    with Engine(lsp_song(state, notes, as_effect, 0.0), block_size=256) as engine:
        engine.render(0, 2048)
        engine.reset()
        out = engine.render(2048, 4096)[0]
        assert engine.plugin_errors() == []
    np.testing.assert_allclose(out, sample[:4096], atol=1e-6)


def test_a_keyboard_plays_an_lv2_instrument_live_at_the_next_block() -> None:
    from dsp_core.instrument_graph import NOTE_OFF, NOTE_ON
    from dsp_core.live_instrument import LiveInstrument

    live = LiveInstrument(step(delay=3), RATE, 128)
    try:
        assert not live.render(128).any()
        live.push(NOTE_ON, 0, 60, 127)
        block = live.render(128)  # heard from this block's first frame (plus its latency)
        assert not block[:3].any() and (block[3:] == 1.0).all()
        live.push(NOTE_OFF, 0, 60, 0)
        assert (live.render(128)[:3] == 1.0).all() and not live.render(128).any()
        plugin = live.font.plugin
        live.set_instrument(step(delay=0))  # a control edit: a fresh worker of the plug-in
        assert not plugin.alive and live.font.plugin.alive
    finally:
        live.font.close()


def test_files_an_instruments_state_names_are_sources_of_the_session(tmp_path: Path) -> None:
    """An lv2 instrument's state files are project assets, as an lv2 effect's are: listed
    as the session's sources, resolved to the local file before a render, and an
    instrument whose file is refused plays as none with the reason."""
    from dsp_core.sources import SourceRefused, resolve_session, session_refs

    asset = "a" * 64
    state = (
        "@prefix atom: <http://lv2plug.in/ns/ext/atom#> .\n"
        "@prefix lv2: <http://lv2plug.in/ns/lv2core#> .\n"
        "@prefix pset: <http://lv2plug.in/ns/ext/presets#> .\n"
        "@prefix state: <http://lv2plug.in/ns/ext/state#> .\n\n"
        f"<urn:maxbooster:lv2-state>\n\ta pset:Preset ;\n\tlv2:appliesTo <{INSTRUMENT}> ;\n"
        f"\tstate:state [\n\t\t<urn:x:file> <{lv2_state.ASSET_PREFIX}{asset}>\n\t] .\n")
    session = midi_session(Instrument("lv2", {"uri": INSTRUMENT, "state": state}))
    refs = [r for r in session_refs(session) if r.kind == "state"]
    assert [(r.track, r.item, r.source) for r in refs] == [("keys", "instrument", asset)]
    resolved, refused = resolve_session(session, lambda _source: str(tmp_path / "s.wav"))
    assert refused == []
    assert f"<file://{tmp_path / 's.wav'}>" in resolved.tracks[0].instrument.params["state"]

    def refuse(source: str) -> str:
        raise SourceRefused(f"asset {source} is not one of this project's assets")

    resolved, refused = resolve_session(session, refuse)
    assert resolved.tracks[0].instrument is None
    assert str(refused[0]).startswith("lv2 'instrument' on track 'keys' (a file its saved")


def test_the_instruments_of_several_tracks_run_their_blocks_at_the_same_time(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Each block is handed to every instrument's worker before any is awaited (the
    workers then run on all cores at once), and the output is the same."""
    session = midi_session(step())
    session.tracks.append(Track("other", pan=1.0, instrument=step(),
                                midi_clips=[MidiClip(100, 20000, list(NOTES))]))
    with Engine(session, block_size=256) as engine:
        engine.render(0, 256)
        order: list[tuple[str, int]] = []
        send, wait = HostedPlugin._send, HostedPlugin._wait

        def spy_send(self: HostedPlugin, *args: object, **kwargs: object) -> None:
            order.append(("run", id(self)))
            send(self, *args, **kwargs)  # type: ignore[arg-type]

        def spy_wait(self: HostedPlugin, *args: object, **kwargs: object) -> object:
            order.append(("wait", id(self)))
            return wait(self, *args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(HostedPlugin, "_send", spy_send)
        monkeypatch.setattr(HostedPlugin, "_wait", spy_wait)
        out = engine.render(256, 11744)
    first, second = (id(t.source.plugin) for t in engine.graph.tracks)
    assert order[:4] == [("run", first), ("run", second), ("wait", first), ("wait", second)]
    assert len(order) == 4 * 46  # every block so
    np.testing.assert_array_equal(out[1], expected_steps()[256:])


def test_a_crashing_instrument_is_silent_and_reported_while_the_others_play() -> None:
    """Two tracks' instruments run side by side (each block handed to both workers before
    either is awaited); one crashes: it is silent and listed, the other plays on, and an
    edit brings it back."""
    crashing = midi_session(step(crash=1.0))
    crashing.tracks.append(Track("other", pan=1.0, instrument=step(),
                                 midi_clips=[MidiClip(100, 20000, list(NOTES))]))
    with Engine(crashing, block_size=256) as engine:
        out = engine.render(0, 12000)
        errors = engine.plugin_errors()
        assert [(e.owner, e.effect) for e in errors] == [("keys", "instrument")]
        assert "crashed" in errors[0].message
        assert np.abs(out[0]).max() < 1e-12  # (the other track, panned right, leaks 5e-17)
        np.testing.assert_array_equal(out[1], expected_steps())
        assert engine.restart_plugins() == 1  # a fresh worker, which crashes again
        assert len(engine.plugin_errors()) == 1
        fixed = midi_session(step())
        fixed.tracks.append(crashing.tracks[1])
        engine.apply(fixed)  # an edit of a failed instrument starts a fresh worker
        assert engine.plugin_errors() == []
        np.testing.assert_allclose(engine.render(0, 12000)[0], expected_steps(), atol=1e-12)


@pytest.mark.asyncio
async def test_the_live_mix_plays_exactly_the_render_of_an_lv2_instrument(
        tmp_path: Path) -> None:
    """A room's live mix (the document's session, 960-frame blocks paced in real time)
    gives the same samples as a render of that session."""
    def as_int16(audio: np.ndarray) -> np.ndarray:
        return (np.clip(audio.T, -1.0, 1.0) * 32767.0).astype(np.int16)

    song = midi_session(step(delay=7), [Note(60, 100, 1000 + 960 * k, 500) for k in range(20)])
    playing, session, latency = await live_mix_frames(tmp_path, song)
    assert latency == 0
    played = np.concatenate([f.pcm for f in playing])
    with Engine(session) as engine:
        reference = engine.render(playing[0].timeline, played.shape[0])
    assert np.abs(reference).max() > 0.5  # notes were heard
    np.testing.assert_array_equal(played, as_int16(reference))


def test_a_block_with_more_events_than_one_run_carries_is_played_in_pieces() -> None:
    """3002 events in one 4096-frame block (over MAX_EVENTS = 2048): every one arrives, at
    its frame, in two runs."""
    controls = [ControlEvent("cc", frame, 127, number=7) for frame in range(3000)]
    with Engine(midi_session(step(), controls=controls), block_size=4096) as engine:
        out = engine.render(0, 4096)
        plugin = engine.graph.tracks[0].source.plugin
        assert (_port(plugin, EVENTS), _port(plugin, ERRORS)) == (3002.0, 0.0)
    np.testing.assert_array_equal(out[0], expected_steps(4096))


def test_a_block_split_where_several_events_share_a_frame_keeps_them_together() -> None:
    """1500 back-to-back notes (a note-off and a note-on at each frame) in one 4096-frame
    block: a piece that ends at a frame leaves all of that frame's events to the next one
    (one of them in the piece would lie outside it), and the note sounds throughout."""
    notes = [Note(60, 100, frame, 1) for frame in range(1500)]
    with Engine(midi_session(step(), notes), block_size=4096) as engine:
        out = engine.render(0, 4096)
        assert engine.plugin_errors() == []
        assert _port(engine.graph.tracks[0].source.plugin, ERRORS) == 0.0
    expected = np.zeros(4096, dtype=np.float32)
    expected[100:1600] = np.float32(100 / 127)
    np.testing.assert_array_equal(out[0], expected)


def test_a_peer_written_instrument_over_the_caps_plays_as_none() -> None:
    amps = [EffectSpec("lv2", {"uri": SWH_AMP}) for _ in range(lv2_limits.MAX_LV2_PER_TRACK)]
    full = lv2_limits.MAX_LV2_PER_SESSION // lv2_limits.MAX_LV2_PER_TRACK
    doc = ProjectDocument.from_session(Session(sample_rate=RATE, tracks=[
        *(Track(f"fx{i}", effects=list(amps)) for i in range(full)), Track("keys")]))
    doc._track_map("keys")["instrument"] = Map({"kind": "lv2", "params": Map(
        {"uri": INSTRUMENT}), "zones": Map()})  # as a peer may write it
    session = doc.to_session()
    assert session.tracks[-1].instrument is None
    assert doc.bypassed == ["track 'keys' instrument: more than 16 lv2 plug-ins in the "
                            "project; the instrument plays as none"]


@pytest.mark.parametrize("backend", ["native", "reference"])
def test_a_built_in_instrument_plays_into_an_lv2_effect(backend: str) -> None:
    """A synth's track may hold an lv2 effect: the synth is played ahead with the chain
    (the backend's instrument_render) instead of in the C call. Through a plug-in that
    passes its input (the test plug-in at gain 1) it sounds as without it, and an edit
    of another note keeps the sounding one."""
    from lv2_helpers import MISBEHAVE

    synth = Instrument("synth", {"cutoff_hz": 3000.0})
    notes = [Note(60, 100, 1000, 6000), Note(67, 90, 3000, 2000)]
    plain = midi_session(synth, notes)
    hosted = midi_session(synth, notes, effects=[EffectSpec("lv2", {"uri": MISBEHAVE})])
    expected = Engine(plain, block_size=100, backend=backend).render(0, 12000)
    with Engine(hosted, block_size=100, backend=backend) as engine:
        first = engine.render(0, 4000)
        assert engine.graph.tracks[0].instrument is None  # not in the C call
        edited = midi_session(synth, [*notes, Note(72, 80, 9000, 500)],
                              effects=hosted.tracks[0].effects)
        engine.apply(edited)  # the notes sounding at 4000 play on
        second = engine.render(4000, 4000)
        assert engine.plugin_errors() == []
    np.testing.assert_allclose(np.concatenate([first, second], axis=1), expected[:, :8000],
                               atol=1e-6)
    assert np.abs(expected[0, 1000:7000]).max() > 0.05


def test_with_note_chase_off_a_seek_starts_no_note_but_sends_the_controllers() -> None:
    """The project's ``chase_notes`` turned off while playing: the next seek into the
    held note sends no note-on (silence), but CC 7, so the next note plays at 64 / 127."""
    notes = [Note(60, 100, 1000, 10000), Note(62, 127, 7000, 500)]  # 1100..11100, 7100..7600
    song = midi_session(step(), notes, [ControlEvent("cc", 0, 64, number=7)])
    with Engine(song, block_size=128) as engine:
        chased = engine.render(5500, 1000)[0]
        np.testing.assert_array_equal(chased, np.float32(100 / 127) * np.float32(64 / 127))
        engine.apply(replace(song, chase_notes=False))
        out = engine.render(5500, 6000)[0]
        assert not out[:1600].any()  # the held note is not started
        np.testing.assert_array_equal(out[1600:2100], np.float32(64 / 127))
        assert not out[2100:].any()
        assert engine.plugin_errors() == []


def test_with_note_chase_off_a_rebuild_while_playing_keeps_the_worker_and_its_note() -> None:
    """An unrelated edit that builds the whole graph again (a track added) is no seek: the
    same worker plays the held note on (a fresh one, chase off, had it silent)."""
    song = replace(midi_session(step()), chase_notes=False)
    with Engine(song, block_size=128) as engine:
        first = engine.render(0, 6000)[0]  # playing: the second note is held
        graph, plugin = engine.graph, engine.graph.tracks[0].source.plugin
        engine.apply(replace(song, tracks=[*song.tracks, Track("empty")]))
        assert engine.graph is not graph  # the whole graph was built again
        rest = engine.render(6000, 6000)[0]
        np.testing.assert_array_equal(np.concatenate([first, rest]), expected_steps())
        assert engine.graph.tracks[0].source.plugin is plugin and not plugin.failed
        assert engine.plugin_errors() == []
