"""Helpers of the stretch tests: Rubber Band's runs counted, a fresh render cache
(``restart``: every module holding the cache gets an empty one)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import dawserver.clip_renders as clip_renders_module
import dawserver.stretch_renders as stretch_renders_module
import dsp_core.graph as graph_module
import dsp_core.stretch as stretch_module

needs_rubberband = pytest.mark.skipif(not stretch_module.rubberband_available(),
                                      reason="needs the rubberband command (rubberband-cli)")


class RubberBandRuns:
    """A ``rubberband`` first on ``PATH`` that notes each run, then runs the real one (so
    runs in other processes, e.g. ``dawserver render``, count too)."""

    def __init__(self, folder: Path) -> None:
        real = shutil.which("rubberband")
        if real is None:
            raise RuntimeError("the rubberband command is not installed")
        self.bin = folder / "bin"
        self.bin.mkdir(parents=True)
        self.log = folder / "rubberband-runs"
        self.log.touch()
        script = self.bin / "rubberband"
        script.write_text(f'#!/bin/sh\necho run >> "{self.log}"\nexec "{real}" "$@"\n')
        script.chmod(0o755)

    @property
    def count(self) -> int:
        """How many times Rubber Band ran."""
        return len(self.log.read_text().splitlines())

    @classmethod
    def on_path(cls, folder: Path, monkeypatch: pytest.MonkeyPatch) -> RubberBandRuns:
        """A counting ``rubberband`` put first on ``PATH`` (this process and its children)."""
        runs = cls(folder)
        monkeypatch.setenv("PATH", f"{runs.bin}:{os.environ.get('PATH', '')}")
        return runs


def restart(monkeypatch: pytest.MonkeyPatch) -> stretch_module.StretchCache:
    """Empty the render cache again mid-test (a restart of the server)."""
    cache = stretch_module.StretchCache()
    for module in (stretch_module, graph_module, stretch_renders_module, clip_renders_module):
        monkeypatch.setattr(module, "CACHE", cache)
    return cache
