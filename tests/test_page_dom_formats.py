"""The page's readouts (web/src/dom.js) say what the engine plays."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from dsp_core.session import db_to_linear

pytestmark = pytest.mark.timeout(60)
DOM_JS = Path(__file__).resolve().parent.parent / "web" / "src" / "dom.js"


def test_a_fader_reads_minus_inf_only_where_the_engine_is_silent() -> None:
    # the bottom of a fader (-60 dB) read "-inf dB" while the engine played it at 0.001
    gains = [-60.0, -70.0, -6.0, 0.0, 3.25]
    script = (f"import {{ formatDb }} from {json.dumps(DOM_JS.as_uri())}\n"
              "const gains = JSON.parse(process.argv[1])\n"
              "console.log(JSON.stringify([...gains.map(formatDb), formatDb(-Infinity)]))\n")
    done = subprocess.run(["node", "--input-type=module", "-e", script, json.dumps(gains)],
                          capture_output=True, text=True, timeout=30, check=True)
    *shown, silence = json.loads(done.stdout)
    assert shown == ["-60.0 dB", "-70.0 dB", "-6.0 dB", "0.0 dB", "+3.3 dB"]
    assert all(db_to_linear(g) > 0 for g in gains) and silence == "-inf dB"
