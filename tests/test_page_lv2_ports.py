"""How the page shows an LV2 plug-in's control ports (web/src/lv2.js controlSpecs)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

LV2_JS = Path(__file__).resolve().parent.parent / "web" / "src" / "lv2.js"


def specs(controls: list[dict]) -> list[dict]:
    script = (f"import {{ controlSpecs }} from {json.dumps(LV2_JS.as_uri())}\n"
              "console.log(JSON.stringify(controlSpecs({ controls: "
              "JSON.parse(process.argv[1]) }, 48000)))\n")
    done = subprocess.run(["node", "--input-type=module", "-e", script, json.dumps(controls)],
                          capture_output=True, text=True, timeout=30, check=True)
    return json.loads(done.stdout)


def port(symbol: str, low: float, high: float, points: list[tuple[float, str]],
         **flags: bool) -> dict:
    return {"symbol": symbol, "name": symbol, "minimum": low, "maximum": high,
            "default": low, "per_sample_rate": False, "toggled": False,
            "integer": flags.get("integer", False),
            "enumeration": flags.get("enumeration", False),
            "scale_points": [{"value": v, "label": label} for v, label in points]}


def test_an_integer_port_is_a_menu_only_when_every_value_has_a_label() -> None:
    shown = specs([
        port("channel", 0, 16, [(0, "Any")], integer=True),  # 1..16 unlabelled
        port("wave", 0, 2, [(0, "Sine"), (1, "Saw"), (2, "Square")], integer=True),
        port("mode", 0, 4, [(0, "Pass")], enumeration=True, integer=True),
        port("gain", 0, 4, [(1, "Unity")]),
    ])
    assert [(s["symbol"], bool(s["menu"])) for s in shown] == [
        ("channel", False), ("wave", True), ("mode", True), ("gain", False)]
    assert shown[0]["step"] == 1 and shown[0]["points"] == [{"value": 0, "label": "Any"}]
