"""A take placed over older clips cuts them away, leaving a session the engine accepts."""

from __future__ import annotations

from collab.schema import ProjectDocument
from collab.takes import place_take
from dsp_core.session import Clip, Session, Track


def document(*clips: Clip) -> ProjectDocument:
    return ProjectDocument.from_session(Session(tracks=[Track("t", clips=list(clips)),
                                                        Track("other")]))


def spans(doc: ProjectDocument) -> list[tuple]:
    return [(c["source"], c["position"], c["length"], c["offset"], c["fade_in"],
             c["fade_out"]) for c in doc.clips_of("t")]


def test_a_take_on_an_empty_stretch_is_just_added() -> None:
    doc = document(Clip("old", 0, 100, id="a"))
    clip_id = place_take(doc, "t", "take", 200, 50)
    assert spans(doc) == [("old", 0, 100, 0, 0, 0), ("take", 200, 50, 0, 0, 0)]
    assert doc.clip(clip_id)["source"] == "take"


def test_clips_under_a_take_are_trimmed_removed_and_moved() -> None:
    doc = document(Clip("a", 0, 100, fade_in=10, fade_out=30, id="a"),
                   Clip("b", 120, 20, id="b"),
                   Clip("c", 150, 100, offset=5, fade_out=20, id="c"))
    place_take(doc, "t", "take", 90, 80)
    assert spans(doc) == [("a", 0, 90, 0, 10, 0), ("take", 90, 80, 0, 0, 0),
                          ("c", 170, 80, 25, 0, 20)]
    doc.to_session().validate()


def test_a_take_inside_a_long_clip_splits_it() -> None:
    doc = document(Clip("long", 100, 1000, offset=7, fade_in=20, fade_out=40, id="l"))
    place_take(doc, "t", "take", 300, 100)
    assert spans(doc) == [("long", 100, 200, 7, 20, 0), ("take", 300, 100, 0, 0, 0),
                          ("long", 400, 700, 307, 0, 40)]
    doc.to_session().validate()
    assert doc.clips_of("other") == []
