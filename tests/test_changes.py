"""Typed change events of the project document (what engines follow)."""

from __future__ import annotations

from collab.changes import StructureChanged, TrackFieldsChanged, TransportChanged
from collab.schema import ProjectDocument
from dsp_core.effects import EffectSpec
from dsp_core.session import Clip, Session, Track


def watched() -> tuple[ProjectDocument, list]:
    document = ProjectDocument.from_session(Session(tracks=[
        Track("t0", clips=[Clip("/x.wav", 0, 100, id="c0")],
              effects=[EffectSpec("gain", {"gain_db": 0.0})]), Track("t1")]))
    seen: list = []
    document.watch(seen.extend)
    return document, seen


def test_a_fader_move_is_one_track_fields_event_with_the_new_value() -> None:
    document, seen = watched()
    document.set_track_gain("t1", -6.0)
    assert seen == [TrackFieldsChanged("t1", {"gain_db": -6.0})]


def test_transport_fields_come_with_their_new_values() -> None:
    document, seen = watched()
    document.update_transport(position=4800, playing=True)
    assert seen == [TransportChanged({"position": 4800, "playing": True})]


def test_clips_effects_and_new_tracks_are_structure_changes() -> None:
    document, seen = watched()
    document.update_clip("c0", position=480)
    document.set_effect_params("t0", 0, gain_db=-3.0)
    document.add_track(Track("t2"))
    assert seen == [StructureChanged("clips"), StructureChanged("tracks"),
                    StructureChanged("tracks")]


def test_markers_change_nothing_an_engine_renders_and_closing_stops_the_events() -> None:
    document, seen = watched()
    document.add_marker(100, "verse")
    assert seen == []
    watch = document.watch(seen.extend)
    watch.close()
    document.set_track_gain("t0", -1.0)
    assert seen == [TrackFieldsChanged("t0", {"gain_db": -1.0})]  # the first watch only
