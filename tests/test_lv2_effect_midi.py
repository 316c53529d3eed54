"""MIDI into LV2 effects: an ``lv2`` effect with a MIDI input on a MIDI track plays the
track's notes at their frames, chased on seeks, lined up with the audio it receives
(dsp_core.lv2_chain, dsp_core.lv2_midi).

The plug-in is LSP Sampler Mono used as an effect (lsp-plugins-lv2, in
scripts/apt-packages.txt): it passes its input (silence here) and plays the sample its
state names for each note 57, from the note-on's frame, scaled by velocity, so where
the track's notes reach it is read off the output sample by sample.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from lv2_helpers import LSP_SAMPLER, live_mix_frames, lv2_path, sampler_hit  # noqa: F401

from dsp_core import EffectSpec, Engine, Session, Track, lv2_catalog
from dsp_core.effects import lookahead_frames
from dsp_core.midi import MidiClip, Note

pytestmark = [pytest.mark.timeout(240), pytest.mark.usefixtures("lv2_path")]

RATE = 48000
SAMPLER = LSP_SAMPLER
FAT1 = "http://gareus.org/oss/lv2/fat1"
#: Note 57 at 900 (velocity 127) and 6900 (64), 3000 frames each, in a clip at 100.
NOTES = [Note(57, 127, 900, 3000), Note(57, 64, 6900, 3000)]
ON, SECOND = 1000, 7000  # the note-ons on the timeline


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[np.ndarray, str]:
    """A 4800-frame sample (a click, a half click, then a step) and the sampler's state
    naming its file."""
    return sampler_hit(tmp_path_factory.mktemp("fx"), RATE)


def session(state: str, notes: list[Note] | None = None,
            before: list[EffectSpec] | None = None) -> Session:
    """A MIDI track without instrument, panned hard left, the sampler in its chain
    (after ``before``)."""
    return Session(sample_rate=RATE, tracks=[Track(
        "keys", pan=-1.0,
        midi_clips=[MidiClip(100, 20000, list(NOTES if notes is None else notes), [])],
        effects=[*(before or []), EffectSpec("lv2", {"uri": SAMPLER, "state": state})])])


def expected(data: np.ndarray, frames: int = 12000) -> np.ndarray:
    """The first 300 frames of each note's sample (after that a note-off may fade it)."""
    out = np.zeros(frames, dtype=np.float32)
    out[ON:ON + 300] = data[:300]
    out[SECOND:SECOND + 300] = data[:300] * np.float32(64 / 127)
    return out


def heads(out: np.ndarray) -> np.ndarray:
    """``out`` where :func:`expected` is defined: up to each note-on, and 300 after."""
    keep = np.zeros(out.shape[0], dtype=bool)
    keep[:ON + 300] = True
    keep[4000 + 600:SECOND + 300] = True  # after the first note's note-off and fade
    return keep


def test_the_catalogue_says_which_effects_take_midi() -> None:
    for uri in (SAMPLER, FAT1):
        info = lv2_catalog.plugin(uri)
        assert info.supported and info.to_dict()["midi_input"] is True
    assert lv2_catalog.plugin("http://plugin.org.uk/swh-plugins/amp").to_dict()[
        "midi_input"] is False


@pytest.mark.parametrize("block", [64, 256, 1000])
@pytest.mark.parametrize("backend", ["native", "reference"])
def test_an_effect_on_a_midi_track_plays_its_notes_at_their_frames(
        sample: tuple[np.ndarray, str], block: int, backend: str) -> None:
    data, state = sample
    with Engine(session(state), block_size=block, backend=backend) as engine:
        out = engine.render(0, 12000)
        assert engine.plugin_errors() == []
    keep = heads(out[0])
    np.testing.assert_allclose(out[0][keep], expected(data)[keep], atol=1e-6)
    with Engine(session(state, notes=[]), block_size=block, backend=backend) as engine:
        assert not engine.render(0, 12000).any()  # no notes: the effect is silent


def test_after_latency_in_the_chain_the_notes_line_up_with_the_effects_audio(
        sample: tuple[np.ndarray, str]) -> None:
    """A lookahead limiter before the sampler delays what the sampler hears by its
    lookahead; the notes are delayed as much, so after the mix's delay compensation the
    samples still start at the notes' frames."""
    data, state = sample
    limiter = EffectSpec("lookahead_limiter", {"lookahead_ms": 5.0})
    with Engine(session(state, before=[limiter]), block_size=256) as engine:
        assert engine.latency == lookahead_frames(5.0, RATE) == 240
        out = engine.render(0, 12000)
    keep = heads(out[0])
    np.testing.assert_allclose(out[0][keep], expected(data)[keep], atol=1e-6)


@pytest.mark.parametrize("block", [64, 1000])
def test_a_seek_into_a_note_chases_it_and_releases_the_notes_held(
        sample: tuple[np.ndarray, str], block: int) -> None:
    data, state = sample
    with Engine(session(state), block_size=block) as engine:
        first = engine.render(2000, 1000)[0]  # the first block: inside the first note
        np.testing.assert_allclose(first[:300], data[:300], atol=1e-6)
        engine.render(0, 1500)  # back to the start: the note is held at 1500
        later = engine.render(5000, 2300)[0]  # a jump past its note-off
        assert np.abs(later[600:SECOND - 5000]).max() < 1e-6  # released at the jump
        np.testing.assert_allclose(later[SECOND - 5000:], data[:300] * np.float32(64 / 127),
                                   atol=1e-6)  # the second note, not chased twice
        assert engine.plugin_errors() == []


def test_an_edit_of_the_notes_keeps_the_effect_playing(
        sample: tuple[np.ndarray, str]) -> None:
    """An edit is no seek: the sounding note plays on, a new note plays at its frame."""
    data, state = sample
    with Engine(session(state), block_size=128) as engine:
        first = engine.render(0, 1200)[0]
        engine.apply(session(state, [*NOTES, Note(57, 127, 10900, 500)]))
        rest = engine.render(1200, 10800)[0]
    out = np.concatenate([first, rest])
    keep = heads(out)
    np.testing.assert_allclose(out[keep], expected(data)[keep], atol=1e-6)
    np.testing.assert_allclose(out[11000:11300], data[:300], atol=1e-6)


def test_render_and_live_blocks_agree_for_an_effect_playing_midi(
        sample: tuple[np.ndarray, str]) -> None:
    """A bounce (native, 1024-frame blocks) and a live mix's blocks (the twin, 100 frames)
    give the same samples."""
    _, state = sample
    outs = []
    for backend, block in (("native", 1024), ("reference", 100)):
        with Engine(session(state), block_size=block, backend=backend) as engine:
            outs.append(engine.render(0, 12000))
    np.testing.assert_allclose(outs[0], outs[1], atol=1e-6)
    assert np.abs(outs[0]).max() == pytest.approx(1.0)


def test_the_events_are_sent_in_pieces_when_a_block_holds_too_many(
        sample: tuple[np.ndarray, str]) -> None:
    """2000 notes in the second 4096-frame block (4000 events, over MAX_EVENTS = 2048): the
    block runs in pieces and the notes after them still arrive at their frames."""
    data, state = sample
    burst = [Note(60, 1, frame, 1) for frame in range(4900, 6900)]  # not mapped
    with Engine(session(state, [*burst, *NOTES]), block_size=4096) as engine:
        out = engine.render(0, 8192)[0]
        assert engine.plugin_errors() == []
    keep = heads(out)[:8192]
    np.testing.assert_allclose(out[keep], expected(data, 8192)[keep], atol=1e-6)


@pytest.mark.asyncio
async def test_the_live_mix_plays_exactly_the_render_of_an_effect_playing_midi(
        sample: tuple[np.ndarray, str], tmp_path: Path) -> None:
    """A room's live mix (the document's session, 960-frame blocks paced in real time)
    gives the same samples as a render of that session from where the mix started."""
    from dawserver.live_mix import FRAME

    _, state = sample
    notes = [Note(57, 127 - 5 * k, 1000 + 960 * k, 700) for k in range(20)]
    playing, played_session, _ = await live_mix_frames(tmp_path, session(state, notes))
    played = np.concatenate([f.pcm for f in playing])
    start = playing[0].timeline
    with Engine(played_session) as engine:  # from FRAME, as the mix: the same chase
        reference = engine.render(FRAME, start - FRAME + played.shape[0])[:, start - FRAME:]
    assert np.abs(reference).max() > 0.5  # the notes were heard
    as_int16 = (np.clip(reference.T, -1.0, 1.0) * 32767.0).astype(np.int16)
    np.testing.assert_array_equal(played, as_int16)


def test_a_seek_sends_a_note_ended_under_the_pedal_held_by_the_pedal() -> None:
    """The chase gives an LV2 plug-in the pedal (CC 64 down, with the controllers), then
    the note that ended under it, note-on and note-off, so the pedal holds it until its
    own CC 64 up; a note ended before the pedal went down is not sent."""
    from dsp_core.instrument_graph import CC, NOTE_OFF, NOTE_ON, midi_events
    from dsp_core.lv2_midi import MidiFeed
    from dsp_core.midi import ControlEvent

    clip = MidiClip(0, 20000, [Note(60, 90, 1000, 1000), Note(62, 90, 0, 100)],
                    [ControlEvent("cc", 500, 127, number=64),
                     ControlEvent("cc", 9000, 0, number=64)])
    events = midi_events([clip], 1.0)
    feed = MidiFeed(events, "test")
    controls = feed.seek(5000)
    assert [(int(e["kind"]), int(e["key"]), int(e["value"])) for e in controls] == [
        (CC, 64, 127)]
    sent = feed.events[feed.cursor:]
    assert [(int(e["frame"]), int(e["kind"]), int(e["key"])) for e in sent] == [
        (5000, NOTE_ON, 60), (5000, NOTE_OFF, 60), (9000, CC, 64)]
    feed.seek(9500)  # the pedal went up at 9000: nothing sounds
    assert feed.events[feed.cursor:].shape == (0,)


@pytest.mark.parametrize("block", [64, 1000])
def test_with_note_chase_off_a_seek_into_a_note_is_silent_until_the_next(
        sample: tuple[np.ndarray, str], block: int) -> None:
    """The project's ``chase_notes`` off: a render from inside the first note sends the
    effect no note-on (silence); the second note plays as written."""
    data, state = sample
    with Engine(replace(session(state), chase_notes=False), block_size=block) as engine:
        assert not engine.render(2000, 1000)[0].any()
        later = engine.render(5000, 2300)[0]
        assert not later[:SECOND - 5000].any()
        np.testing.assert_allclose(later[SECOND - 5000:], data[:300] * np.float32(64 / 127),
                                   atol=1e-6)
        assert engine.plugin_errors() == []
