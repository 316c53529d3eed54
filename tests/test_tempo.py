"""The tempo map: frames <-> bars/beats, meters, concurrent changes, warp markers."""

from __future__ import annotations

import math

import pytest

from dsp_core.errors import ProjectError
from dsp_core.tempo import (
    RAMP_WARP_TOLERANCE,
    BarBeat,
    MeterChange,
    TempoChange,
    TempoMap,
    tempo_map_from_dict,
)

RATE = 48000


def test_constant_tempo_beat_is_sixty_over_bpm_seconds() -> None:
    tmap = TempoMap.constant(120)
    assert tmap.beat_to_frame(1, RATE) == 24000
    assert tmap.frame_to_beat(36000, RATE) == pytest.approx(1.5)
    assert tmap.frame_to_bar_beat(4 * 24000, RATE) == BarBeat(2, 1)
    assert tmap.bar_beat_to_frame(BarBeat(3, 2), RATE) == (8 + 1) * 24000


def test_tempo_change_moves_later_beats_only() -> None:
    tmap = TempoMap([TempoChange(0, 120, "a"), TempoChange(4, 60, "b")])
    assert tmap.beat_to_seconds(4) == pytest.approx(2.0)
    assert tmap.beat_to_seconds(5) == pytest.approx(3.0)  # one beat at 60 BPM is 1 s
    assert tmap.seconds_to_beat(3.5) == pytest.approx(5.5)
    for beat in (0.0, 1.25, 3.99, 4.0, 7.3, 100.0):
        assert tmap.frame_to_beat(tmap.beat_to_frame(beat, RATE), RATE) == pytest.approx(beat)


def test_meter_change_counts_bars_in_its_own_note_value() -> None:
    tmap = TempoMap([TempoChange(0, 120)], [MeterChange(0, 4, 4), MeterChange(2, 6, 8, "m")])
    # two 4/4 bars = 8 quarter notes, then 6/8 bars of 3 quarter notes each
    assert tmap.bar_to_beat(2) == 8.0
    assert tmap.bar_to_beat(3) == 11.0
    assert tmap.beat_to_bar_beat(8.0) == BarBeat(3, 1)
    assert tmap.beat_to_bar_beat(9.0) == BarBeat(3, 3)  # eighth notes: beat 3 of 6
    assert tmap.beat_to_bar_beat(11.0) == BarBeat(4, 1)
    assert tmap.bar_beat_to_beat(BarBeat(4, 6)) == pytest.approx(11.0 + 2.5)


def test_grid_marks_bars_and_beats_across_a_meter_change() -> None:
    tmap = TempoMap([TempoChange(0, 120)], [MeterChange(0, 3, 4), MeterChange(1, 2, 4)])
    lines = tmap.grid(0, 6 * 24000, RATE)
    assert [(g.bar, g.beat, g.is_bar) for g in lines] == [
        (1, 1, True), (1, 2, False), (1, 3, False), (2, 1, True), (2, 2, False),
        (3, 1, True)]
    assert [g.frame for g in lines] == [i * 24000 for i in range(6)]


def test_concurrent_changes_at_one_beat_resolve_the_same_for_every_order() -> None:
    a, b = TempoChange(4, 90, "alice-1"), TempoChange(4, 140, "bob-1")
    one = TempoMap([TempoChange(0, 120, "t0"), a, b])
    other = TempoMap([b, TempoChange(0, 120, "t0"), a])
    assert one.bpm_at_beat(5) == other.bpm_at_beat(5) == 140  # the larger id wins
    assert one.beat_to_seconds(8) == other.beat_to_seconds(8)


def test_map_without_a_change_at_zero_starts_at_its_first_tempo() -> None:
    assert TempoMap([TempoChange(8, 90)]).bpm_at_beat(0) == 90
    assert TempoMap().bpm_at_beat(3) == 120  # the default


def test_bad_changes_are_refused_with_the_path() -> None:
    with pytest.raises(ProjectError, match=r"tempo.tempos\[0\].bpm: tempo must be"):
        tempo_map_from_dict({"tempos": [{"beat": 0, "bpm": 0}]})
    with pytest.raises(ProjectError, match="denominator must be one of"):
        tempo_map_from_dict({"meters": [{"bar": 0, "numerator": 7, "denominator": 5}]})
    with pytest.raises(ProjectError, match="unknown key"):
        tempo_map_from_dict({"tempos": [{"beat": 0, "bpm": 100, "curve": "exp"}]})
    with pytest.raises(ProjectError, match=r"tempos\[0\].ramp: must be true or false"):
        tempo_map_from_dict({"tempos": [{"beat": 0, "bpm": 100, "ramp": 1}]})


def test_dict_round_trip_keeps_every_change() -> None:
    data = {"tempos": [{"id": "a", "beat": 0.0, "bpm": 100.0},
                       {"id": "b", "beat": 16.0, "bpm": 128.0}],
            "meters": [{"id": "m", "bar": 0, "numerator": 7, "denominator": 8}]}
    assert tempo_map_from_dict(data).to_dict() == data


def test_a_ramp_takes_the_integral_of_sixty_over_bpm() -> None:
    # 60 -> 120 BPM over 4 beats: bpm(b) = 60 + 15 b, t(b) = 4 ln(1 + b / 4)
    tmap = TempoMap([TempoChange(0, 60, "a", ramp=True), TempoChange(4, 120, "b")])
    assert tmap.bpm_at_beat(2) == 90.0
    assert tmap.bpm_at_beat(6) == 120.0
    assert tmap.beat_to_seconds(2) == pytest.approx(4 * math.log(1.5), rel=1e-12)
    assert tmap.beat_to_seconds(4) == pytest.approx(4 * math.log(2), rel=1e-12)
    assert tmap.beat_to_seconds(6) == pytest.approx(4 * math.log(2) + 1.0, rel=1e-12)
    # the closed form against a fine numerical integral of 60 / bpm
    n = 200_000
    riemann = sum(60 / tmap.bpm_at_beat((j + 0.5) * 3 / n) for j in range(n)) * 3 / n
    assert tmap.beat_to_seconds(3) == pytest.approx(riemann, rel=1e-9)
    for beat in (0.0, 0.5, 2.0, 3.999, 4.0, 9.25):
        assert tmap.seconds_to_beat(tmap.beat_to_seconds(beat)) == pytest.approx(beat, abs=1e-12)


def test_a_ramp_can_slow_down_and_a_tiny_slope_stays_exact() -> None:
    down = TempoMap([TempoChange(0, 140, ramp=True), TempoChange(8, 70)])
    assert down.beat_to_seconds(8) == pytest.approx(60 / -8.75 * math.log(0.5), rel=1e-12)
    flat = TempoMap([TempoChange(0, 120, ramp=True), TempoChange(8, 120 + 1e-9)])
    # a nearly flat ramp is as long as 8 beats at its mean tempo (to 1e-20)
    assert flat.beat_to_seconds(8) == pytest.approx(480 / (120 + 0.5e-9), rel=1e-13)
    assert flat.seconds_to_beat(480 / (120 + 0.5e-9)) == pytest.approx(8.0, rel=1e-13)
    last = TempoMap([TempoChange(0, 100, ramp=True)])  # nothing to ramp to: it holds
    assert last.beat_to_seconds(5) == pytest.approx(3.0)


def test_a_ramp_round_trips_and_older_maps_write_no_ramp_key() -> None:
    data = {"tempos": [{"id": "a", "beat": 0.0, "bpm": 90.0, "ramp": True},
                       {"id": "b", "beat": 8.0, "bpm": 120.0}], "meters": []}
    assert tempo_map_from_dict(data).to_dict()["tempos"] == data["tempos"]
    assert "ramp" not in TempoMap.constant(100).to_dict()["tempos"][0]


def test_warp_points_across_a_ramp_stay_on_the_curve() -> None:
    tmap = TempoMap([TempoChange(0, 120, ramp=True), TempoChange(8, 60), TempoChange(12, 90)])
    per_beat = RATE * 60 // 100
    points = tmap.warp_points(0, 0, 16 * per_beat, 100, RATE)
    assert len(points) > 10  # the ramp is cut into many straight pieces
    assert (8 * per_beat, round(tmap.beat_to_frame(8, RATE))) in points
    xs = [x for x, _ in points]
    for beat in (0.3, 2.7, 5.5, 7.9):  # anywhere between pairs: within the tolerance
        x = beat * per_beat
        j = max(i for i, v in enumerate(xs) if v <= x)
        (x0, y0), (x1, y1) = points[j], points[j + 1]
        line = y0 + (x - x0) * (y1 - y0) / (x1 - x0)
        assert abs(line - tmap.beat_to_frame(beat, RATE)) <= RAMP_WARP_TOLERANCE * RATE + 1


def test_warp_points_follow_a_tempo_change() -> None:
    # a 100 BPM source starting at bar 1 of a map that goes 120 -> 60 BPM at beat 4
    tmap = TempoMap([TempoChange(0, 120), TempoChange(4, 60)])
    per_beat = RATE * 60 // 100
    points = tmap.warp_points(0, 0, 8 * per_beat, 100, RATE)
    assert points == [(0, 0), (4 * per_beat, 4 * 24000), (8 * per_beat, 4 * 24000 + 4 * 48000)]


def test_tempo_module_does_not_need_numpy() -> None:
    import ast
    import pathlib

    import dsp_core.tempo as module

    tree = ast.parse(pathlib.Path(module.__file__).read_text())
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)
                for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree)
                 if isinstance(n, ast.ImportFrom) and n.module}
    assert "numpy" not in imported
