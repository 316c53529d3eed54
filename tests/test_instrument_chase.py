"""MIDI note chase in the built-in instruments: after a seek (or a render that starts after
0) the notes sounding across the seek point start there; C and the numpy twin agree."""

from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np
import pytest
from test_instruments import BACKENDS, chord_track, load, render_alone

from dsp_core import Engine
from dsp_core.instrument_graph import build_instrument, chase, chased_notes
from dsp_core.midi import ControlEvent, Instrument, MidiClip, Note, SampleZone
from dsp_core.reference_instruments import V_ACTIVE, V_HELD, V_KEY, V_ON, V_VEL
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
    assert int((voices[:, V_ACTIVE] != 0.0).sum()) == 4  # a, c (pedal), b, e: once each
    rest = engine.render(3100 + 1024, 4000 - 1024)
    np.testing.assert_array_equal(np.concatenate([first, rest], axis=1), untouched)


# ---------------------------------------------------------------- the sustain pedal


def pedal_track(kind: str = "synth") -> Track:
    """An A4 (440 Hz) played 1000..3000 under the pedal (down at 500, up at 24000); an
    A5 ended before the pedal went down; on channel 1 an E5 ended under a pedal that
    went up at 5000."""
    notes = [Note(69, 96, 1000, 2000, id="held"), Note(81, 127, 0, 400, id="before"),
             Note(76, 100, 1000, 1000, channel=1, id="other")]
    controls = [ControlEvent("cc", 500, 127, number=64), ControlEvent("cc", 24000, 0, number=64),
                ControlEvent("cc", 500, 100, number=64, channel=1),
                ControlEvent("cc", 5000, 0, number=64, channel=1)]
    zones = [SampleZone("/soft.wav", root=69)]
    return Track("keys", instrument=Instrument(kind, PURE, zones if kind == "sampler" else []),
                 midi_clips=[MidiClip(0, 80000, notes, controls, id="m")])


def test_a_note_ended_under_the_pedal_still_down_is_chased_held() -> None:
    events = build_instrument(pedal_track(), 1.0, RATE, 64, load).events

    def chased(start: int) -> list[tuple[int, bool]]:
        notes, held = chase(events, start)
        return [(int(e["key"]), bool(h)) for e, h in zip(notes, held, strict=True)]

    assert chased(1900) == [(69, False), (76, False)]  # both keys down
    assert chased(2000) == [(69, False), (76, True)]  # E5 released there, its pedal down
    assert chased(3500) == [(69, True), (76, True)]  # released, both pedals down
    assert chased(SEEK) == [(69, True)]  # channel 1's pedal went up at 5000
    assert chased(24000) == []  # the pedal goes up there (controllers come first)
    assert chased_notes(events, SEEK)["key"].tolist() == [69]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("played_before", [False, True])
def test_a_seek_under_the_pedal_sounds_the_held_note_until_the_pedal_goes_up(
        backend: str, played_before: bool) -> None:
    """As in Pro Tools: the A4, released under the pedal still down at the seek point,
    sounds from there, and stops when the pedal goes up (a 1 ms release)."""
    state = build_instrument(pedal_track(), 1.0, RATE, 1024, load)
    if played_before:
        render_alone(state, backend, RATE, 1024, 3000)
    out = render_alone(state, backend, RATE, 1024, 8192, start=SEEK).astype(np.float64)
    assert level_at(out[:1024], 440.0) == pytest.approx(96 / 127, rel=0.02)
    assert level_at(out[:1024], 880.0) < 0.01 and level_at(out[:1024], 659.26) < 0.01
    up = 24000 - SEEK
    assert level_at(out[up - 1024:up], 440.0) == pytest.approx(96 / 127, rel=0.02)
    assert not out[up + 100:].any()  # released with the pedal


@pytest.mark.parametrize("kind", ["synth", "sampler"])
@pytest.mark.parametrize("block", [64, 1000])
def test_c_and_twin_agree_on_a_chase_under_the_pedal(kind: str, block: int) -> None:
    c_state = build_instrument(pedal_track(kind), 1.0, RATE, block, load)
    twin = copy.deepcopy(c_state)
    outputs = []
    for state, backend in ((c_state, "native"), (twin, "reference")):
        render_alone(state, backend, RATE, block, 1000, start=1500)
        first = render_alone(state, backend, RATE, block, block, start=3500)  # a seek
        held = state.voices[state.voices[:, V_ACTIVE] != 0.0]
        assert sorted(held[:, V_KEY].tolist()) == [69.0, 76.0]
        assert (held[:, V_HELD] == 1.0).all()  # both chased held by their pedals
        rest = render_alone(state, backend, RATE, block, 2000, start=3500 + block)
        outputs.append(np.concatenate([first, rest]))  # through channel 1's pedal-up
        outputs.append(render_alone(state, backend, RATE, block, 6000, start=SEEK))
    assert np.abs(outputs[0]).max() > 0.05 and np.abs(outputs[1]).max() > 0.05
    for ours, theirs in zip(outputs[:2], outputs[2:], strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=2e-6)
    np.testing.assert_allclose(c_state.voices, twin.voices, rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(c_state.state, twin.state)


def test_a_soundfont_seek_under_the_pedal_sounds_the_note_it_holds() -> None:
    """FluidSynth gets the pedal with the controllers, then the note ended under it as a
    note-on and a note-off: the pedal holds it (a piano C4), heard from the seek point,
    and lets it go when it goes up (no note left hanging); without the pedal the same
    seek is silent."""
    from dsp_core.soundfont import default_font  # FluidR3_GM, scripts/apt-packages.txt

    assert default_font() is not None
    note = Note(60, 100, 1000, 4000)

    def seek(pedal: bool) -> np.ndarray:
        controls = [ControlEvent("cc", 500, 127, number=64),
                    ControlEvent("cc", SEEK + 4096, 0, number=64)] if pedal else []
        track = Track("gm", channels=2, instrument=Instrument("soundfont"),
                      midi_clips=[MidiClip(0, 4 * RATE, [note], controls)])
        return Engine(Session(tracks=[track]), block_size=256).render(SEEK, 4096 + RATE)

    held = seek(True)
    assert np.sqrt(np.mean(held[0, :256] ** 2)) > 2e-3  # heard in the first block
    spectrum = np.abs(np.fft.rfft(held[0, :4096] * np.hanning(4096)))
    hz = np.fft.rfftfreq(4096, 1 / RATE)
    assert hz[np.argmax(spectrum * (hz > 200))] == pytest.approx(261.6, abs=12)
    late = held[0, -4096:]  # a second after the pedal went up
    assert np.sqrt(np.mean(late ** 2)) < 1e-4  # released (a hanging key: about 4e-3)
    assert np.abs(seek(False)).max() < 1e-4


# ---------------------------------------------------------------- the project's switch

#: A new A5 after :data:`SEEK`, played at the CC 7 (volume) set before the seek.
LATER = SEEK + 1000


def pad_volume_and_later(pad: bool = True) -> Track:
    """:func:`pad_and_stab`'s pad (or none), CC 7 = 64 at 500, an A5 from :data:`LATER`."""
    track = pad_and_stab()
    clip = track.midi_clips[0]
    clip.notes = [*(clip.notes[:1] if pad else []), Note(81, 127, LATER, 3000, id="later")]
    clip.controls = [ControlEvent("cc", 500, 64, number=7)]
    return track


@pytest.mark.parametrize("backend", BACKENDS)
def test_with_note_chase_off_a_seek_starts_no_note_but_chases_the_controllers(
        backend: str) -> None:
    """Off, the pad held across the seek is not started (exact silence up to the next
    note); the next note plays at the chased volume: the same bits as the project without
    the pad played straight from 0.  On (the default), the pad sounds at once."""
    def render(chase: bool, start: int = SEEK, pad: bool = True) -> np.ndarray:
        session = Session(tracks=[pad_volume_and_later(pad)], chase_notes=chase)
        out = Engine(session, block_size=100, backend=backend).render(start, LATER + 4000 - start)
        return out[:, SEEK - start:]

    off = render(False)
    assert not off[:, :LATER - SEEK].any()
    assert np.abs(off[:, LATER - SEEK:]).max() > 0.05
    np.testing.assert_array_equal(off, render(False, start=0, pad=False))
    assert np.abs(render(True)[:, :100]).max() > 0.05
    assert Session().chase_notes  # the default: chase, as before the setting


@pytest.mark.parametrize("backend", BACKENDS)
def test_turning_note_chase_off_while_playing_takes_effect_at_the_next_seek(
        backend: str) -> None:
    session = Session(tracks=[pad_and_stab()])
    engine = Engine(session, block_size=256, backend=backend)
    engine.render(0, 3000)  # playing: the pad is held
    engine.apply(replace(session, chase_notes=False))
    assert np.abs(engine.render(3000, 256)).max() > 0.05  # no seek: the pad plays on
    assert not engine.render(SEEK, 2048).any()  # a jump: the pad is not restarted
    engine.apply(replace(session, chase_notes=True))
    assert np.abs(engine.render(SEEK + 5000, 256)).max() > 0.05  # on again: chased


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("chase_notes", [False, True])
def test_a_rebuild_while_playing_is_no_seek_and_the_held_pad_plays_on(
        backend: str, chase_notes: bool) -> None:
    """An unrelated edit that builds the whole graph again (a track added) is no seek: the
    pad held across it plays on, the same render as without the edit, chase on or off."""
    session = Session(tracks=[pad_and_stab()], chase_notes=chase_notes)

    def render(edit: bool) -> np.ndarray:
        engine = Engine(session, block_size=256, backend=backend)
        engine.render(0, 10240)  # playing: the pad is held
        graph = engine.graph
        if edit:
            engine.apply(replace(session, tracks=[*session.tracks, Track("empty")]))
            assert engine.graph is not graph  # the whole graph was built again
        return engine.render(10240, 4096)

    edited = render(True)
    assert np.abs(edited).max() > 0.3
    np.testing.assert_allclose(edited, render(False), atol=1e-6)
