"""The soak script: a two-minute run against a server of its own (CI), and its verdicts.

``scripts/soak.py`` drives editors, uploads and bounces against a real ``dawserver
serve`` process, reports RSS and edit latency per window and fails when something
acknowledged is missing, memory grows past a bound or latency drifts. The 30-minute
run by hand and its figures are in docs/operations-faults.md.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "soak.py"


def load_soak():  # noqa: ANN201 - the script as a module
    spec = importlib.util.spec_from_file_location("soak_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.mark.soak
@pytest.mark.alone  # its latency windows must not drift with another test's load
@pytest.mark.timeout(240)
def test_a_two_minute_soak_loses_nothing_and_stays_bounded(tmp_path: Path) -> None:
    report_file = tmp_path / "soak.json"
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "--duration", "120", "--window", "20", "--editors", "4",
         "--upload-every", "8", "--bounce-every", "20", "--json", str(report_file)],
        capture_output=True, text=True, timeout=220)
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads(report_file.read_text())
    assert report["passed"] and report["lost"] == [] and report["errors"] == []
    assert len(report["windows"]) == 6
    # It really drove the server: every editor's moves were timed, uploads and bounces ran.
    assert report["edits"] > 4 * 5 * 120 * 0.8
    assert report["uploads"] >= 10 and report["bounces"] >= 4
    assert all(w["rss_mib"] > 0 and w["p95_ms"] > 0 for w in report["windows"])
    # Comments are content: the document grows with them, window by window.
    sizes = [w["doc_kib"] for w in report["windows"]]
    assert sizes == sorted(sizes) and sizes[-1] > sizes[0]


def window(soak, index: int, rss: float, p95: float):  # noqa: ANN001, ANN201
    return soak.Window(index, 60.0 * index, rss, 100, p95 / 2, p95, p95 * 1.5, 1, 1, 0)


def settings(soak, *extra: str):  # noqa: ANN001, ANN201
    return soak.arguments(["--max-rss-growth-mib", "50", "--max-drift", "3",
                           "--drift-floor-ms", "20", *extra])


def test_steady_windows_pass_the_verdict() -> None:
    soak = load_soak()
    windows = [window(soak, i, 300 + i, 10 + (i % 2)) for i in range(6)]
    assert soak.verdict(windows, settings(soak)) == []


def test_memory_growth_past_the_bound_fails() -> None:
    soak = load_soak()
    windows = [window(soak, i, 300 + 12 * i, 10) for i in range(6)]
    windows[0].doc_kib, windows[-1].doc_kib = 10.0, 100.0
    problems = soak.verdict(windows, settings(soak))
    assert len(problems) == 1 and "RSS grew 60.0 MiB" in problems[0]
    # 50 MiB plus 30 x 90 KiB of content
    assert "over the 52.6 MiB allowed" in problems[0]
    assert "the document's growth, 90.0 KiB encoded" in problems[0]


def test_the_documents_own_growth_is_allowed_on_top_of_the_bound() -> None:
    soak = load_soak()
    windows = [window(soak, i, 300 + 11 * i, 10) for i in range(6)]  # 55 MiB
    windows[0].doc_kib, windows[-1].doc_kib = 20.0, 320.0  # 300 KiB: 8.8 MiB allowed
    assert soak.verdict(windows, settings(soak)) == []
    problems = soak.verdict(windows, settings(soak, "--doc-memory-factor", "0"))
    assert len(problems) == 1 and "over the 50.0 MiB allowed" in problems[0]


def test_latency_drift_fails_but_a_small_absolute_rise_does_not() -> None:
    soak = load_soak()
    drifting = [window(soak, i, 300, 10 * 2 ** i) for i in range(6)]
    problems = soak.verdict(drifting, settings(soak))
    assert len(problems) == 1 and "edit latency drifted" in problems[0]
    small = [window(soak, i, 300, [2, 2, 3, 4, 8, 8][i]) for i in range(6)]
    assert soak.verdict(small, settings(soak)) == []  # 4x, but only 6 ms more


def test_a_single_window_is_too_short_to_judge() -> None:
    soak = load_soak()
    assert "too short" in soak.verdict([window(soak, 0, 300, 10)], settings(soak))[0]
