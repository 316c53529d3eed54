"""Automation lanes in the model, the collaborative document and the project file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pycrdt import Array, Doc

from collab.errors import SchemaError
from collab.schema import ProjectDocument
from dsp_core.errors import ProjectError
from dsp_core.project import FORMAT_VERSION, load_project, save_project, session_from_dict
from dsp_core.session import AutomationLane, AutomationPoint, Session, Track


def sync(a: ProjectDocument, b: ProjectDocument) -> None:
    a.doc.apply_update(b.doc.get_update(a.doc.get_state()))
    b.doc.apply_update(a.doc.get_update(b.doc.get_state()))


def peer(of: ProjectDocument) -> ProjectDocument:
    other = ProjectDocument(Doc())
    other.doc.apply_update(of.doc.get_update())
    return other


def two_peers() -> tuple[ProjectDocument, ProjectDocument]:
    a = ProjectDocument.from_session(Session(tracks=[Track("t")]))
    return a, peer(a)


def test_points_are_added_moved_removed_and_the_mode_set() -> None:
    doc, _ = two_peers()
    first = doc.add_automation_point("t", "gain_db", 1000, -60.0)
    second = doc.add_automation_point("t", "gain_db", 2000, 0.0, curve="hold")
    doc.move_automation_point("t", "gain_db", first, frame=1500, value=-30.0)
    doc.set_automation_mode("t", "gain_db", "latch")
    lane = doc.to_session().tracks[0].automation["gain_db"]
    assert lane.mode == "latch" and lane.reads
    assert [(p.id, p.frame, p.value, p.curve) for p in lane.points] == [
        (first, 1500, -30.0, "linear"), (second, 2000, 0.0, "hold")]
    doc.remove_automation_point("t", "gain_db", first)
    assert list(doc.automation("t")["gain_db"]["points"]) == [second]


@pytest.mark.parametrize("call, words", [
    (lambda d: d.add_automation_point("t", "gain_db", 0, 30.0), "outside [-144, 24]"),
    (lambda d: d.add_automation_point("t", "pan", 0, -1.5), "outside [-1, 1]"),
    (lambda d: d.add_automation_point("t", "pan", -5, 0.0), "frame must be an integer in [0,"),
    (lambda d: d.add_automation_point("t", "pan", 10**30, 0.0), "frame must be an integer in"),
    (lambda d: d.add_automation_point("t", "pan", 0, 0.0, curve="bezier"), "curve 'bezier'"),
    (lambda d: d.add_automation_point("t", "colour", 0, 0.0), "cannot be automated"),
    (lambda d: d.add_automation_point("t", "mute", 0, 0.5), "a mute point's value is 0"),
    (lambda d: d.set_automation_mode("t", "pan", "loop"), "mode 'loop' is not one of"),
    (lambda d: d.move_automation_point("t", "pan", "pt-nope", value=0.0), "no pan automation"),
    (lambda d: d.add_automation_point("x", "pan", 0, 0.0), "no track or bus with id 'x'"),
])
def test_bad_automation_edits_are_refused_and_change_nothing(call, words: str) -> None:
    doc, _ = two_peers()
    before = doc.to_json()
    with pytest.raises(SchemaError, match=words.replace("[", r"\[").replace("]", r"\]")):
        call(doc)
    assert doc.to_json() == before


def test_two_peers_adding_points_to_one_lane_keep_both() -> None:
    a, b = two_peers()
    pa = a.add_automation_point("t", "gain_db", 100, -10.0)
    pb = b.add_automation_point("t", "gain_db", 200, -20.0)
    sync(a, b)
    for doc in (a, b):
        points = doc.to_session().tracks[0].automation["gain_db"].points
        assert [(p.id, p.frame) for p in points] == [(pa, 100), (pb, 200)]


def test_a_move_in_time_and_a_value_change_of_one_point_both_win() -> None:
    a, b = two_peers()
    point = a.add_automation_point("t", "pan", 100, 0.0)
    sync(a, b)
    a.move_automation_point("t", "pan", point, frame=400)
    b.move_automation_point("t", "pan", point, value=0.5)
    sync(a, b)
    assert a.automation("t") == b.automation("t")
    assert a.automation("t")["pan"]["points"][point] == {"frame": 400, "value": 0.5,
                                                         "curve": "linear"}


def test_a_track_written_before_automation_gets_its_lanes_on_first_edit() -> None:
    doc, _ = two_peers()
    del doc._track_map("t")["automation"]
    assert doc.to_session().tracks[0].automation == {}
    doc.add_automation_point("t", "pan", 10, 1.0)
    assert doc.to_session().tracks[0].automation["pan"].points[0].value == 1.0


def test_an_out_of_range_point_from_a_peer_is_left_out_of_the_mix() -> None:
    doc, _ = two_peers()
    good = doc.add_automation_point("t", "gain_db", 10, -6.0)
    bad = doc.add_automation_point("t", "gain_db", 20, 0.0)
    doc._track_map("t")["automation"]["gain_db"]["points"][bad]["value"] = 99.0
    points = doc.to_session().tracks[0].automation["gain_db"].points
    assert [p.id for p in points] == [good]


@pytest.mark.parametrize(("broken", "key", "value"), [
    ("gain_db", "points", "x"), ("gain_db", "points", [1.0]), ("gain_db", "mode", [1.0]),
    ("pan", None, "x"),
])
def test_a_lane_a_peer_wrote_as_another_shape_is_left_out(broken: str, key: str | None,
                                                          value: object) -> None:
    # a string or an array where a map belongs raised AttributeError: every render and
    # automation write of the project answered 500, whichever lane they named
    doc, _ = two_peers()
    doc.add_automation_point("t", "pan", 10, 0.5)
    doc.add_automation_point("t", "gain_db", 10, -6.0)
    written = Array(value) if isinstance(value, list) else value
    with doc.transaction():
        lanes = doc._track_map("t")["automation"]
        if key is None:
            lanes[broken] = written
        else:
            lanes[broken][key] = written
    kept = "pan" if broken == "gain_db" else "gain_db"
    automation = doc.to_session().tracks[0].automation
    assert [p.frame for p in automation[kept].points] == [10]
    lane = automation.get(broken)
    assert lane is None or lane.mode == "off" or not lane.points
    doc.add_automation_point("t", "mute", 0, 1.0)  # another lane is still written
    assert [p.value for p in doc.to_session().tracks[0].automation["mute"].points] == [1.0]


def test_a_track_whose_automation_a_peer_wrote_as_text_plays_without_it() -> None:
    doc, _ = two_peers()
    doc.add_automation_point("t", "gain_db", 10, -6.0)
    with doc.transaction():
        doc._track_map("t")["automation"] = "x"
    assert doc.to_session().tracks[0].automation == {}


def test_lanes_survive_the_session_document_round_trip() -> None:
    track = Track("t", automation={"pan": AutomationLane("touch", [
        AutomationPoint(5, -1.0, "hold", "a"), AutomationPoint(9, 1.0, id="b")])})
    back = ProjectDocument.from_session(Session(tracks=[track])).to_session().tracks[0]
    assert back.automation["pan"] == track.automation["pan"]
    assert back.automation["gain_db"] == AutomationLane("read", [])


def project_dict(**track: object) -> dict:
    return {"format": "max-booster-project", "version": 2, "sample_rate": 48000,
            "tracks": [{"id": "t", **track}]}


def test_the_project_file_keeps_lanes_and_reads_version_1(tmp_path: Path) -> None:
    track = Track("t", automation={"gain_db": AutomationLane("read", [
        AutomationPoint(48000, -60.0, id="p1"), AutomationPoint(96000, 0.0, "hold", "p2")])})
    path = save_project(Session(tracks=[track]), tmp_path / "p.json")
    data = json.loads(path.read_text())
    assert data["version"] == FORMAT_VERSION == 4
    assert data["tracks"][0]["automation"]["gain_db"]["points"][1] == {
        "id": "p2", "frame": 96000, "value": 0.0, "curve": "hold"}
    assert load_project(path).tracks[0].automation == track.automation
    data["version"] = 1
    del data["tracks"][0]["automation"], data["tempo"]
    assert session_from_dict(data).tracks[0].automation == {}  # older projects: no lanes


@pytest.mark.parametrize("data, words", [
    ({**project_dict(automation={"gain_db": {}}), "version": 1}, "unknown key(s) 'automation'"),
    (project_dict(automation={"send": {}}), "automation parameter 'send' cannot be automated here"),
    (project_dict(automation={"pan": {"mode": "loop"}}), "mode 'loop' is not one of"),
    (project_dict(automation={"pan": {"points": [{"frame": 1}]}}),
     "tracks[0].automation.pan.points[0]: missing required key(s) 'value'"),
    (project_dict(automation={"pan": {"points": [{"frame": 1, "value": 2}]}}),
     "value 2.0 is outside [-1, 1] for pan"),
    (project_dict(automation={"pan": {"points": [{"frame": 1.5, "value": 0}]}}),
     "points[0].frame"),
])
def test_bad_lanes_in_a_project_file_are_named(data: dict, words: str) -> None:
    with pytest.raises(ProjectError) as caught:
        session_from_dict(data)
    assert words in str(caught.value)
