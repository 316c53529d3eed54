"""MIDI note chase in the built-in instruments: after a seek (or a render that starts after
0) the notes sounding across the seek point start there; C and the numpy twin agree."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from test_instruments import BACKENDS, chord_track, load, render_alone

from dsp_core import Engine
from dsp_core.instrument_graph import build_instrument, chased_notes
from dsp_core.midi import Instrument, MidiClip, Note, SampleZone
from dsp_core.reference_instruments import V_ACTIVE, V_KEY, V_ON, V_VEL
from dsp_core.session import Session, Track

RATE = 48000
SEEK = 20000
#: A pure tone: a sine alone, no envelope, the filter open.
PURE = {"osc1": "sine", "osc_mix": 0.0, "attack_ms": 0.0, "decay_ms": 0.0, "sustain": 1.0,
        "release_ms": 1.0, "cutoff_hz": 20000.0, "resonance": 0.0, "filter_env": 0.0,
        "gain_db": 0.0}


def pad_and_stab(kind: str = "synth") -> Track:
    """A long A4 (440 Hz) held across :data:`SEEK`, and an A5 stab that ended before it."""
    notes = [Note(69, 96, 1000, 60000, id="pad"), Note(81, 127, 0, 2000, id="stab")]
    zones = [SampleZone("/sine.wav", root=69)]
    return Track("keys", instrument=Instrument(kind, PURE, zones if kind == "sampler" else []),
                 midi_clips=[MidiClip(0, 80000, notes, id="m")])


def level_at(block: np.ndarray, freq: float) -> float:
    """The amplitude of ``block`` at ``freq`` (a Hann-windowed DFT bin)."""
    window = np.hanning(block.shape[0])
    k = np.arange(block.shape[0])
    return float(2 * abs(np.sum(block * window * np.exp(-2j * np.pi * freq / RATE * k)))
                 / window.sum())


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("played_before", [False, True])
def test_a_seek_into_a_held_note_sounds_it_at_once_at_its_pitch(
        backend: str, played_before: bool) -> None:
    state = build_instrument(pad_and_stab(), 1.0, RATE, 1024, load)
    if played_before:  # a jump during playback, else a render that starts at SEEK
        render_alone(state, backend, RATE, 1024, 3000)
    first = render_alone(state, backend, RATE, 1024, 1024, start=SEEK).astype(np.float64)
    assert np.sqrt(np.mean(first ** 2)) > 0.4  # 96/127 / sqrt(2): the whole block sounds
    assert level_at(first, 440.0) == pytest.approx(96 / 127, rel=0.02)
    assert level_at(first, 880.0) < 0.01  # the stab ended before the seek: not started
    voices = state.voices[state.voices[:, V_ACTIVE] != 0.0]
    assert voices[:, V_KEY].tolist() == [69.0] and voices[0, V_ON] == SEEK  # a fresh note-on
    assert voices[0, V_VEL] == pytest.approx(96 / 127)


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_chased_sampler_reads_its_zone_from_the_start(backend: str) -> None:
    sine = np.sin(np.arange(RATE, dtype=np.float32) * 0.05)[None, :]
    state = build_instrument(pad_and_stab("sampler"), 1.0, RATE, 512,  # A4 at its root
                             lambda path, rate: sine)
    out = render_alone(state, backend, RATE, 512, 512, start=SEEK)
    np.testing.assert_allclose(out, sine[0, :512] * np.float32(96 / 127), atol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_chased_note_is_the_note_started_at_the_seek_point(backend: str) -> None:
    """Controllers first, then the note as if it began there; it ends at its own end."""
    chased = chord_track(voices=8)  # at 3100: notes a, b (over by 5910) and e sound
    fresh = copy.deepcopy(chased)   # e alone, written to start at 3100
    fresh.midi_clips[0].notes = [Note(48, 64, 3100 - 250, 7750 - 3100, id="e")]
    ours, theirs = (Engine(Session(tracks=[track]), block_size=100, backend=backend,
                           loader=load).render(3100, 6000) for track in (chased, fresh))
    assert np.abs(ours[:, :100]).max() > 0.05
    after = 5910 - 3100  # a and b are over (20 ms releases): e alone, the same bits
    assert np.abs(ours[:, after:]).max() > 0.05
    np.testing.assert_array_equal(ours[:, after:], theirs[:, after:])
    assert not ours[:, 7750 + 960 - 3100:].any()  # e released at its end (20 ms)


def test_notes_pair_with_note_offs_first_in_first_out() -> None:
    notes = [Note(60, 10, 0, 100), Note(60, 20, 50, 500), Note(60, 30, 200, 50),
             Note(62, 40, 0, 1000, channel=3), Note(62, 50, 0, 90, channel=4)]
    state = build_instrument(Track("t", instrument=Instrument("synth"),
                                   midi_clips=[MidiClip(0, 2000, notes)]), 1.0, RATE, 64, load)
    # at 220: note 1 ended at 100, notes 2 and 3 sound (the note-off at 250 pairs with 2)
    got = chased_notes(state.events, 220)
    assert [(int(e["channel"]), int(e["key"]), int(e["value"])) for e in got] == [
        (3, 62, 40), (0, 60, 20), (0, 60, 30)]
    assert (got["frame"] == 220).all()
    assert chased_notes(state.events, 0).shape == (0,)      # nothing before the start
    assert chased_notes(state.events, 1000).shape == (0,)   # a note ending there is over


@pytest.mark.parametrize("kind", ["synth", "sampler"])
@pytest.mark.parametrize("rate, block", [(48000, 64), (48000, 100), (96000, 512)])
def test_c_and_twin_agree_on_a_render_with_a_seek(kind: str, rate: int, block: int) -> None:
    """Two voices for three chased notes (a stolen one), the pedal down at the seek."""
    params = {"osc1": "saw", "osc2": "sine", "resonance": 0.9} if kind == "synth" else {}
    c_state = build_instrument(chord_track(kind, voices=2, **params), rate / 48000, rate,
                               block, load)
    twin = copy.deepcopy(c_state)
    head, seek = int(2000 * rate / 48000), int(3100 * rate / 48000)
    frames = int(6000 * rate / 48000)
    outputs = []
    for state, backend in ((c_state, "native"), (twin, "reference")):
        render_alone(state, backend, rate, block, head)
        outputs.append(render_alone(state, backend, rate, block, frames, start=seek))
    assert np.abs(outputs[0][:int(0.01 * rate)]).max() > 0.02  # heard from the seek
    np.testing.assert_allclose(outputs[0], outputs[1], rtol=0, atol=2e-6)
    np.testing.assert_allclose(c_state.voices, twin.voices, rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(c_state.state, twin.state)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_render_from_a_seek_is_the_same_bits_whatever_the_block_size(backend: str) -> None:
    session = Session(tracks=[chord_track(voices=3)])
    renders = [Engine(copy.deepcopy(session), block_size=block, backend=backend,
                      loader=load).render(3100, 5000) for block in (64, 100, 512)]
    assert np.abs(renders[0][:, :480]).max() > 0.05
    for other in renders[1:]:
        np.testing.assert_array_equal(other, renders[0])
    engine = Engine(copy.deepcopy(session), block_size=100, backend=backend, loader=load)
    engine.render(0, 2000)  # playing elsewhere first: the jump gives the same bits
    np.testing.assert_array_equal(engine.render(3100, 5000), renders[0])


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_edit_after_a_chase_is_no_seek_and_starts_no_note_twice(backend: str) -> None:
    session = Session(tracks=[chord_track()])
    untouched = Engine(copy.deepcopy(session), block_size=128, backend=backend,
                       loader=load).render(3100, 4000)
    engine = Engine(copy.deepcopy(session), block_size=128, backend=backend, loader=load)
    first = engine.render(3100, 1024)
    edited = copy.deepcopy(session)
    edited.tracks[0].midi_clips[0].notes.append(Note(90, 100, 8000, 100, id="later"))
    engine.apply(edited)
    voices = engine.graph.tracks[0].instrument.voices
    assert int((voices[:, V_ACTIVE] != 0.0).sum()) == 3  # a (pedal), b, e: once each
    rest = engine.render(3100 + 1024, 4000 - 1024)
    np.testing.assert_array_equal(np.concatenate([first, rest], axis=1), untouched)
