"""The immersive panel's pad (web/src/immersive.js): a press reverses what the pad draws."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(60)
IMMERSIVE_JS = Path(__file__).resolve().parent.parent / "web" / "src" / "immersive.js"


def pressed_on_the_dot(objects: list[dict]) -> list[dict]:
    """What a press exactly on each object's drawn dot writes (pad point → position)."""
    script = (f"import {{ padObjectPosition, padPoint }} from {json.dumps(IMMERSIVE_JS.as_uri())}\n"
              "const objects = JSON.parse(process.argv[1])\n"
              "console.log(JSON.stringify(objects.map((o) => {\n"
              "  const floor = o.distance * Math.cos(o.elevation * Math.PI / 180)\n"
              "  const at = padPoint(o.azimuth, floor)\n"
              "  return padObjectPosition(at.x, at.y, o.elevation)\n"
              "})))\n")
    done = subprocess.run(["node", "--input-type=module", "-e", script, json.dumps(objects)],
                          capture_output=True, text=True, timeout=30, check=True,
                          cwd=IMMERSIVE_JS.parent)
    return json.loads(done.stdout)


def test_a_press_on_a_raised_objects_dot_keeps_its_distance() -> None:
    # the pad draws a raised object's floor projection (distance × cos elevation) but a
    # press wrote that radius as the distance: each click on the dot halved it at 60°
    objects = [{"azimuth": 30.0, "elevation": 60.0, "distance": 1.0},
               {"azimuth": -110.0, "elevation": 45.0, "distance": 0.6},
               {"azimuth": 0.0, "elevation": 0.0, "distance": 0.25},
               {"azimuth": 90.0, "elevation": -30.0, "distance": 0.8}]
    for wrote, was in zip(pressed_on_the_dot(objects), objects, strict=True):
        assert wrote["azimuth"] == pytest.approx(was["azimuth"], abs=0.1)
        assert wrote["distance"] == pytest.approx(was["distance"], abs=0.002)
