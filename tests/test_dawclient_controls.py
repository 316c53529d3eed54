"""The desktop client's control moves (dawclient/controls.py) on a document, without audio."""

from __future__ import annotations

import pytest

from collab.schema import ProjectDocument
from dawclient.controls import ControlError, Controls, Move, parse_move
from dsp_core.effects import EffectSpec
from dsp_core.session import Bus, Send, Session, Track


def test_control_lines_parse_or_say_the_expected_form() -> None:
    assert parse_move("t1 gain_db -12 hold") == Move("t1", "gain_db", -12.0, True)
    assert parse_move("t1 pan 0.5\n") == Move("t1", "pan", 0.5, False)
    for line, words in [("t1 gain_db", "expected 'TRACK PARAM VALUE"),
                        ("t1 gain_db -3 grab", "expected"), ("t1 gain@x 3", "not a lane name"),
                        ("t1 pan left", "is not a number")]:
        with pytest.raises(ControlError, match=words):
            parse_move(line)


def setup(mode: str) -> tuple[ProjectDocument, Controls, list[int]]:
    doc = ProjectDocument.from_session(Session(tracks=[Track("t1")]))
    doc.set_automation_mode("t1", "gain_db", mode)
    frame = [0]
    return doc, Controls(doc, lambda: frame[0]), frame


def test_moves_while_stopped_set_the_static_value_only() -> None:
    doc, controls, _ = setup("touch")
    controls.move(Move("t1", "gain_db", -6.0, False))
    assert doc.track("t1")["gain_db"] == -6.0 and not doc.automation("t1")["gain_db"]["points"]


def test_a_touch_while_playing_writes_the_lane_and_a_stop_ends_it() -> None:
    doc, controls, frame = setup("touch")
    doc.update_transport(playing=True, position=0)
    for f, db in [(1000, -3.0), (2000, -9.0), (3000, -9.0)]:
        frame[0] = f
        controls.move(Move("t1", "gain_db", db, True))
    assert doc.track("t1")["gain_db"] == 0.0               # the lane plays, not the fader
    frame[0] = 5000
    doc.update_transport(playing=False)
    controls.transport_changed()
    points = sorted(p["frame"] for p in doc.automation("t1")["gain_db"]["points"].values())
    assert points[0] == 1000 and points[-1] == 5000 + 12000 and not controls.passes


def test_write_mode_moves_the_static_fader_too_and_off_writes_nothing() -> None:
    doc, controls, frame = setup("write")
    doc.update_transport(playing=True, position=0)
    frame[0] = 4800
    controls.move(Move("t1", "gain_db", -12.0, False))
    assert doc.track("t1")["gain_db"] == -12.0 and doc.automation("t1")["gain_db"]["points"]
    doc, controls, frame = setup("off")
    doc.update_transport(playing=True, position=0)
    controls.move(Move("t1", "gain_db", -12.0, True))
    assert not doc.automation("t1")["gain_db"]["points"] and not controls.passes


def test_sends_effect_parameters_and_bus_faders_are_written_too() -> None:
    doc = ProjectDocument.from_session(Session(
        tracks=[Track("t1", sends=[Send("verb", -10.0)],
                      effects=[EffectSpec("biquad", {"freq": 500.0}, id="lp")])],
        buses=[Bus("verb")]))
    frame = [0]
    controls = Controls(doc, lambda: frame[0])
    controls.move(Move("t1", "fx:lp:freq", 800.0, False))  # stopped: the static value
    assert doc.track("t1")["effects"][0]["params"]["freq"] == 800.0
    for owner, param in [("t1", "send:verb"), ("t1", "fx:lp:freq"), ("verb", "gain_db")]:
        doc.set_automation_mode(owner, param, "touch")
    doc.update_transport(playing=True, position=0)
    for f, moves in [(1000, (-20.0, 900.0, -3.0)), (3000, (-30.0, 2000.0, -6.0))]:
        frame[0] = f
        controls.move(Move("t1", "send:verb", moves[0], True))
        controls.move(Move("t1", "fx:lp:freq", moves[1], True))
        controls.move(Move("verb", "gain_db", moves[2], True))
    frame[0] = 4000
    doc.update_transport(playing=False)
    controls.transport_changed()
    session = doc.to_session()
    lanes = {**session.tracks[0].automation, "bus": session.buses[0].automation["gain_db"]}
    for key, moved in [("send:verb", -30.0), ("fx:lp:freq", 2000.0), ("bus", -6.0)]:
        points = [(p.frame, p.value) for p in lanes[key].sorted_points()]
        assert points[0][0] == 1000 and (3000, moved) in points, (key, points)
    assert doc.track("t1")["sends"]["verb"]["level_db"] == -10.0  # the lane plays, not it
    with pytest.raises(ControlError, match="outside"):
        controls.move(Move("t1", "fx:lp:freq", 5.0, False))


def test_a_peer_s_point_in_a_released_touch_stays_and_an_off_lane_ends_the_pass() -> None:
    """The desktop client's passes follow the server's rules: a stretch written and
    released is left to peers (a point added there stays through later moves), and a
    lane a peer sets to off ends the pass, the next move setting the fader."""
    doc, controls, frame = setup("touch")
    doc.update_transport(playing=True, position=0)
    for f, db, held in [(1000, -3.0, True), (3000, -9.0, False)]:  # a touch, released
        frame[0] = f
        controls.move(Move("t1", "gain_db", db, held))
    peer = doc.add_automation_point("t1", "gain_db", 2000, -1.0)
    frame[0] = 30000
    controls.move(Move("t1", "gain_db", -6.0, True))  # a new touch further on
    assert peer in doc.automation("t1")["gain_db"]["points"]
    doc.set_automation_mode("t1", "gain_db", "off")
    frame[0] = 40000
    controls.move(Move("t1", "gain_db", -20.0, True))
    points = doc.automation("t1")["gain_db"]["points"].values()
    assert max(p["frame"] for p in points) <= 30000 + 12000 and not controls.passes
    assert doc.track("t1")["gain_db"] == -20.0
