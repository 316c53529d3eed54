"""Automation of sends, effect parameters, LV2 ports and bus faders: render, document."""

from __future__ import annotations

import numpy as np
import pytest
from lv2_helpers import MISBEHAVE, lv2_path  # noqa: F401
from pycrdt import Doc

from collab.errors import SchemaError
from collab.schema import ProjectDocument
from dsp_core import Bus, Clip, EffectSpec, Engine, ProjectError, Send, Session, Track
from dsp_core.param_automation import ParamLane
from dsp_core.project import session_from_dict, session_to_dict
from dsp_core.session import AutomationLane, AutomationPoint
from tests.helpers_audio import DictLoader

pytestmark = pytest.mark.timeout(120)
RATE = 48000
STEP = 9600  # a tick boundary (DAW_TICK = 32): the new target is read from this frame on
LENGTH = 16000
SOURCE = (0.25 * np.random.default_rng(3).standard_normal((1, LENGTH))).astype(np.float32)


def step(low: float, high: float) -> AutomationLane:
    """A lane that holds ``low`` and steps to ``high`` at :data:`STEP`."""
    return AutomationLane("read", [AutomationPoint(0, low, "hold"),
                                   AutomationPoint(STEP, high, "hold")])


def render(session: Session, backend: str, block: int) -> np.ndarray:
    with Engine(session, block_size=block, backend=backend,
                loader=DictLoader({"x": SOURCE})) as engine:
        return engine.render(0, LENGTH)


def sent_session(level: AutomationLane | None) -> Session:
    track = Track("t", pan=-1.0, clips=[Clip("x", 0, LENGTH)],
                  sends=[Send("fx", -144.0, pre_fader=True)])
    if level is not None:
        track.automation["send:fx"] = level
    return Session(tracks=[track], buses=[Bus("fx", pan=1.0)])


@pytest.mark.parametrize("backend", ["native", "reference"])
def test_an_automated_send_is_heard_from_its_frame_in_every_block_size(backend: str) -> None:
    quiet = render(sent_session(None), backend, 1024)
    outs = [render(sent_session(step(-144.0, 0.0)), backend, block) for block in (1024, 100)]
    np.testing.assert_array_equal(outs[0], outs[1])  # a bounce and a live mix's small blocks
    right = outs[0][1] - quiet[1]  # the track is panned left, the bus right
    assert np.abs(right[:STEP]).max() < 1e-6
    heard = int(np.flatnonzero(np.abs(right) > 1e-4)[0])
    assert STEP <= heard < STEP + 8
    np.testing.assert_array_equal(outs[0][0], quiet[0])  # the direct path is untouched


def test_c_and_twin_agree_on_effect_and_bus_lanes() -> None:
    track = Track("t", clips=[Clip("x", 0, LENGTH)],
                  effects=[EffectSpec("biquad", {"shape": "lowpass", "freq": 8000.0}, id="lp"),
                           EffectSpec("gain", {"gain_db": 0.0}, id="g")])
    track.automation["fx:lp:freq"] = AutomationLane("read", [AutomationPoint(0, 200.0),
                                                             AutomationPoint(LENGTH, 9000.0)])
    track.automation["fx:g:gain_db"] = step(-120.0, 0.0)
    master = Bus("master")
    master.automation["pan"] = AutomationLane("read", [AutomationPoint(12000, -1.0),
                                                       AutomationPoint(LENGTH, 1.0)])
    session = Session(tracks=[track], master=master)
    native = render(session, "native", 256)
    np.testing.assert_allclose(render(session, "reference", 100), native, atol=2e-6)
    assert np.abs(native[:, :STEP]).max() < 1e-5  # the gain effect at -120 dB
    assert np.abs(native[:, STEP + 2400:STEP + 3400]).max() > 0.1  # glided open in 50 ms
    # the master pan lane moves the image from left to right
    late = native[:, -2000:]
    early = native[:, STEP + 2400:STEP + 3400]
    assert np.abs(early[0]).max() > np.abs(early[1]).max()
    assert np.abs(late[1]).max() > np.abs(late[0]).max()


@pytest.mark.usefixtures("lv2_path")
def test_an_automated_lv2_port_takes_its_value_at_the_step() -> None:
    track = Track("t", pan=-1.0, clips=[Clip("x", 0, LENGTH)],
                  effects=[EffectSpec("lv2", {"uri": MISBEHAVE, "gain": 0.5}, id="p")])
    track.automation["fx:p:gain"] = step(0.5, 2.0)
    out = render(Session(tracks=[track]), "native", 1000)
    np.testing.assert_allclose(out[0, :STEP], 0.5 * SOURCE[0, :STEP], atol=1e-6)
    np.testing.assert_allclose(out[0, STEP:], 2.0 * SOURCE[0, STEP:], atol=1e-6)


def test_a_lane_between_points_ramps_and_holds_outside() -> None:
    lane = ParamLane(np.array([100, 200, 200], dtype=np.int64), np.array([0.0, 1.0, 5.0]),
                     np.array([False, False, False]), apply=lambda v: None)
    assert [lane.value_at(f) for f in (0, 150, 199, 200, 10_000)] == [0.0, 0.5, 0.99, 5.0, 5.0]


@pytest.mark.parametrize("param, value, words", [
    ("fx:g:gain_db", 30.0, "outside [-120, 24]"),
    ("fx:nope:gain_db", 0.0, "no effect with id 'nope'"),
    ("fx:g:volume", 0.0, "gain has no automatable parameter 'volume'"),
    ("fx:la:lookahead_ms", 1.0, "no automatable parameter 'lookahead_ms'"),
    ("send:elsewhere", 0.0, "no send to bus 'elsewhere'"),
    ("send:fx", 30.0, "outside [-144, 24]"),
    ("object:azimuth", 0.0, "not an immersive object"),
    ("bogus", 0.0, "cannot be automated here"),
    ("gain_db@x", 0.0, "is not a lane name"),
])
def test_bad_lanes_are_refused_in_the_document(param: str, value: float, words: str) -> None:
    doc = ProjectDocument.from_session(Session(
        tracks=[Track("t", sends=[Send("fx")],
                      effects=[EffectSpec("gain", id="g"),
                               EffectSpec("lookahead_limiter", id="la")])],
        buses=[Bus("fx")]))
    before = doc.to_json()
    with pytest.raises(SchemaError, match=words.replace("[", r"\[").replace("]", r"\]")):
        doc.add_automation_point("t", param, 0, value)
    assert doc.to_json() == before


def test_a_bus_cannot_automate_mute_and_a_project_file_names_a_bad_range() -> None:
    doc = ProjectDocument.from_session(Session(buses=[Bus("fx")]))
    with pytest.raises(SchemaError, match="cannot be automated here"):
        doc.add_automation_point("fx", "mute", 0, 1.0)
    data = session_to_dict(Session(tracks=[Track("t", effects=[EffectSpec("gain", id="g")])]))
    data["tracks"][0]["automation"] = {"fx:g:gain_db": {"points": [{"frame": 0,
                                                                     "value": 99}]}}
    with pytest.raises(ProjectError, match=r"value 99.0 is outside \[-120, 24\]"):
        session_from_dict(data)


def test_concurrent_first_points_of_new_lanes_merge() -> None:
    a = ProjectDocument.from_session(Session(
        tracks=[Track("t", effects=[EffectSpec("gain", id="g")])], buses=[Bus("fx")]))
    b = ProjectDocument(Doc())
    b.doc.apply_update(a.doc.get_update())
    first = a.add_automation_point("t", "fx:g:gain_db", 100, -6.0)
    second = b.add_automation_point("t", "fx:g:gain_db", 200, -12.0)
    a.set_automation_mode("fx", "gain_db", "read")
    third = b.add_automation_point("fx", "gain_db", 50, -3.0)
    b.move_automation_point("t", "fx:g:gain_db", second, value=-18.0)
    a.doc.apply_update(b.doc.get_update(a.doc.get_state()))
    b.doc.apply_update(a.doc.get_update(b.doc.get_state()))
    for doc in (a, b):
        session = doc.to_session()
        lane = session.tracks[0].automation["fx:g:gain_db"]
        assert [(p.id, p.frame, p.value) for p in lane.points] == [
            (first, 100, -6.0), (second, 200, -18.0)]
        bus_lane = session.buses[0].automation["gain_db"]
        assert bus_lane.mode == "read" and [p.id for p in bus_lane.points] == [third]
    b.remove_automation_point("t", "fx:g:gain_db", first)
    assert list(b.automation("t")["fx:g:gain_db"]["points"]) == [second]


def test_lanes_round_trip_through_the_project_file_and_the_document() -> None:
    track = Track("t", sends=[Send("fx")], effects=[EffectSpec("gain", id="g")])
    track.automation["send:fx"] = step(-20.0, 0.0)
    track.automation["fx:g:gain_db"] = step(-6.0, 6.0)
    bus = Bus("fx")
    bus.automation["pan"] = step(-0.5, 0.5)
    session = Session(tracks=[track], buses=[bus])
    again = session_from_dict(session_to_dict(session))
    assert again.tracks[0].automation == session.tracks[0].automation
    assert again.buses[0].automation == bus.automation
    from_doc = ProjectDocument.from_session(again).to_session()
    for param in ("send:fx", "fx:g:gain_db"):
        assert [(p.frame, p.value, p.curve) for p in from_doc.tracks[0].automation[param].points
                ] == [(0, -20.0 if param == "send:fx" else -6.0, "hold"),
                      (STEP, 0.0 if param == "send:fx" else 6.0, "hold")]
    assert [p.value for p in from_doc.buses[0].automation["pan"].points] == [-0.5, 0.5]


@pytest.mark.parametrize("backend", ["native", "reference"])
def test_an_automated_object_moves_from_one_speaker_to_the_other(backend: str) -> None:
    from dsp_core.immersive import ImmersiveRoute
    from dsp_core.immersive_render import render_immersive

    track = Track("o", clips=[Clip("x", 0, LENGTH)],
                  immersive=ImmersiveRoute("object", azimuth=30.0))
    track.automation["object:azimuth"] = step(30.0, -30.0)
    out = render_immersive(Session(tracks=[track]), "stereo", backend=backend,
                           loader=DictLoader({"x": SOURCE}))
    left, right = out[0], out[1]  # M+030 (left) then M-030 (right)
    assert np.abs(right[:STEP - 32]).max() < 1e-6 < np.abs(left[:STEP - 32]).max()
    assert np.abs(left[STEP:]).max() < 1e-6 < np.abs(right[STEP:]).max()


def test_a_lane_whose_effect_was_removed_stays_in_the_document_but_not_the_mix() -> None:
    doc = ProjectDocument.from_session(Session(
        tracks=[Track("t", effects=[EffectSpec("gain", id="g")])]))
    doc.add_automation_point("t", "fx:g:gain_db", 0, -6.0)
    doc.remove_effect("t", 0)
    assert "fx:g:gain_db" not in doc.to_session().tracks[0].automation
    assert any(key.startswith("fx:g:gain_db@") for key in doc.automation_data("t"))
    doc.add_effect("t", EffectSpec("gain", id="g"))  # the lane names something again
    assert doc.to_session().tracks[0].automation["fx:g:gain_db"].points[0].value == -6.0
