"""The page's warp marker rules (web/src/warp_map.js) agree with the engine's: a marker
list the page accepts is one dsp_core plays, and a marker the page adds leaves every
timeline frame playing the source frame it played before."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from dsp_core.errors import ProjectError
from dsp_core.graph import clip_stretch
from dsp_core.session import Clip, Session, Track

pytestmark = [pytest.mark.skipif(shutil.which("node") is None, reason="needs node"),
              pytest.mark.timeout(60)]
WARP_JS = Path(__file__).resolve().parent.parent / "web" / "src" / "warp_map.js"
RATE = 48000
SOURCE_FRAMES = 20 * RATE


def run_js(body: str, data: Any) -> Any:
    """Run `body` (a function of `d` returning JSON-able data) with warp_map.js imported."""
    script = (f"import * as W from {json.dumps(WARP_JS.as_uri())}\n"
              "const d = JSON.parse(process.argv[1])\n"
              f"const out = ((d) => {{ {body} }})(d)\n"
              "console.log(JSON.stringify(out))\n")
    done = subprocess.run(["node", "--input-type=module", "-e", script, json.dumps(data)],
                          capture_output=True, text=True, timeout=30, check=True)
    return json.loads(done.stdout)


def engine_refuses(warp: list[list[int]], position: int) -> bool:
    """Whether the engine refuses ``warp`` on a clip at ``position``."""
    clip = Clip("s", position, RATE, warp=tuple(map(tuple, warp)))
    session = Session(sample_rate=RATE, tracks=[Track("t", clips=[clip])])
    try:
        session.validate()
        if warp:
            clip_stretch(clip, session, RATE, SOURCE_FRAMES)
    except ProjectError:
        return True
    return False


CASES = [
    ([[0, 0], [RATE, RATE]], 0),
    ([[0, 0], [RATE, 4 * RATE]], 0),  # a stretch of exactly 4
    ([[0, 0], [RATE, 4 * RATE + 1]], 0),  # just past it
    ([[0, 0], [4 * RATE, RATE]], 0),  # exactly 0.25
    ([[0, 0], [4 * RATE + 4, RATE]], 0),  # just under it
    ([[0, 0], [0, RATE]], 0),  # two at one source frame
    ([[RATE, RATE], [0, 2 * RATE]], 0),  # folding back
    ([[0, -5]], 0),
    ([[1000, 2000]], 999),  # the source would start after the clip does
    ([[1000, 2000]], 1000),
    ([], 0),
]


def test_the_page_refuses_the_markers_the_engine_refuses() -> None:
    problems = run_js("return d.map(([w, p]) => W.warpProblem(w, p))", CASES)
    assert [bool(p) for p in problems] == [engine_refuses(w, p) for w, p in CASES]
    assert sum(map(bool, problems)) == 6


def source_played(clip: Clip, at: int) -> float:
    """The source frame the engine plays at timeline frame ``at`` (its time map inverted)."""
    spec, start = clip_stretch(clip, Session(sample_rate=RATE), RATE, SOURCE_FRAMES)
    rendered = (start if start is not None else clip.offset) + at - clip.position
    points = spec.time_map(SOURCE_FRAMES)
    for (x0, y0), (x1, y1) in zip(points, points[1:], strict=False):
        if rendered <= y1:
            return x0 + (rendered - y0) * (x1 - x0) / (y1 - y0)
    raise AssertionError("past the source")


CLIPS = [
    Clip("s", RATE, 4 * RATE, offset=2000),  # plain
    Clip("s", RATE, 4 * RATE, offset=2000, stretch=1.5),  # stretched, no markers
    Clip("s", RATE, 4 * RATE, warp=((RATE, RATE), (2 * RATE, 3 * RATE))),  # warped
]


@pytest.mark.parametrize("clip", CLIPS, ids=["plain", "stretched", "warped"])
@pytest.mark.parametrize("seconds", [1.0, 1.3, 2.5, 4.2])
def test_an_added_marker_moves_nothing(clip: Clip, seconds: float) -> None:
    at = round(seconds * RATE)
    data = {"position": clip.position, "length": clip.length, "offset": clip.offset,
            "stretch": clip.stretch, "warp": [list(m) for m in clip.warp]}
    got = run_js("try { return W.withMarkerAt(d.clip, d.at) } catch (e) { return e.message }",
                 {"clip": data, "at": at})
    if clip.warp and at in {y for _, y in clip.warp}:
        assert got == "a warp marker is already there"
        return
    warped = replace(clip, warp=tuple(map(tuple, got["warp"])), stretch=1.0)
    assert got["warp"][got["index"]][1] == at
    assert not engine_refuses(got["warp"], clip.position)
    for t in range(clip.position, clip.end, RATE // 4):
        assert source_played(warped, t) == pytest.approx(source_played(clip, t), abs=1.0)


def test_a_marker_stays_within_the_stretch_its_neighbours_allow() -> None:
    warp = [[0, 0], [RATE, RATE], [2 * RATE, 2 * RATE]]
    low, high = run_js("return W.markerRange(d, 1, 0)", warp)
    assert (low, high) == (RATE // 4, 2 * RATE - RATE // 4)  # 0.25 on either side
    for y in (low, high):
        assert not engine_refuses([warp[0], [RATE, y], warp[2]], 0)
    for y in (low - 1, high + 1):
        assert engine_refuses([warp[0], [RATE, y], warp[2]], 0)
    # the first marker cannot put the source's start after the clip's
    assert run_js("return W.markerRange(d, 0, 0)", warp)[1] == 0
    # removing the first of these would, so it stays
    message = run_js("try { return W.withoutMarker({ position: 0, warp: d }, 0) } "
                     "catch (e) { return e.message }", [[0, 0], [RATE, 2 * RATE]])
    assert "source's start" in message


def test_a_moved_clip_takes_its_warp_markers_along() -> None:
    # the markers pin timeline frames: moving only `position` slid the clip over audio that
    # stayed put, and a move left put the source's start after the clip's (the engine
    # refused the clip)
    project_js = WARP_JS.with_name("project.js")
    script = (f"import {{ Project }} from {json.dumps(project_js.as_uri())}\n"
              f"import * as W from {json.dumps(WARP_JS.as_uri())}\n"
              "import * as Y from 'yjs'\n"
              "const p = new Project('p', 't')\n"
              "p.roots.meta.set('sample_rate', 48000)\n"
              "p.roots.tracks.set('t1', new Y.Map())\n"
              "const id = p.addClip('t1', { source: 'a'.repeat(64), position: 480000, "
              "length: 192000 })\n"
              "p.setWarp(id, [[0, 480000], [96000, 600000], [192000, 720000]])\n"
              "const out = []\n"
              "for (const to of [576000, 384000, 0]) {\n"
              "  p.moveClip(id, to)\n"
              "  const c = p.clip(id)\n"
              "  out.push({ position: c.position, warp: c.warp, "
              "start: W.sourceAt(c, c.position), problem: W.warpProblem(c.warp, c.position) })\n"
              "}\n"
              "console.log(JSON.stringify(out))\n")
    done = subprocess.run(["node", "--input-type=module", "-e", script], capture_output=True,
                          text=True, timeout=30, check=True, cwd=WARP_JS.parent)
    moves = json.loads(done.stdout)
    assert [m["position"] for m in moves] == [576000, 384000, 0]
    for move in moves:
        at = move["position"]
        assert move["warp"] == [[0, at], [96000, at + 120000], [192000, at + 240000]]
        assert move["start"] == 0 and move["problem"] == ""
        assert not engine_refuses(move["warp"], at)
