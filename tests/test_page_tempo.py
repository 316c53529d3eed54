"""The page's tempo map (web/src/tempo.js) draws the grid dsp_core.tempo computes."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from collab.schema import ProjectDocument
from dsp_core.session import Session

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="needs node")
TEMPO_JS = Path(__file__).resolve().parent.parent / "web" / "src" / "tempo.js"
TIMELINE_JS = TEMPO_JS.with_name("timeline.js")
TRANSPORT_JS = TEMPO_JS.with_name("transport.js")
RATE = 48000


def js_grid(data: dict, start: float, end: float) -> list[dict]:
    script = (f"import {{ tempoMap }} from {json.dumps(TEMPO_JS.as_uri())}\n"
              "const d = JSON.parse(process.argv[1])\n"
              "const map = tempoMap(d.tempos, d.meters, d.transport)\n"
              "console.log(JSON.stringify(map.grid(d.start, d.end)))\n")
    payload = {**data, "start": start, "end": end}
    done = subprocess.run(["node", "--input-type=module", "-e", script, json.dumps(payload)],
                          capture_output=True, text=True, timeout=30, check=True)
    return json.loads(done.stdout)


def test_the_page_grid_matches_the_engine_grid_across_changes() -> None:
    doc = ProjectDocument.from_session(Session())
    doc.set_tempo_change("a", 0, 100)
    doc.set_tempo_change("b", 6, 150)
    doc.set_tempo_change("c", 6, 75)  # a tie: the larger id wins on both sides
    doc.set_meter_change("m1", 1, 3, 4)
    doc.set_meter_change("m2", 3, 7, 8)
    data = doc.to_json()
    lines = js_grid(data, 0.0, 12.0)
    want = doc.tempo_map().grid(0, 12 * RATE, RATE)
    assert [(g["bar"], g["beat"], g["isBar"]) for g in lines] == [
        (g.bar, g.beat, g.is_bar) for g in want]
    assert [round(g["seconds"] * RATE) for g in lines] == [g.frame for g in want]
    assert len(lines) > 20


def test_without_changes_the_page_uses_the_transport_tempo_and_meter() -> None:
    doc = ProjectDocument.from_session(Session())
    doc.update_transport(tempo=90.0, beats_per_bar=3)
    lines = js_grid(doc.to_json(), 0.0, 2.01)
    assert [(g["bar"], g["beat"]) for g in lines] == [(1, 1), (1, 2), (1, 3), (2, 1)]
    assert lines[1]["seconds"] == pytest.approx(60 / 90)


def js_times(data: dict, beats: list[float]) -> dict[str, list[float]]:
    script = (f"import {{ tempoMap }} from {json.dumps(TEMPO_JS.as_uri())}\n"
              "const d = JSON.parse(process.argv[1])\n"
              "const map = tempoMap(d.tempos, d.meters, d.transport)\n"
              "const seconds = d.beats.map((b) => map.beatToSeconds(b))\n"
              "console.log(JSON.stringify({ seconds, beats: seconds.map(map.secondsToBeat),"
              " bpm: d.beats.map((b) => map.bpmAt(b)) }))\n")
    done = subprocess.run(["node", "--input-type=module", "-e", script,
                           json.dumps({**data, "beats": beats})],
                          capture_output=True, text=True, timeout=30, check=True)
    return json.loads(done.stdout)


def test_the_page_and_the_engine_agree_across_tempo_ramps() -> None:
    doc = ProjectDocument.from_session(Session())
    doc.set_tempo_change("a", 0, 80, ramp=True)   # 80 -> 160 over 8 beats
    doc.set_tempo_change("b", 8, 160)
    doc.set_tempo_change("c", 12, 140, ramp=True)  # 140 -> 70 over 4 beats, then holds
    doc.set_tempo_change("d", 16, 70)
    doc.set_meter_change("m1", 2, 3, 4)
    data = doc.to_json()
    tmap = doc.tempo_map()
    beats = [0.0, 0.5, 3.25, 7.99, 8.0, 10.0, 12.0, 13.7, 15.5, 16.0, 21.0]
    got = js_times(data, beats)
    assert got["seconds"] == pytest.approx([tmap.beat_to_seconds(b) for b in beats],
                                           rel=1e-12, abs=1e-12)
    assert got["beats"] == pytest.approx(beats, rel=1e-12, abs=1e-12)
    assert got["bpm"] == pytest.approx([tmap.bpm_at_beat(b) for b in beats], rel=1e-12)
    lines = js_grid(data, 0.0, 12.0)
    want = tmap.grid(0, 12 * RATE, RATE)
    assert [(g["bar"], g["beat"]) for g in lines] == [(g.bar, g.beat) for g in want]
    assert [round(g["seconds"] * RATE) for g in lines] == [g.frame for g in want]
    gaps = [b["seconds"] - a["seconds"] for a, b in zip(lines, lines[1:9], strict=False)]
    assert all(later < earlier for earlier, later in zip(gaps, gaps[1:], strict=False))


def run_in_page_sources(script: str, payload: dict) -> object:
    """What node prints (JSON) running the module ``script`` in web/src (its bare imports,
    such as 'yjs', resolve there) with ``payload`` as ``process.argv[1]``."""
    done = subprocess.run(["node", "--input-type=module", "-e", script, json.dumps(payload)],
                          capture_output=True, text=True, timeout=30, check=True,
                          cwd=TEMPO_JS.parent)
    return json.loads(done.stdout)


def test_a_shift_dragged_clip_snaps_to_the_grid_lines_the_ruler_draws() -> None:
    # the snap rounded to quarter notes: in 7/8 every other eighth, bar 2's line among
    # them, could never be reached
    doc = ProjectDocument.from_session(Session())
    doc.set_tempo_change("a", 0, 120)
    doc.set_tempo_change("b", 9, 90)
    doc.set_meter_change("m1", 1, 7, 8)
    doc.set_meter_change("m2", 4, 5, 4)
    lines = [g.frame for g in doc.tempo_map().grid(0, 14 * RATE, RATE)]
    asked = [f + d for f in lines[:-1] for d in (-700, 0, 900)] + [0, 5, 3 * RATE + 17]
    script = (f"import {{ tempoMap }} from {json.dumps(TEMPO_JS.as_uri())}\n"
              f"import {{ Timeline }} from {json.dumps(TIMELINE_JS.as_uri())}\n"
              "const d = JSON.parse(process.argv[1])\n"
              "const map = tempoMap(d.tempos, d.meters, d.transport)\n"
              f"const timeline = {{ sampleRate: {RATE}, project: {{ tempoMap: () => map }} }}\n"
              "const snap = (f) => Timeline.prototype._snap.call(timeline, f)\n"
              "console.log(JSON.stringify(d.asked.map(snap)))\n")
    snapped = run_in_page_sources(script, {**doc.to_json(), "asked": asked})
    assert snapped == [min(lines, key=lambda line: (abs(line - f), line)) for f in asked]


def test_the_transport_reads_and_steps_the_bars_and_beats_the_ruler_draws() -> None:
    # the readout and ←/→ used the transport's tempo and beats per bar alone: after a
    # tempo change, or in 6/8, they disagreed with the ruler
    doc = ProjectDocument.from_session(Session())
    doc.set_tempo_change("a", 0, 120)
    doc.set_tempo_change("b", 8, 60)
    doc.set_meter_change("m1", 0, 4, 4)
    doc.set_meter_change("m2", 3, 6, 8)
    grid = doc.tempo_map().grid(0, 30 * RATE, RATE)
    at = [0, RATE // 3, 4 * RATE, 10 * RATE, 10 * RATE + 100, 13 * RATE + 5000, 21 * RATE]
    script = (f"globalThis.requestAnimationFrame = () => 0\n"
              f"const {{ tempoMap }} = await import({json.dumps(TEMPO_JS.as_uri())})\n"
              f"const {{ Transport }} = await import({json.dumps(TRANSPORT_JS.as_uri())})\n"
              "const d = JSON.parse(process.argv[1])\n"
              "const map = tempoMap(d.tempos, d.meters, d.transport)\n"
              "let playhead = 0\n"
              "const fake = { editable: true, playhead: () => playhead, clock: {}, bars: {},\n"
              f"  onTick () {{}}, project: {{ sampleRate: {RATE}, transport: () => d.transport,\n"
              "    tempoMap: () => map, setTransport (f) { playhead = f.position } } }\n"
              "const out = []\n"
              "for (const frame of d.at) {\n"
              "  playhead = frame\n"
              "  Transport.prototype._frame.call(fake)\n"
              "  const row = { shown: fake.bars.textContent, steps: [] }\n"
              "  for (const [steps, bars] of [[1, false], [-1, false], [1, true], [-1, true]]) {\n"
              "    playhead = frame\n"
              "    Transport.prototype.nudge.call(fake, steps, bars)\n"
              "    row.steps.push(playhead)\n"
              "  }\n"
              "  out.push(row)\n"
              "}\n"
              "console.log(JSON.stringify(out))\n")
    rows = run_in_page_sources(script, {**doc.to_json(), "at": at})
    bars = [g for g in grid if g.is_bar]

    def step(lines: list, frame: int, by: int) -> int:
        here = min(range(len(lines)), key=lambda i: (abs(lines[i].frame - frame), i))
        return lines[max(0, here + by)].frame

    for frame, row in zip(at, rows, strict=True):
        line = [g for g in grid if g.frame <= frame][-1]
        assert row["shown"] == f"{line.bar}.{line.beat}", frame
        assert row["steps"] == [step(grid, frame, 1), step(grid, frame, -1),
                                step(bars, frame, 1), step(bars, frame, -1)], frame
