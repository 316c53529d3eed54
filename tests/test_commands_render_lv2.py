"""``dawserver render`` tells of an lv2 plug-in that failed during the render (an effect,
or a MIDI track's instrument): a warning line per plug-in and the file kept, or with
``--strict`` no file and exit 1; a clean render warns of nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from lv2_helpers import INSTRUMENT, MISBEHAVE, MODES, lv2_path  # noqa: F401

from dsp_core.effects import EffectSpec
from dsp_core.midi import Instrument, MidiClip, Note
from dsp_core.project import save_project
from dsp_core.session import Clip, Session, Track

pytestmark = [pytest.mark.timeout(300), pytest.mark.usefixtures("lv2_path")]
RATE = 48000


def dawserver(*args: str) -> subprocess.CompletedProcess:
    """Run the command; a block the plug-in takes 2 s over on a loaded machine is no hang
    here (``DAW_LV2_DEADLINE``): only the plug-in's own mode makes it fail."""
    env = {**os.environ, "DAW_LV2_DEADLINE": "60"}
    return subprocess.run([sys.executable, "-m", "dawserver", *args], capture_output=True,
                          text=True, timeout=240, env=env)


def project(tmp_path: Path, mode: str) -> Path:
    """A one-track project playing a tone through the test plug-in in ``mode``."""
    tone = tmp_path / "tone.wav"
    t = np.arange(RATE) / RATE
    sf.write(tone, (0.25 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), RATE)
    effect = EffectSpec("lv2", {"uri": MISBEHAVE, "mode": float(MODES[mode])}, id="fx-1")
    session = Session(name="Plug", sample_rate=RATE, tracks=[
        Track("t1", channels=1, clips=[Clip(str(tone), 0, RATE)], effects=[effect])])
    return save_project(session, tmp_path / "project.json")


def test_a_plugin_that_fails_is_a_warning_line_and_the_file_is_kept(tmp_path: Path) -> None:
    out = tmp_path / "mix.wav"
    result = dawserver("render", str(project(tmp_path, "nan")), "-o", str(out),
                       "--no-progress")
    assert result.returncode == 0, result.stderr
    [warning] = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert warning.startswith(f"warning: bypassed in {out}: Misbehaving test plug-in")
    assert "(effect fx-1 of 't1') failed" in warning and "NaN" in warning
    audio, _ = sf.read(out, dtype="float32")
    assert np.isfinite(audio).all() and np.abs(audio).max() > 0.05  # the dry signal


def test_strict_refuses_to_keep_a_file_with_a_failed_plugin(tmp_path: Path) -> None:
    out = tmp_path / "mix.wav"
    result = dawserver("render", str(project(tmp_path, "nan")), "-o", str(out),
                       "--no-progress", "--strict")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    [warning] = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert "effect fx-1 of 't1'" in warning
    assert result.stderr.strip().splitlines()[-1].startswith(
        "error: 1 lv2 plug-in(s) failed during the render")
    assert not out.exists()


def test_a_clean_render_warns_of_nothing_even_when_strict(tmp_path: Path) -> None:
    out = tmp_path / "mix.wav"
    result = dawserver("render", str(project(tmp_path, "pass")), "-o", str(out),
                       "--no-progress", "--strict")
    assert result.returncode == 0, result.stderr
    # lilv's own "...: warning: Duplicate plugin" lines are no warning of ours
    assert not [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert "x real time" in result.stdout
    assert out.exists()


def test_an_instrument_that_crashes_is_a_warning_line_too(tmp_path: Path) -> None:
    crashing = Instrument("lv2", {"uri": INSTRUMENT, "crash": 1.0})
    session = Session(name="Keys", sample_rate=RATE, tracks=[Track(
        "keys", instrument=crashing, midi_clips=[MidiClip(100, 20000, [
            Note(60, 100, 1000, 500)])])])
    out = tmp_path / "mix.wav"
    result = dawserver("render", str(save_project(session, tmp_path / "project.json")),
                       "-o", str(out), "--no-progress")
    assert result.returncode == 0, result.stderr
    [warning] = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert "(the instrument of 'keys') failed" in warning and "crashed" in warning
    assert out.exists()
