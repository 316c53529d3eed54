"""The page's effect sliders (web/src/effects.js ``PARAMS``) span what the engine plays."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from dsp_core.effects import PARAMS

pytestmark = pytest.mark.timeout(60)
EFFECTS_JS = Path(__file__).resolve().parent.parent / "web" / "src" / "effects.js"


def test_every_slider_has_the_engines_range_and_default() -> None:
    # the biquad's frequency slider stopped at 20 kHz while the engine takes 96 kHz: a
    # document's 40 kHz filter (a 192 kHz session) showed as 20 kHz and a touch wrote it
    script = (f"import {{ PARAMS }} from {json.dumps(EFFECTS_JS.as_uri())}\n"
              "console.log(JSON.stringify(PARAMS))\n")
    done = subprocess.run(["node", "--input-type=module", "-e", script],
                          capture_output=True, text=True, timeout=30, check=True)
    sliders = json.loads(done.stdout)
    assert sliders, "effects.js lists no sliders"
    for kind, rows in sliders.items():
        engine = {p.name: (p.low, p.high, p.default) for p in PARAMS[kind]}
        for name, low, high, _step, default in rows:
            assert (low, high, default) == engine[name], (kind, name)
