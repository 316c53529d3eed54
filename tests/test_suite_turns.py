"""The suite's own harness: under pytest-xdist, a test marked ``alone`` runs while no
other worker runs a test (conftest.py's turns), and the others still run side by side."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

TIMED = '''
import json, os, time
import pytest

def spend(name: str, seconds: float) -> None:
    start = time.monotonic()
    time.sleep(seconds)
    with open(os.environ["TURNS_LOG"], "a") as log:
        log.write(json.dumps([name, start, time.monotonic()]) + "\\n")
'''


def test_an_alone_test_runs_by_itself_and_the_others_side_by_side(tmp_path: Path) -> None:
    (tmp_path / "timed.py").write_text(TIMED)
    (tmp_path / "test_alone.py").write_text(
        "import pytest\nfrom timed import spend\n\n"
        "@pytest.mark.alone\ndef test_alone():\n    spend('alone', 1.0)\n")
    (tmp_path / "test_shared.py").write_text(
        "import pytest\nfrom timed import spend\n\n"
        "@pytest.mark.parametrize('n', range(8))\n"
        "def test_shared(n):\n    spend(f'shared{n}', 0.3)\n")
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\nmarkers =\n    alone: runs by itself\n")
    log = tmp_path / "turns.log"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "conftest", "-p", "no:cacheprovider",
         "-n", "2", "--dist", "load", "-o", "timeout=60", str(tmp_path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{tmp_path}", "TURNS_LOG": str(log)})
    assert run.returncode == 0, run.stdout + run.stderr
    spans = {name: (start, end)
             for name, start, end in map(json.loads, log.read_text().splitlines())}
    assert len(spans) == 9
    alone = spans.pop("alone")
    assert all(end <= alone[0] or start >= alone[1] for start, end in spans.values()), spans
    # the others do run two at a time
    assert any(a[0] < b[1] and b[0] < a[1] for i, a in enumerate(spans.values())
               for b in list(spans.values())[i + 1:])
