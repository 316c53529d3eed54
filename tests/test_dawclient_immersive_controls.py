"""The desktop client's immersive route lines (dawclient/immersive_controls.py) on a document."""

from __future__ import annotations

import pytest

from collab.schema import ProjectDocument
from dawclient.controls import ControlError
from dawclient.immersive_controls import apply_route_line, is_route_line
from dsp_core.immersive import ImmersiveRoute
from dsp_core.session import Session, Track


def document() -> ProjectDocument:
    return ProjectDocument.from_session(Session(tracks=[Track("t1"), Track("t2", channels=2)]))


def test_route_lines_are_told_from_fader_moves() -> None:
    assert is_route_line("t1 object 30") and is_route_line("t2 bed U+045 U-045\n")
    assert is_route_line("t1 none")
    assert not is_route_line("t1 gain_db -3 hold") and not is_route_line("t1")


def test_object_lines_place_then_move_one_coordinate_at_a_time() -> None:
    doc = document()
    apply_route_line(doc, "t1 object 30 15")
    assert doc.immersive("t1") == ImmersiveRoute("object", azimuth=30.0, elevation=15.0)
    apply_route_line(doc, "t1 object -90")  # only the azimuth moves
    assert doc.immersive("t1") == ImmersiveRoute("object", azimuth=-90.0, elevation=15.0)
    assert doc.track("t1")["immersive"] == {"kind": "object", "azimuth": -90.0,
                                            "elevation": 15.0, "distance": 1.0}


def test_bed_and_none_lines_route_and_clear() -> None:
    doc = document()
    apply_route_line(doc, "t2 bed U+045 U-045")
    assert doc.immersive("t2") == ImmersiveRoute("bed", channels=("U+045", "U-045"))
    apply_route_line(doc, "t2 none")
    assert doc.immersive("t2") is None and "immersive" not in doc.track("t2")


@pytest.mark.parametrize("line,words", [
    ("t1 object", "expected 'TRACK object"), ("t1 object left", "'left' is not a number"),
    ("t1 object 400", "azimuth"), ("t1 bed X+999", r"bed channel 'X\+999'"),
    ("t1 none now", "expected"),
    ("t9 object 0", "no track with id 't9'"), ("t2 bed M+030", "channel"),
])
def test_bad_lines_say_what_was_wrong(line: str, words: str) -> None:
    doc = document()
    with pytest.raises(ControlError, match=words):
        apply_route_line(doc, line)
    assert doc.immersive("t1") is None and doc.immersive("t2") is None  # nothing written
