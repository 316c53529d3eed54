"""Warp marker snapping on the page (web/src/warp_snap.js): a dragged marker lands on the
engine's beats (dsp_core.tempo, ramps included), an added one on a transient of its
source where the engine plays it now, only within reach, and Ctrl/⌘ bypasses it."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dsp_core.graph import clip_stretch
from dsp_core.session import Clip, Session
from dsp_core.tempo import TempoChange, TempoMap

pytestmark = [
    pytest.mark.skipif(shutil.which("node") is None, reason="needs node"),
    pytest.mark.timeout(60),
]
WEB = Path(__file__).resolve().parent.parent / "web" / "src"
RATE = 48000
#: A ramp from 140 to 70 BPM over 8 beats, then 70 BPM.
TEMPOS = {"a": {"beat": 0, "bpm": 140, "ramp": True}, "b": {"beat": 8, "bpm": 70}}
ENGINE_MAP = TempoMap([TempoChange(0, 140, "a", ramp=True), TempoChange(8, 70, "b")])
#: SNAP_PX at 100 px a second.
RADIUS = 8 * RATE // 100


def run_js(body: str, data: Any) -> Any:
    """Run ``body`` (a function of ``d`` returning JSON-able data) with warp_snap.js as
    ``S``, warp_map.js as ``W`` and the page's tempo map of :data:`TEMPOS` as ``map``."""
    script = (
        f"import * as S from {json.dumps((WEB / 'warp_snap.js').as_uri())}\n"
        f"import * as W from {json.dumps((WEB / 'warp_map.js').as_uri())}\n"
        f"import {{ tempoMap }} from {json.dumps((WEB / 'tempo.js').as_uri())}\n"
        "const d = JSON.parse(process.argv[1])\n"
        f"const map = tempoMap({json.dumps(TEMPOS)}, {{}}, {{}})\n"
        f"const snap = {{ map, sampleRate: {RATE}, radius: {RADIUS} }}\n"
        "const out = ((d) => { " + body + " })(d)\n"
        "console.log(JSON.stringify(out))\n"
    )
    done = subprocess.run(
        ["node", "--input-type=module", "-e", script, json.dumps(data)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return json.loads(done.stdout)


def beat(n: float) -> int:
    return round(ENGINE_MAP.beat_to_frame(n, RATE))


def test_a_dragged_marker_snaps_to_the_engines_beats_on_a_ramp() -> None:
    beats = [beat(n) for n in range(12)]
    near = [b + d for b in beats[1:] for d in (-RADIUS, -RADIUS // 3, 7, RADIUS)]
    got = run_js("return d.map((at) => S.snapDrag(at, snap))", near)
    assert got == [b for b in beats[1:] for _ in range(4)]
    # out of reach, or a beat its neighbours do not let it reach: it stays where dragged
    far = [beats[5] + RADIUS + 1, beats[5] - RADIUS - 1]
    assert run_js("return d.map((at) => S.snapDrag(at, snap))", far) == far
    held = run_js(
        "return S.snapDrag(d.at, { ...snap, low: d.low, high: d.high })",
        {"at": beats[5] + 100, "low": beats[5] + 1, "high": beats[6]},
    )
    assert held == beats[5] + 100
    # the map's own beats, not a fixed tempo: 140 BPM's beat 5 is far from the ramp's
    assert abs(round(5 * 60 / 140 * RATE) - beats[5]) > 4 * RADIUS


def test_ctrl_or_command_bypasses_snapping() -> None:
    events = [{"ctrlKey": True}, {"metaKey": True}, {"shiftKey": True}, {"altKey": True}, {}]
    assert run_js("return d.map(S.bypassesSnap)", events) == [True, True, False, False, False]


def peaks(audio: np.ndarray, per_peak: int) -> dict[str, Any]:
    """The server's peaks of mono ``audio`` (min and max per ``per_peak`` frames)."""
    frames = len(audio) // per_peak * per_peak
    blocks = audio[:frames].reshape(-1, per_peak)
    return {
        "sampleRate": RATE,
        "framesPerPeak": per_peak,
        "min": blocks.min(axis=1).tolist(),
        "max": blocks.max(axis=1).tolist(),
    }


def drum_loop() -> tuple[np.ndarray, list[int]]:
    """Two seconds: decaying hits at known frames over a quiet held tone, one hit soft."""
    t = np.arange(2 * RATE) / RATE
    audio = 0.02 * np.sin(2 * np.pi * 110 * t)
    hits = [9000, 33000, 40000, 70000]
    for hit, level in zip(hits, [0.9, 0.6, 0.5, 0.3], strict=True):
        decay = np.exp(-np.arange(6000) / 800) * np.sin(2 * np.pi * 900 * np.arange(6000) / RATE)
        audio[hit : hit + 6000] += level * decay
    return audio.astype(np.float32), hits


@pytest.mark.parametrize("per_peak", [64, 256, 1024])
def test_transients_are_found_at_each_hit_and_nowhere_else(per_peak: int) -> None:
    audio, hits = drum_loop()
    found = run_js("return S.transients(d)", peaks(audio, per_peak))
    assert len(found) == len(hits), found
    for hit, frame in zip(hits, found, strict=True):
        assert hit - per_peak < frame <= hit  # the start of the peak holding the hit
    assert run_js("return S.transients(d)", peaks(np.zeros(RATE, np.float32), per_peak)) == []


def engine_plays(clip: Clip, source: int) -> float:
    """The timeline frame where the engine plays ``source`` of ``clip``."""
    spec, start = clip_stretch(clip, Session(sample_rate=RATE), RATE, 2 * RATE)
    rendered = spec.map_frame(source, 2 * RATE)
    return clip.position + rendered - (clip.offset if start is None else start)


def test_an_added_marker_snaps_to_a_transient_where_it_plays_now() -> None:
    clip = Clip("s", RATE, 3 * RATE, warp=((0, RATE), (RATE // 2, 2 * RATE)))
    data = {
        "clip": {
            "position": clip.position,
            "length": clip.length,
            "offset": 0,
            "stretch": 1,
            "warp": [list(m) for m in clip.warp],
        },
        "onsets": [33000, 40000],
    }
    heard = [engine_plays(clip, s) for s in data["onsets"]]  # 3 s apart as stretched ×2
    for onset, at in zip(data["onsets"], heard, strict=True):
        got = run_js(
            "const at = S.snapAdd(d.clip, d.at, { ...snap, onsets: d.onsets })\n"
            "return [at, W.withMarkerAt(d.clip, at).warp]",
            {**data, "at": at + 500},
        )
        assert got[0] == pytest.approx(at, abs=1)
        assert [onset, got[0]] in got[1]  # the marker pins that hit: nothing moves
    # far from any hit or beat it stays where it was put; a hit outside the clip is no target
    quiet = beat(3) + RADIUS + 2000
    assert (
        run_js(
            "return S.snapAdd(d.clip, d.at, { ...snap, onsets: d.onsets })", {**data, "at": quiet}
        )
        == quiet
    )
    trimmed = {"position": RATE, "length": RATE, "offset": 1000, "stretch": 1, "warp": []}
    assert beat(2) < RATE - RADIUS  # no beat in reach either
    outside = {"clip": trimmed, "onsets": [0], "at": RATE + 10}  # source 0 plays at RATE - 1000
    assert (
        run_js("return S.snapAdd(d.clip, d.at, { ...snap, onsets: d.onsets })", outside)
        == RATE + 10
    )
