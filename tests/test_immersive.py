"""A track's immersive route: validation, the project file and the shared document."""

from __future__ import annotations

import json

import pytest

from collab.errors import SchemaError
from collab.schema import ProjectDocument
from dsp_core.errors import ProjectError
from dsp_core.immersive import ImmersiveRoute, route_from_dict, validate_route
from dsp_core.project import load_project, save_project, session_from_dict, session_to_dict
from dsp_core.session import Session, Track
from tests.immersive_helpers import mixed_session

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize(("value", "message"), [
    ({"kind": "surround"}, "must be 'bed' or 'object'"),
    ({"kind": "object", "azimuth": 200}, "azimuth 200.0 must be a number in [-180, 180]"),
    ({"kind": "object", "elevation": "up"}, "elevation must be a number, got 'up'"),
    ({"kind": "object", "distance": 1.5}, "distance 1.5 must be a number in [0, 1]"),
    ({"kind": "bed", "channels": ["M+030", "M-030"]}, "a 1-channel track feeds 1 bed"),
    ({"kind": "bed", "channels": ["Ls"]}, "bed channel 'Ls' is not one of M+030"),
    ({"kind": "object", "azimuth": 10, "height": 3}, "unknown immersive field(s) ['height']"),
    ({"kind": "object", "channels": ["M+000"]}, "an object has a position, not bed channels"),
])
def test_bad_routes_are_refused_with_what_to_do(value: dict, message: str) -> None:
    with pytest.raises(ProjectError) as error:
        route_from_dict(value, "tracks[0].immersive", 1)
    assert message in str(error.value)
    assert "tracks[0].immersive" in str(error.value)


def test_a_session_with_a_bad_route_does_not_validate() -> None:
    track = Track(id="t", channels=2, immersive=ImmersiveRoute("bed", ("M+030", "M+030")))
    with pytest.raises(ProjectError, match="repeat a channel"):
        Session(tracks=[track]).validate()
    with pytest.raises(ProjectError, match="repeat a channel"):
        validate_route(track.immersive, 2, "t")


def test_project_file_keeps_routes_and_older_projects_are_unchanged(tmp_path) -> None:
    session = mixed_session()
    path = save_project(session, tmp_path / "project.json")
    again = load_project(path)
    assert [t.immersive for t in again.tracks] == [t.immersive for t in session.tracks]
    data = json.loads(path.read_text())
    assert data["tracks"][0]["immersive"] == {"kind": "object", "azimuth": 100.0,
                                              "elevation": 20.0, "distance": 1.0}
    assert "immersive" not in data["tracks"][3]  # a track without a route writes nothing
    older = session_to_dict(Session(tracks=[Track(id="a")]))
    assert "immersive" not in older["tracks"][0]
    assert session_from_dict(older).tracks[0].immersive is None


def test_project_file_names_the_bad_route() -> None:
    data = session_to_dict(Session(tracks=[Track(id="a")]))
    data["tracks"][0]["immersive"] = {"kind": "object", "azimuth": -181}
    with pytest.raises(ProjectError, match=r"tracks\[0\]\.immersive: object azimuth -181"):
        session_from_dict(data)


def test_document_round_trip_and_concurrent_moves_merge() -> None:
    first = ProjectDocument.from_session(mixed_session())
    assert [t.immersive for t in first.to_session().tracks] == [
        t.immersive for t in mixed_session().tracks]
    second = ProjectDocument()
    second.doc.apply_update(first.doc.get_update())
    first.move_object("lead", azimuth=-45.0)
    second.move_object("lead", elevation=60.0)
    first.doc.apply_update(second.doc.get_update())
    second.doc.apply_update(first.doc.get_update())
    for doc in (first, second):
        route = doc.immersive("lead")
        assert (route.azimuth, route.elevation, route.distance) == (-45.0, 60.0, 1.0)


def test_document_edits_are_checked_and_clearable() -> None:
    doc = ProjectDocument.from_session(mixed_session())
    with pytest.raises(SchemaError, match="azimuth 500.0"):
        doc.move_object("lead", azimuth=500)
    with pytest.raises(SchemaError, match="not an object"):
        doc.move_object("plain", azimuth=10)
    with pytest.raises(SchemaError, match="1-channel track feeds 1 bed"):
        doc.set_immersive("plain", ImmersiveRoute("bed", ("M+030", "M-030")))
    doc.set_immersive("plain", ImmersiveRoute("bed", ("M+000",)))
    assert doc.to_session().tracks[3].immersive == ImmersiveRoute("bed", ("M+000",))
    doc.set_immersive("plain", None)
    assert doc.immersive("plain") is None


def test_a_bad_route_written_by_a_peer_renders_as_none() -> None:
    doc = ProjectDocument.from_session(mixed_session())
    with doc.transaction():
        doc._track_map("lead")["immersive"]["azimuth"] = 999.0
    assert doc.to_session().tracks[0].immersive is None
