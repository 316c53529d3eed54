"""MIDI clips that follow the tempo map (opt-in ``follow_tempo``): notes written at
``source_bpm`` land on the same beats after a tempo change."""

from __future__ import annotations

import numpy as np
import pytest

from collab.schema import ProjectDocument
from dsp_core.engine import Engine
from dsp_core.errors import ProjectError
from dsp_core.instrument_graph import NOTE_ON, midi_events
from dsp_core.midi import Instrument, MidiClip, Note, clip_from_dict, clip_to_dict
from dsp_core.session import Session, Track
from dsp_core.tempo import TempoChange, TempoMap

RATE = 48000
# 120 bpm for beats 0-3 (24000 frames a beat), 60 bpm from beat 4 (48000 frames a beat)
SLOWER = TempoMap([TempoChange(0, 120), TempoChange(4, 60)])
BEAT_FRAMES_120 = RATE // 2


def on_beats(follow: bool, position: int = 0) -> MidiClip:
    """A note on each of 7 beats, written at 120 bpm."""
    notes = [Note(60, 100, k * BEAT_FRAMES_120, 2400, id=f"n{k}") for k in range(7)]
    return MidiClip(position, 20 * RATE, notes, follow_tempo=follow,
                    source_bpm=120.0 if follow else 0.0, id="m1")


def onsets(events: np.ndarray) -> list[int]:
    return [int(e[0]) for e in events if e[1] == NOTE_ON]


def test_notes_that_follow_the_tempo_land_on_the_beats_after_a_change() -> None:
    followed = onsets(midi_events([on_beats(True)], 1.0, SLOWER, RATE))
    assert followed == [0, 24000, 48000, 72000, 96000, 144000, 192000]
    assert onsets(midi_events([on_beats(False)], 1.0, SLOWER, RATE)) == [
        k * BEAT_FRAMES_120 for k in range(7)]  # frames as written without the opt-in
    # a clip placed after the change counts its beats from its own start
    late = onsets(midi_events([on_beats(True, position=96000)], 1.0, SLOWER, RATE))
    assert late == [96000 + k * 48000 for k in range(7)]
    # at a render rate twice the session's, the same beats in render frames
    assert onsets(midi_events([on_beats(True)], 2.0, SLOWER, RATE)) == [
        2 * f for f in followed]


def test_a_following_note_is_as_long_as_its_beats_at_the_new_tempo() -> None:
    clip = MidiClip(0, 20 * RATE, [Note(60, 100, 4 * BEAT_FRAMES_120, BEAT_FRAMES_120)],
                    follow_tempo=True, source_bpm=120.0)
    events = midi_events([clip], 1.0, SLOWER, RATE)
    assert [int(e[0]) for e in events] == [96000, 144000]  # one beat at 60 bpm


def test_follow_tempo_needs_a_source_bpm_and_round_trips() -> None:
    with pytest.raises(ProjectError, match="source_bpm"):
        clip_from_dict({"position": 0, "length": 10, "follow_tempo": True}, "clip")
    data = clip_to_dict(on_beats(True))
    assert (data["follow_tempo"], data["source_bpm"]) == (True, 120.0)
    again = clip_from_dict(data, "clip")
    assert (again.follow_tempo, again.source_bpm) == (True, 120.0)
    assert "follow_tempo" not in clip_to_dict(on_beats(False))  # old files stay the same


def test_the_document_carries_the_opt_in() -> None:
    document = ProjectDocument()
    document.add_track(Track("keys", instrument=Instrument("synth")))
    clip_id = document.add_midi_clip("keys", on_beats(False))
    with pytest.raises(Exception, match="source_bpm"):
        document.update_midi_clip(clip_id, follow_tempo=True)
    document.update_midi_clip(clip_id, follow_tempo=True, source_bpm=120.0)
    clip = document.midi_clip(clip_id)
    assert (clip.follow_tempo, clip.source_bpm) == (True, 120.0)


def _onset_frames(audio: np.ndarray, threshold: float = 1e-3) -> list[int]:
    """Frames where sound starts after at least 2000 silent frames."""
    loud = np.flatnonzero(np.abs(audio).max(axis=0) > threshold)
    starts = [int(loud[0])] if loud.size else []
    starts += [int(b) for a, b in zip(loud, loud[1:], strict=False) if b - a > 2000]
    return starts


def test_the_engine_plays_the_notes_on_the_beats_and_follows_a_tempo_change() -> None:
    synth = Instrument("synth", {"attack_ms": 0.0, "release_ms": 5.0, "voices": 4})
    steady = TempoMap([TempoChange(0, 120)])
    session = Session(name="s", sample_rate=RATE, tempo=steady, tracks=[
        Track("keys", instrument=synth, midi_clips=[on_beats(True)])])
    engine = Engine(session, sample_rate=RATE)
    # onsets within a few frames (the waveform rises from 0 through the threshold)
    assert _onset_frames(engine.render(0, 4 * RATE)) == pytest.approx(
        [k * BEAT_FRAMES_120 for k in range(7)], abs=16)
    session.tempo = SLOWER  # the document's tempo change: the engine follows it
    engine.apply(session)
    found = _onset_frames(engine.render(0, 5 * RATE))
    assert found == pytest.approx([0, 24000, 48000, 72000, 96000, 144000, 192000], abs=16)


def test_following_notes_land_on_the_beats_of_a_tempo_ramp() -> None:
    ramp = TempoMap([TempoChange(0, 120, ramp=True), TempoChange(8, 60)])
    clip = MidiClip(0, 20 * RATE, [Note(60, 100, k * BEAT_FRAMES_120, 2400, id=f"n{k}")
                                   for k in range(10)], follow_tempo=True, source_bpm=120.0)
    got = onsets(midi_events([clip], 1.0, ramp, RATE))
    assert got == [round(ramp.beat_to_frame(k, RATE)) for k in range(10)]
    gaps = np.diff(got)
    assert all(np.diff(gaps[:8]) > 0)  # the beats spread out as the tempo slows
