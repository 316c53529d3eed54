"""Writing automation from control moves (collab/automation_write.py): each mode, thinning,
and two editors writing one lane at once."""

from __future__ import annotations

import bisect
import math
import random

import pytest
from pycrdt import Doc

from collab import automation_write
from collab.automation_write import (
    TOLERANCE,
    LaneEdit,
    LaneWriter,
    PassTooLong,
    apply_edit,
    lane_value,
    thin,
    writer_for,
)
from collab.errors import SchemaError
from collab.schema import ProjectDocument
from dsp_core.session import AutomationLane, AutomationPoint, Session, Track

RATE = 48000
GLIDE = RATE // 4  # RETURN_SECONDS at 48 kHz


def project(points: list[tuple[int, float]] | None = None, mode: str = "touch",
            gain_db: float = 0.0) -> ProjectDocument:
    lane = AutomationLane(mode, [AutomationPoint(f, v, id=f"orig{i}")
                                 for i, (f, v) in enumerate(points or [])])
    track = Track("t", gain_db=gain_db, automation={"gain_db": lane})
    return ProjectDocument.from_session(Session(sample_rate=RATE, tracks=[track]))


def lane_of(document: ProjectDocument, param: str = "gain_db") -> list[AutomationPoint]:
    return document.to_session().tracks[0].automation[param].sorted_points()


def value(document: ProjectDocument, frame: int, param: str = "gain_db") -> float:
    return lane_value(lane_of(document, param), frame, 0.0)


def ramp(writer: LaneWriter, start: int, end: int, v0: float, v1: float, *,
         step: int = 480, release: bool = True) -> None:
    """Hold the control and move it from v0 to v1 between two frames (one event per
    10 ms), then let go."""
    for frame in range(start, end + 1, step):
        writer.feed(frame, v0 + (v1 - v0) * (frame - start) / (end - start), held=True)
    if release:
        writer.feed(end, v1, held=False)


def test_off_and_read_write_nothing() -> None:
    for mode in ("off", "read"):
        doc = project([(0, -6.0)], mode=mode)
        writer = writer_for(doc, "t", "gain_db", start=0, pass_id="p1")
        ramp(writer, 1000, 20000, 0.0, -20.0)
        edit = writer.stop(30000)
        assert not edit.points and not edit.erase
        assert apply_edit(doc, "t", "gain_db", edit) == 0
        assert [p.id for p in lane_of(doc)] == ["orig0"]


def test_touch_writes_while_held_and_returns_to_the_lane_on_release() -> None:
    doc = project([(0, -6.0), (RATE * 4, -6.0)])
    writer = writer_for(doc, "t", "gain_db", start=0, pass_id="p1")
    ramp(writer, RATE // 2, RATE, -6.0, -20.0)
    writer.feed(RATE * 2, -3.0, held=False)  # a later click: a touch of its own
    apply_edit(doc, "t", "gain_db", writer.stop(RATE * 3))
    assert value(doc, RATE // 4) == -6.0                      # before the touch: the lane
    assert value(doc, 3 * RATE // 4) == pytest.approx(-13.0, abs=0.2)
    assert value(doc, RATE) == -20.0                          # the release value...
    assert value(doc, RATE + GLIDE // 2) == pytest.approx(-13.0)   # ...glides back
    assert value(doc, RATE + GLIDE) == -6.0
    assert value(doc, RATE * 2) == -3.0
    assert value(doc, RATE * 2 + GLIDE) == -6.0
    assert "orig1" in [p.id for p in lane_of(doc)]            # outside the touches: kept
    written = [p for p in lane_of(doc) if p.id.startswith("p1.")]
    assert len(written) < 12                                   # 51 events, thinned


def test_latch_keeps_the_last_value_until_stop() -> None:
    doc = project([(0, -6.0), (RATE * 4, -6.0)], mode="latch")
    writer = writer_for(doc, "t", "gain_db", start=0, pass_id="p1")
    ramp(writer, RATE // 2, RATE, -6.0, -20.0)
    apply_edit(doc, "t", "gain_db", writer.stop(RATE * 2))
    assert value(doc, RATE // 4) == -6.0
    assert value(doc, RATE) == value(doc, 3 * RATE // 2) == value(doc, RATE * 2) == -20.0
    assert value(doc, RATE * 2 + GLIDE) == -6.0
    assert value(doc, RATE * 3) == -6.0


def test_write_overwrites_from_play_start_to_stop() -> None:
    doc = project([(0, -30.0), (RATE, 6.0), (RATE * 4, -30.0)], mode="write", gain_db=-10.0)
    writer = writer_for(doc, "t", "gain_db", start=RATE // 4, pass_id="p1")
    ramp(writer, RATE, 2 * RATE, -10.0, 0.0)
    apply_edit(doc, "t", "gain_db", writer.stop(RATE * 3))
    assert value(doc, RATE // 8) == pytest.approx(-30 + 36 * 0.125)   # before play start
    assert value(doc, RATE // 2) == -10.0      # the static fader until the first move
    assert "orig1" not in [p.id for p in lane_of(doc)]          # overwritten
    assert value(doc, 3 * RATE // 2) == pytest.approx(-5.0, abs=0.2)
    assert value(doc, RATE * 3) == 0.0         # kept until stop, then back to the lane
    assert value(doc, RATE * 3 + GLIDE) == pytest.approx(lane_value(
        [AutomationPoint(RATE, 6.0), AutomationPoint(RATE * 4, -30.0)], RATE * 3 + GLIDE, 0))


def test_mute_writes_steps() -> None:
    doc = project(mode="touch")
    doc.set_automation_mode("t", "mute", "touch")
    writer = writer_for(doc, "t", "mute", start=0, pass_id="m1")
    for frame, muted in [(1000, 1), (1500, 1), (2000, 1), (5000, 0)]:
        writer.feed(frame, muted, held=True)
    writer.feed(6000, 0, held=False)
    apply_edit(doc, "t", "mute", writer.stop(9000))
    points = lane_of(doc, "mute")
    assert all(p.curve == "hold" for p in points)
    assert [lane_value(points, f, 0.0) for f in (999, 1000, 4999, 5000, 7000)] == [
        0.0, 1.0, 1.0, 0.0, 0.0]
    assert len(points) <= 5


def test_thinning_keeps_corners_and_drops_what_a_line_reproduces() -> None:
    line = [(f, -0.01 * f) for f in range(0, 1000, 10)]
    assert thin(line, 0.05) == [line[0], line[-1]]
    corner = [(f, float(min(f, 500))) for f in range(0, 1001, 10)]
    assert thin(corner, 0.1) == [(0, 0.0), (500, 500.0), (1000, 500.0)]
    wobble = [(f, 0.05 * (-1) ** (f // 10)) for f in range(0, 1000, 10)]
    assert len(thin(wobble, 0.2)) == 2 and len(thin(wobble, 0.01)) == len(wobble)


def test_an_edit_grows_while_playing_and_applying_it_again_changes_nothing() -> None:
    doc = project([(0, -6.0)])
    writer = writer_for(doc, "t", "gain_db", start=0, pass_id="p1")
    ramp(writer, 1000, 20000, -6.0, -20.0, release=False)
    assert apply_edit(doc, "t", "gain_db", writer.edit(20000)) > 0
    assert value(doc, 20000) == pytest.approx(-20.0, abs=0.3)   # held since the last event
    ramp(writer, 20000, 40000, -20.0, 0.0)
    final = writer.stop(50000)
    apply_edit(doc, "t", "gain_db", final)
    assert apply_edit(doc, "t", "gain_db", final) == 0
    fresh = project([(0, -6.0)])
    apply_edit(fresh, "t", "gain_db", final)
    assert lane_of(fresh) == lane_of(doc)


def test_bad_input_is_refused() -> None:
    doc = project()
    with pytest.raises(SchemaError, match="pass id"):
        writer_for(doc, "t", "gain_db", start=0, pass_id="a b")
    with pytest.raises(SchemaError, match="cannot be automated"):
        writer_for(doc, "t", "colour", start=0, pass_id="p")
    writer = writer_for(doc, "t", "gain_db", start=0, pass_id="p")
    with pytest.raises(SchemaError, match="must be a number"):
        writer.feed(10, float("nan"), held=True)
    writer.feed(10, 99.0, held=False)  # clamped to the parameter's range
    assert max(p.value for p in writer.stop(100).points.values()) == 24.0


def sync(a: ProjectDocument, b: ProjectDocument) -> None:
    a.doc.apply_update(b.doc.get_update(a.doc.get_state()))
    b.doc.apply_update(a.doc.get_update(b.doc.get_state()))


def test_two_editors_writing_one_lane_at_once_keep_both_stretches() -> None:
    ana = project([(0, -6.0), (RATE * 2, -6.0), (RATE * 6, -6.0)])
    ben = ProjectDocument(Doc())
    ben.doc.apply_update(ana.doc.get_update())
    a = writer_for(ana, "t", "gain_db", start=0, pass_id="ana1")
    b = writer_for(ben, "t", "gain_db", start=0, pass_id="ben1")
    ramp(a, RATE // 2, RATE, -6.0, -30.0)
    ramp(b, 3 * RATE, 4 * RATE, -6.0, 0.0, release=False)
    apply_edit(ana, "t", "gain_db", a.edit(RATE))
    apply_edit(ben, "t", "gain_db", b.edit(4 * RATE))
    ben.move_automation_point("t", "gain_db", "orig2", value=-12.0)  # drawn meanwhile
    sync(ana, ben)
    apply_edit(ana, "t", "gain_db", a.stop(5 * RATE))
    apply_edit(ben, "t", "gain_db", b.stop(5 * RATE))
    sync(ana, ben)
    assert lane_of(ana) == lane_of(ben)
    assert value(ana, RATE) == -30.0 and value(ana, RATE + GLIDE) == -6.0
    assert value(ana, 4 * RATE) == value(ana, 5 * RATE) == 0.0     # b held to the stop
    assert "orig1" in [p.id for p in lane_of(ana)]    # between the stretches: kept
    assert lane_of(ana)[-1].id == "orig2" and lane_of(ana)[-1].value == -12.0


def test_where_two_passes_overlap_the_last_applied_owns_the_overlap() -> None:
    ana = project([(0, -6.0)], mode="latch")
    ben = ProjectDocument(Doc())
    ben.doc.apply_update(ana.doc.get_update())
    a = writer_for(ana, "t", "gain_db", start=0, pass_id="ana1")
    b = writer_for(ben, "t", "gain_db", start=0, pass_id="ben1")
    ramp(a, RATE, 2 * RATE, -6.0, -40.0)
    ramp(b, RATE, 2 * RATE, -6.0, 6.0)
    apply_edit(ana, "t", "gain_db", a.stop(3 * RATE))
    apply_edit(ben, "t", "gain_db", b.stop(3 * RATE))
    sync(ana, ben)
    apply_edit(ben, "t", "gain_db", b.stop(3 * RATE))   # ben's client applies its pass again
    sync(ana, ben)
    assert lane_of(ana) == lane_of(ben)
    assert {p.id.split(".")[0] for p in lane_of(ana) if RATE <= p.frame <= 3 * RATE} == {"ben1"}
    assert value(ana, 2 * RATE) == 6.0


def test_a_loop_wrap_starts_a_new_stretch_that_overwrites_the_first_where_they_meet() -> None:
    doc = project([(0, -6.0)], mode="write")
    writer = writer_for(doc, "t", "gain_db", start=0, pass_id="p1")
    ramp(writer, 1000, 40000, -6.0, -30.0, release=False)
    writer.feed(0, 3.0, held=True)          # the playhead wrapped to the loop start
    writer.feed(20000, 3.0, held=True)
    apply_edit(doc, "t", "gain_db", writer.stop(20000))
    assert value(doc, 10000) == 3.0 and value(doc, 20000) == 3.0
    last = 1000 + 480 * (39000 // 480)      # the first time round's last event...
    assert value(doc, last) == pytest.approx(-30.0, abs=0.2)
    assert value(doc, last + GLIDE) == -6.0  # ...then back to the lane
    assert all(p.frame not in range(1, 20000) or p.value == 3.0 for p in lane_of(doc)
               if p.id.endswith(".b"))


def within_tolerance(samples: list[tuple[int, float]], kept: list[tuple[int, float]],
                     tolerance: float) -> bool:
    """Every sample lies within ``tolerance`` of the line through the kept ones around it."""
    frames = [f for f, _ in kept]
    for frame, value in samples:
        i = max(0, min(len(kept) - 2, bisect.bisect_right(frames, frame) - 1))
        (f0, v0), (f1, v1) = kept[i], kept[i + 1]
        line = v0 + (v1 - v0) * (frame - f0) / (f1 - f0)
        if abs(value - line) > tolerance + 1e-9:
            return False
    return True


def test_thinning_a_sawtooth_keeps_every_corner_and_noise_stays_within_tolerance() -> None:
    saw = [(i * 10, 10.0 * (i % 2)) for i in range(5000)]
    assert thin(saw, 0.2) == saw  # every point a corner (this was quadratic before)
    rng = random.Random(7)
    noise = [(i * 10, rng.gauss(0.0, 1.0) + i / 100) for i in range(5000)]
    kept = thin(noise, 0.5)
    assert kept[0] == noise[0] and kept[-1] == noise[-1] and len(kept) < len(noise)
    assert within_tolerance(noise, kept, 0.5)
    # past the depth limit the linear pass finishes a stretch, still within tolerance
    spiral = [(i, (-1) ** i * 1.001 ** i) for i in range(3000)]
    assert within_tolerance(spiral, thin(spiral, 0.3), 0.3)


def test_a_long_pass_written_in_batches_thins_its_tail_and_matches_in_one_go() -> None:
    doc = project([(0, -6.0)])
    writer = writer_for(doc, "t", "gain_db", start=0, pass_id="p1")
    rng = random.Random(3)
    events = [(480 * i, max(-60.0, min(6.0, -20 + 10 * math.sin(i / 40) + 0.1 * rng.random())))
              for i in range(1, 5000)]
    for start in range(0, len(events), 700):  # batches, as the page sends them
        for frame, level in events[start:start + 700]:
            writer.feed(frame, level, held=True)
        edit = writer.edit(events[min(len(events), start + 700) - 1][0])
    kept = sorted((p.frame, p.value) for k, p in edit.points.items() if k.endswith(".b"))
    assert within_tolerance(events, kept, TOLERANCE["gain_db"])
    whole = thin(events, TOLERANCE["gain_db"])  # in one go: chunking costs a few points
    assert len(whole) < len(events) // 4
    assert len(kept) <= 1.1 * len(whole) + len(events) // automation_write.CHUNK + 1
    apply_edit(doc, "t", "gain_db", writer.stop(events[-1][0]))
    assert value(doc, events[2500][0]) == pytest.approx(events[2500][1], abs=0.21)


def test_a_pass_refuses_frames_past_the_lane_and_events_past_its_cap(monkeypatch) -> None:
    doc = project()
    writer = writer_for(doc, "t", "gain_db", start=0, pass_id="p1")
    with pytest.raises(SchemaError, match="past the last frame"):
        writer.feed(10 ** 30, 0.0, held=True)
    monkeypatch.setattr(automation_write, "MAX_PASS_EVENTS", 3)
    for frame in (10, 20, 30):
        writer.feed(frame, -1.0, held=True)
    with pytest.raises(PassTooLong, match="new pass"):
        writer.feed(40, -1.0, held=True)


def test_an_edit_with_a_bad_point_deletes_nothing() -> None:
    doc = project([(0, -6.0), (1000, -3.0)], mode="write")
    state = doc.doc.get_state()
    edit = LaneEdit("p1", erase=[(0, 2000)],
                    points={"p1.5.b": AutomationPoint(2 ** 60, -1.0, id="p1.5.b")})
    with pytest.raises(SchemaError, match="frame"):
        apply_edit(doc, "t", "gain_db", edit)
    assert doc.doc.get_state() == state
    assert [p.id for p in lane_of(doc)] == ["orig0", "orig1"]
