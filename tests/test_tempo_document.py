"""The tempo map and clips' time keys in the shared document."""

from __future__ import annotations

import math

import pytest

from collab.errors import SchemaError
from collab.schema import ProjectDocument
from dsp_core import Clip, Session, Track
from dsp_core.tempo import MeterChange, TempoChange, TempoMap


def _sync(a: ProjectDocument, b: ProjectDocument) -> None:
    a.doc.apply_update(b.doc.get_update(a.doc.get_state()))
    b.doc.apply_update(a.doc.get_update(b.doc.get_state()))


def test_concurrent_tempo_and_meter_changes_all_survive_the_merge() -> None:
    alice = ProjectDocument.from_session(Session(tracks=[Track("t")]))
    bob = ProjectDocument()
    _sync(alice, bob)
    alice.set_tempo_change("tempo-a", 8, 90)
    bob.set_tempo_change("tempo-b", 16, 140)
    bob.set_meter_change("meter-b", 4, 7, 8)
    alice.set_tempo_change("tempo-c", 16, 100)  # the same beat as bob's
    _sync(alice, bob)
    for peer in (alice, bob):
        tmap = peer.tempo_map()
        assert {t.id for t in tmap.tempos} == {"tempo-a", "tempo-b", "tempo-c"}
        assert tmap.bpm_at_beat(9) == 90 and tmap.bpm_at_beat(17) == 100  # larger id wins
        assert tmap.meter_at_bar(5).numerator == 7
    assert alice.tempo_map().to_dict() == bob.tempo_map().to_dict()
    alice.remove_time_change("tempo-c")
    _sync(alice, bob)
    assert bob.tempo_map().bpm_at_beat(17) == 140


def test_a_document_without_changes_plays_the_transport_tempo() -> None:
    doc = ProjectDocument.from_session(Session())
    doc.update_transport(tempo=96.0, beats_per_bar=3)
    tmap = doc.to_session().tempo
    assert tmap.bpm_at_beat(0) == 96 and tmap.meter_at_bar(0).numerator == 3


def test_the_session_round_trips_tempo_and_clip_time_keys() -> None:
    clip = Clip("a" * 64, 0, 48000, id="c1", crossfade=100, stretch=1.5, semitones=-2.0,
                warp=((0, 0), (1000, 1500)))
    loop = Clip("b" * 64, 40000, 48000, id="c2", follow_tempo=True, source_bpm=98.0)
    session = Session(tracks=[Track("t", clips=[clip, loop])],
                      tempo=TempoMap([TempoChange(0, 128, "x")], [MeterChange(0, 6, 8, "m")]))
    back = ProjectDocument.from_session(session).to_session()
    assert back.tracks[0].clips == [clip, loop]
    assert back.tempo.to_dict() == session.tempo.to_dict()


def test_time_edits_are_checked_and_bad_peer_values_play_unstretched() -> None:
    doc = ProjectDocument.from_session(Session(tracks=[Track("t", clips=[
        Clip("a" * 64, 0, 100, id="c")])]))
    doc.update_clip("c", stretch=2.0, semitones=3.0)
    assert doc.to_session().tracks[0].clips[0].stretch == 2.0
    with pytest.raises(SchemaError, match=r"stretch must be in \[0.25, 4\]"):
        doc.update_clip("c", stretch=10.0)
    with pytest.raises(SchemaError, match="follow_tempo needs the source's tempo"):
        doc.update_clip("c", follow_tempo=True)
    with pytest.raises(SchemaError, match="tempo must be"):
        doc.set_tempo_change("t1", 0, 2000)
    with pytest.raises(SchemaError, match="no tempo or meter change"):
        doc.remove_time_change("nothing")
    with doc.transaction():  # what a careless peer could write
        doc._roots["clips"]["c"]["warp"] = [[5, 0], [1, 1]]
        doc._roots["tempos"]["bad"] = {"id": "bad", "beat": -1, "bpm": "fast"}
    clip = doc.to_session().tracks[0].clips[0]
    assert (clip.stretch, clip.warp) == (1.0, ())
    assert doc.tempo_map().bpm_at_beat(0) == 120
    # an Infinity overflowed int(): the whole document failed to read, not just the clip
    with doc.transaction():
        doc._roots["clips"]["c"]["warp"] = [[math.inf, 0], [9, 9]]
    assert doc.to_session().tracks[0].clips[0].warp == ()
    with pytest.raises(SchemaError, match="clip warp must be"):
        doc.update_clip("c", warp=[[math.inf, 0], [9, 9]])


@pytest.mark.parametrize("transport", [{"tempo": "fast"}, {"tempo": math.nan},
                                       {"beats_per_bar": math.nan}, {"beat_unit": math.inf},
                                       {"beats_per_bar": "three"}])
def test_a_bad_transport_tempo_or_meter_plays_as_120_in_4_4(transport: dict) -> None:
    # a document without tempo changes plays its transport's tempo and meter: a value a
    # peer wrote badly there raised, and every render of the project failed
    doc = ProjectDocument.from_session(Session())
    with doc.transaction():
        for key, value in transport.items():
            doc._roots["transport"][key] = value
        doc._roots["meters"]["inf"] = {"id": "inf", "bar": math.inf, "numerator": 3,
                                       "denominator": 4}
    tempo_map = doc.tempo_map()
    assert tempo_map.bpm_at_beat(0) == 120.0
    assert [(m.numerator, m.denominator) for m in tempo_map.meters] == [(4, 4)]
    assert doc.to_session().tempo.bpm_at_beat(0) == 120.0


def test_a_good_transport_meter_survives_a_bad_transport_tempo() -> None:
    doc = ProjectDocument.from_session(Session())
    with doc.transaction():
        doc._roots["transport"]["tempo"] = "fast"
        doc._roots["transport"]["beats_per_bar"] = 7
        doc._roots["transport"]["beat_unit"] = 8
    assert [(m.numerator, m.denominator) for m in doc.tempo_map().meters] == [(7, 8)]


def test_a_ramp_survives_the_document_and_older_entries_hold() -> None:
    session = Session(tempo=TempoMap([TempoChange(0, 90, "a", ramp=True),
                                      TempoChange(8, 120, "b")]))
    doc = ProjectDocument.from_session(session)
    assert doc.to_json()["tempos"]["a"]["ramp"] is True
    assert "ramp" not in doc.to_json()["tempos"]["b"]  # written only when it ramps
    assert doc.to_session().tempo.to_dict()["tempos"] == session.tempo.to_dict()["tempos"]
    assert doc.tempo_map().bpm_at_beat(4) == pytest.approx(105.0)
    doc.set_tempo_change("a", 0, 90)  # the switch off: the tempo holds again
    assert doc.tempo_map().bpm_at_beat(4) == 90.0
    with pytest.raises(SchemaError, match="ramp must be true or false"):
        doc.set_tempo_change("a", 0, 90, ramp="yes")  # type: ignore[arg-type]
