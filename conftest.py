"""Run-wide pytest policy shared by ``tests/`` and ``benchmarks/``.

``scripts/test.sh`` installs every prerequisite (PostgreSQL, Redis, Node clients,
Chromium, PortAudio, the Whisper model) and sets ``DAW_REQUIRE_ALL=1``: under it a
skipped test counts as a failure, because a skip can then only mean a broken set-up.
"""

from __future__ import annotations

import os

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("DAW_REQUIRE_ALL") != "1" or not report.skipped:
        return
    if hasattr(report, "wasxfail"):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    report.outcome = "failed"
    report.longrepr = (f"skipped under DAW_REQUIRE_ALL=1, where scripts/setup.sh has installed "
                       f"everything, so the set-up is broken: {reason}")
