"""``dawserver tempo``: the map of a project file and position conversions."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from dawserver.cli import main

tempo = main.commands["tempo"]


def _project(tmp_path: Path) -> Path:
    path = tmp_path / "project.json"
    path.write_text(json.dumps({
        "format": "max-booster-project", "version": 4, "sample_rate": 48000,
        "tempo": {"tempos": [{"id": "a", "beat": 0, "bpm": 120},
                             {"id": "b", "beat": 8, "bpm": 60}],
                  "meters": [{"id": "m", "bar": 0, "numerator": 4, "denominator": 4}]}}))
    return path


def test_tempo_lists_the_changes_and_converts_positions(tmp_path: Path) -> None:
    result = CliRunner().invoke(tempo, [str(_project(tmp_path)), "--at", "3.1", "--at",
                                        "216000", "--bars", "3"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "tempo 60 BPM from beat 8 (3.1, frame 192000)" in lines
    assert "meter 4/4 from bar 1" in lines
    assert "bar 3: frame 192000" in lines
    assert "3.1 = frame 192000" in lines  # two bars at 120 BPM: 4 s
    assert "frame 216000 = 3.1+0.500" in lines  # half a beat at 60 BPM later


def test_a_bad_position_is_one_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(tempo, [str(_project(tmp_path)), "--at", "2.9"])
    assert result.exit_code == 1
    assert "no such bar.beat" in result.output and "has 4 beats" in result.output
    result = CliRunner().invoke(tempo, [str(_project(tmp_path)), "--at", "soon"])
    assert "give a frame (48000) or a bar.beat (5.3)" in result.output


def test_a_ramp_is_listed_and_positions_follow_it(tmp_path: Path) -> None:
    path = _project(tmp_path)
    data = json.loads(path.read_text())
    data["tempo"]["tempos"][0]["ramp"] = True  # 120 -> 60 BPM over 8 beats
    path.write_text(json.dumps(data))
    result = CliRunner().invoke(tempo, [str(path), "--at", "3.1"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "tempo 120 BPM from beat 0 (1.1, frame 0), ramping to the next" in lines
    # 8 beats gliding from 120 to 60 BPM: 60/k ln(60/120), k = -7.5 BPM a beat = 5.545 s
    assert "3.1 = frame 266169" in lines
