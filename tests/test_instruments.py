"""The MIDI instruments: C against the numpy twin, timing, voices, and the track's chain."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from dsp_core import EffectSpec, Engine, native_backend, reference_instruments
from dsp_core.instrument_graph import InstrumentState, build_instrument
from dsp_core.midi import ControlEvent, Instrument, MidiClip, Note, SampleZone
from dsp_core.session import Bus, Clip, Send, Session, Track

BACKENDS = {"native": native_backend.instrument_render,
            "reference": reference_instruments.instrument_render}
SAMPLES = {
    "/low.wav": np.full((1, 20000), 0.25, dtype=np.float32),
    "/soft.wav": np.sin(np.arange(30000, dtype=np.float32) * 0.05)[None, :] * 0.5,
    "/loud.wav": np.sin(np.arange(30000, dtype=np.float32) * 0.05)[None, :].repeat(2, 0),
}


def load(path: str, rate: int) -> np.ndarray:
    return SAMPLES[path]


def chord_track(kind: str = "synth", voices: int = 8, **params) -> Track:
    notes = [Note(60, 100, 0, 3000, id="a"), Note(64, 80, 700, 4000, id="b"),
             Note(67, 127, 1333, 900, id="c"), Note(71, 30, 1333, 200, channel=2, id="d"),
             Note(48, 64, 2500, 5000, id="e")]
    controls = [ControlEvent("pitch_bend", 900, 3000), ControlEvent("cc", 1500, 90, number=7),
                ControlEvent("cc", 2000, 100, number=64), ControlEvent("cc", 4100, 0, number=64)]
    zones = [SampleZone("/low.wav", root=48, key_lo=0, key_hi=59),
             SampleZone("/soft.wav", root=64, key_lo=60, key_hi=127, vel_hi=90),
             SampleZone("/loud.wav", root=64, key_lo=60, key_hi=127, vel_lo=91)]
    instrument = Instrument(kind, {"voices": voices, "release_ms": 20.0, **params},
                            zones if kind == "sampler" else [])
    return Track("keys", instrument=instrument,
                 midi_clips=[MidiClip(250, 9000, notes, controls, "m")])


def render_alone(state: InstrumentState, backend: str, rate: int, block: int,
                 frames: int, start: int = 0) -> np.ndarray:
    out = np.zeros(frames, dtype=np.float32)
    scratch = np.zeros(block, dtype=np.float32)
    for at in range(0, frames, block):
        n = min(block, frames - at)
        BACKENDS[backend](state, rate, start + at, n, scratch)
        out[at:at + n] = scratch[:n]
    return out


@pytest.mark.parametrize("kind", ["synth", "sampler"])
@pytest.mark.parametrize("rate, block", [(48000, 64), (48000, 100), (96000, 512)])
def test_c_and_twin_agree_on_output_and_state(kind: str, rate: int, block: int) -> None:
    params = {"osc1": "saw", "osc2": "sine", "resonance": 0.9} if kind == "synth" else {}
    c_state = build_instrument(chord_track(kind, voices=3, **params), rate / 48000, rate,
                               block, load)
    twin = copy.deepcopy(c_state)
    frames = int(12000 * rate / 48000)
    ours = render_alone(c_state, "native", rate, block, frames)
    theirs = render_alone(twin, "reference", rate, block, frames)
    assert np.abs(ours).max() > 0.05
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=2e-6)
    np.testing.assert_allclose(c_state.voices, twin.voices, rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(c_state.state, twin.state)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_note_starts_at_its_frame_inside_a_block_whatever_the_block_size(backend) -> None:
    # a saw alone; its band-limited step starts at 0 on the note's frame, -1 + a bit after
    track = Track("t", instrument=Instrument("synth", {"attack_ms": 0.0, "osc_mix": 0.0}),
                  midi_clips=[MidiClip(1000, 4000, [Note(57, 127, 37, 500)])])
    renders = [render_alone(build_instrument(track, 1.0, 48000, block, load), backend, 48000,
                            block, 3000) for block in (64, 100, 512)]
    assert not renders[0][:1038].any() and renders[0][1038] != 0.0
    for other in renders[1:]:
        np.testing.assert_array_equal(other, renders[0])


def test_the_oldest_voice_is_stolen_when_all_are_busy() -> None:
    notes = [Note(60, 100, 0, 5000), Note(62, 100, 10, 5000), Note(64, 100, 20, 5000)]
    state = build_instrument(Track("t", instrument=Instrument("synth", {"voices": 2}),
                                   midi_clips=[MidiClip(0, 6000, notes)]), 1.0, 48000, 64, load)
    render_alone(state, "native", 48000, 64, 64)
    assert sorted(state.voices[:, 1]) == [62.0, 64.0]


def test_the_sustain_pedal_holds_notes_until_it_is_lifted() -> None:
    notes = [Note(60, 100, 0, 100)]
    pedal = [ControlEvent("cc", 0, 127, number=64), ControlEvent("cc", 2000, 0, number=64)]
    state = build_instrument(Track("t", instrument=Instrument("synth", {"release_ms": 1.0}),
                                   midi_clips=[MidiClip(0, 6000, notes, pedal)]),
                             1.0, 48000, 64, load)
    out = render_alone(state, "native", 48000, 64, 4000)
    assert np.abs(out[1800:2000]).max() > 0.01     # held past the note's end
    assert np.abs(out[2100:]).max() == 0.0          # released at the pedal, 48-frame tail
    assert state.voices[:, 0].sum() == 0.0


def test_sampler_picks_zones_by_key_and_velocity_layer() -> None:
    def level(pitch: int, velocity: int) -> float:
        track = Track("t", instrument=Instrument("sampler", {"attack_ms": 0.0, "decay_ms": 0.0,
                                                             "sustain": 1.0}, [
            SampleZone("/low.wav", root=48, key_lo=0, key_hi=59),
            SampleZone("/soft.wav", root=64, key_lo=60, key_hi=127, vel_hi=90),
            SampleZone("/loud.wav", root=64, key_lo=60, key_hi=127, vel_lo=91)]),
            midi_clips=[MidiClip(0, 4000, [Note(pitch, velocity, 0, 4000)])])
        out = render_alone(build_instrument(track, 1.0, 48000, 256, load), "native", 48000,
                           256, 2000)
        return float(np.abs(out).max()) / (velocity / 127 * 10 ** (-6 / 20))

    assert level(48, 127) == pytest.approx(0.25, rel=1e-4)   # the low zone, at its root
    assert level(64, 60) == pytest.approx(0.5, rel=1e-3)     # soft layer
    assert level(64, 120) == pytest.approx(1.0, rel=1e-3)    # loud layer (stereo, averaged)


def test_a_seek_stops_voices_and_chases_controllers_and_notes() -> None:
    state = build_instrument(chord_track(), 1.0, 48000, 64, load)
    render_alone(state, "native", 48000, 64, 640)
    render_alone(state, "native", 48000, 64, 64, start=5000)
    assert state.state[3] == pytest.approx(3000 / 8192 * 2.0)   # the bend before 5000
    assert state.state[3 + 16] == pytest.approx((90 / 127) ** 2)  # CC 7
    # the voices of [0, 640) stopped; note e (2750 ... 7750) restarts at 5000, note b
    # (ended at 4950) does not
    assert state.voices[:, 0].sum() == 1.0
    assert state.voices[state.voices[:, 0] == 1.0, 1:5].tolist() == [[48.0, 0.0, 64 / 127,
                                                                      5000.0]]


@pytest.mark.parametrize("backend", ["native", "reference"])
def test_the_instrument_feeds_the_tracks_chain_fader_and_sends(backend) -> None:
    def render(track: Track) -> np.ndarray:
        session = Session(tracks=[track], buses=[Bus("fx", gain_db=-6.0)])
        return Engine(session, block_size=128, backend=backend, loader=load).render(0, 6000)

    dry = render(chord_track())
    assert np.abs(dry).max() > 0.05
    quieter = chord_track()
    quieter.effects = [EffectSpec("gain", {"gain_db": -20.0})]
    np.testing.assert_allclose(render(quieter), dry * 0.1, atol=2e-6)
    sent = chord_track()
    sent.gain_db = -float("inf")
    sent.sends = [Send("fx", 0.0, pre_fader=True)]
    left = render(sent)[0]
    assert np.abs(left).max() > 0.01           # heard through the bus alone
    muted = chord_track()
    muted.mute = True
    assert np.abs(render(muted)).max() == 0.0


def test_engine_backends_agree_on_many_midi_tracks() -> None:
    tracks = []
    for i in range(10):
        track = chord_track("synth" if i % 2 else "sampler", voices=4)
        track.id, track.pan = f"k{i}", (i - 5) / 5
        track.effects = [EffectSpec("biquad", {"shape": "lowpass", "freq": 3000.0})]
        tracks.append(track)
    session = Session(tracks=tracks)
    ours = Engine(session, block_size=256, backend="native", loader=load).render(0, 8000)
    theirs = Engine(session, block_size=256, backend="reference", loader=load).render(0, 8000)
    np.testing.assert_allclose(ours, theirs, atol=2e-5)


def test_editing_a_note_rebuilds_only_that_track() -> None:
    session = Session(tracks=[chord_track(), Track("other")])
    engine = Engine(session, block_size=128, loader=load)
    engine.render(0, 1000)
    edited = copy.deepcopy(session)
    edited.tracks[0].midi_clips[0].notes[0].pitch = 61
    before = engine.graph.tracks[0].instrument
    engine.apply(edited)
    assert engine.graph.tracks[0].instrument is not before
    assert engine.graph.tracks[0].instrument.events["key"][0] == 61


def test_the_event_array_has_the_c_struct_layout() -> None:
    from native._engine import ffi

    from dsp_core.instrument_graph import EVENT_DTYPE

    assert EVENT_DTYPE.itemsize == ffi.sizeof("daw_midi_event")
    assert [EVENT_DTYPE.fields[n][1] for n in EVENT_DTYPE.names] == [
        ffi.offsetof("daw_midi_event", n) for n in EVENT_DTYPE.names]


@pytest.mark.parametrize("backend", ["native", "reference"])
def test_an_edit_elsewhere_in_the_clip_does_not_cut_sounding_notes(backend) -> None:
    session = Session(tracks=[chord_track()])
    untouched = Engine(session, block_size=128, backend=backend, loader=load).render(0, 6000)
    engine = Engine(copy.deepcopy(session), block_size=128, backend=backend, loader=load)
    first = engine.render(0, 1024)
    edited = copy.deepcopy(session)
    edited.tracks[0].midi_clips[0].notes.append(Note(90, 100, 8000, 100, id="later"))
    edited.tracks[0].instrument.params["cutoff_hz"] = 2000.0   # same sound, restated
    engine.apply(edited)
    rest = engine.render(1024, 6000 - 1024)
    np.testing.assert_array_equal(np.concatenate([first, rest], axis=1), untouched)


def test_deleting_a_sounding_note_releases_it() -> None:
    session = Session(tracks=[Track("t", instrument=Instrument("synth", {"release_ms": 1.0}),
                                    midi_clips=[MidiClip(0, 48000, [Note(60, 100, 0, 40000)])])])
    engine = Engine(session, block_size=128, loader=load)
    engine.render(0, 1024)
    edited = copy.deepcopy(session)
    edited.tracks[0].midi_clips[0].notes = []
    engine.apply(edited)
    after = engine.render(1024, 1024)
    assert np.abs(after[:, :20]).max() > 0.0        # releasing from where it was
    assert np.abs(after[:, 100:]).max() == 0.0      # 48-frame release, then silence


def test_the_saw_is_band_limited() -> None:
    """Against the ideal saw (its harmonics below Nyquist), the PolyBLEP saw is much closer
    than the naive ``2p - 1`` one: most of the aliasing is gone."""
    rate, pitch, frames = 48000, 100, 4800  # 2637 Hz: 9 harmonics fit under Nyquist
    track = Track("t", instrument=Instrument("synth", {
        "attack_ms": 0.0, "decay_ms": 0.0, "sustain": 1.0, "osc_mix": 0.0, "cutoff_hz": 20000.0,
        "resonance": 0.0, "filter_env": 0.0, "gain_db": 0.0}),
        midi_clips=[MidiClip(0, frames, [Note(pitch, 127, 0, frames)])])
    state = build_instrument(track, 1.0, rate, 512, load)
    out = render_alone(state, "native", rate, 512, frames).astype(np.float64)
    freq = 440.0 * 2 ** ((pitch - 69) / 12)
    phase = (freq / rate * np.arange(frames)) % 1.0
    ideal = -2 / np.pi * sum(np.sin(2 * np.pi * h * phase) / h
                             for h in range(1, int(rate / 2 / freq) + 1))
    naive = 2 * phase - 1
    # the filter (20 kHz low-pass) touches both alike: compare through the same filter
    from scipy.signal import lfilter
    b, a = state.voices[0, 12:15], np.r_[1.0, state.voices[0, 15:17]]
    ideal_f, naive_f = lfilter(b, a, ideal), lfilter(b, a, naive)
    part = slice(480, frames)
    ours = np.sqrt(np.mean((out[part] - ideal_f[part]) ** 2))
    theirs = np.sqrt(np.mean((naive_f[part] - ideal_f[part]) ** 2))
    assert ours < 0.5 * theirs


def test_a_bounce_keeps_the_last_notes_release() -> None:
    track = Track("t", instrument=Instrument("synth", {"release_ms": 100.0}),
                  midi_clips=[MidiClip(0, 4800, [Note(60, 100, 0, 4800)])])
    engine = Engine(Session(tracks=[track]), block_size=256, loader=load)
    assert engine.length == 4800 + 4800
    out = engine.render(0, engine.length + 200)
    assert np.abs(out[:, 4800:5000]).max() > 0.01           # the release is in the bounce
    assert out[:, 9500:9600].any() and not out[:, 9600:].any()  # and ends with it


def test_a_midi_track_over_one_plain_audio_clip_still_plays_its_instrument() -> None:
    """A mono MIDI track with no inserts or sends whose one mono clip covers the block
    looks plain to the mixer; it must still run its voices (C and twin agree)."""
    track = chord_track()
    track.channels = 1
    track.clips = [Clip("/low.wav", 0, 20000)]
    session = Session(tracks=[track])
    ours = Engine(session, block_size=128, backend="native", loader=load).render(0, 6000)
    theirs = Engine(session, block_size=128, backend="reference", loader=load).render(0, 6000)
    np.testing.assert_allclose(ours, theirs, atol=2e-5)
    clip_only = Session(tracks=[Track("a", channels=1, clips=[Clip("/low.wav", 0, 20000)])])
    audio = Engine(clip_only, block_size=128, backend="native", loader=load).render(0, 6000)
    assert np.abs(ours - audio).max() > 0.05  # the synth is heard over the clip


def test_a_note_on_a_channel_past_15_keeps_its_voice_inside_the_state() -> None:
    from dsp_core.reference_instruments import V_CH

    state = build_instrument(chord_track(), 1.0, 48000, 128, load)
    state.events["channel"][:] = 40 + np.arange(len(state.events))  # an unchecked caller
    twin = copy.deepcopy(state)
    ours = render_alone(state, "native", 48000, 128, 4000)
    theirs = render_alone(twin, "reference", 48000, 128, 4000)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=2e-6)
    assert 0 < state.voices[:, V_CH].max() <= 15
    np.testing.assert_allclose(state.voices, twin.voices, rtol=1e-9, atol=1e-9)
