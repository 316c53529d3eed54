"""``dawserver immersive``: ADM BWF export and layout renders of a project file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytestmark = pytest.mark.timeout(300)


def dawserver(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dawserver", *args], capture_output=True,
                          text=True, timeout=240)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("immersive")
    result = dawserver("demo-project", str(directory / "p"), "--tracks", "4", "--seconds", "1")
    assert result.returncode == 0, result.stderr
    path = directory / "p" / "project.json"
    data = json.loads(path.read_text())
    mono = [t for t in data["tracks"] if t.get("channels", 1) == 1]
    mono[0]["immersive"] = {"kind": "object", "azimuth": 110, "elevation": 30}
    mono[1]["immersive"] = {"kind": "bed", "channels": ["M+000"]}
    path.write_text(json.dumps(data))
    return path


def test_export_writes_an_adm_bwf_with_bed_and_object(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "mix.wav"
    result = dawserver("immersive", str(project), "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert "ADM BWF: 7.1.4 bed + 1 object(s)" in result.stdout
    data = out.read_bytes()
    assert b"axml" in data[:65536] and b"chna" in data[:65536]
    info = sf.info(out)
    assert (info.channels, info.subtype) == (13, "PCM_24")


@pytest.mark.parametrize(("target", "channels"), [("7.1.4", 12), ("5.1", 6), ("binaural", 2)])
def test_render_targets_write_their_channels(project: Path, tmp_path: Path, target: str,
                                             channels: int) -> None:
    out = tmp_path / f"{target}.wav"
    result = dawserver("immersive", str(project), "--target", target, "-o", str(out))
    assert result.returncode == 0, result.stderr
    audio, _ = sf.read(out, dtype="float32", always_2d=True)
    assert audio.shape[1] == channels and np.isfinite(audio).all() and np.abs(audio).max() > 0


def test_a_bad_route_is_one_error_line(project: Path, tmp_path: Path) -> None:
    data = json.loads(project.read_text())
    data["tracks"][0]["immersive"] = {"kind": "object", "azimuth": 400}
    bad = project.parent / "bad.json"
    bad.write_text(json.dumps(data))
    result = dawserver("immersive", str(bad), "-o", str(tmp_path / "x.wav"))
    assert result.returncode == 1
    assert result.stderr.startswith("error: ") and "azimuth 400" in result.stderr
    assert "Traceback" not in result.stderr
