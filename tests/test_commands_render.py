"""``dawserver demo-project`` and ``dawserver render`` end to end, bad input included."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from dsp_core.project import load_project

pytestmark = pytest.mark.timeout(600)


def dawserver(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dawserver", *args], capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("demo")
    result = dawserver("demo-project", str(directory / "p"), "--tracks", "12", "--seconds", "2")
    assert result.returncode == 0, result.stderr
    return directory / "p" / "project.json"


def _copy(demo: Path, tmp_path: Path) -> Path:
    shutil.copytree(demo.parent, tmp_path / "p")
    return tmp_path / "p" / "project.json"


def test_render_writes_32_bit_float_at_192k_and_reports_speed(demo: Path, tmp_path: Path) -> None:
    out = tmp_path / "mix.wav"
    result = dawserver("render", str(demo), "-o", str(out), "--sample-rate", "192000",
                       "--bit-depth", "32f", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "x real time" in result.stdout
    info = sf.info(out)
    session = load_project(demo)
    assert (info.samplerate, info.channels, info.subtype) == (192000, 2, "FLOAT")
    assert info.frames == round(session.length * 192000 / session.sample_rate)
    audio, _ = sf.read(out, dtype="float32")
    assert np.isfinite(audio).all() and np.abs(audio).max() > 0.05


def test_render_to_24_bit_flac_matches_float_render_within_dither(demo: Path,
                                                                   tmp_path: Path) -> None:
    float_out, pcm_out = tmp_path / "f.wav", tmp_path / "p.flac"
    assert dawserver("render", str(demo), "-o", str(float_out), "--no-progress").returncode == 0
    result = dawserver("render", str(demo), "-o", str(pcm_out), "--bit-depth", "24",
                       "--no-progress")
    assert result.returncode == 0, result.stderr
    assert sf.info(pcm_out).subtype == "PCM_24"
    a, _ = sf.read(float_out, dtype="float64")
    b, _ = sf.read(pcm_out, dtype="float64")
    assert np.abs(a - b).max() < 2.0 / 2**23


def test_render_accepts_the_project_directory_as_well_as_its_file(demo: Path,
                                                                   tmp_path: Path) -> None:
    by_file, by_dir = tmp_path / "file.wav", tmp_path / "dir.wav"
    for project, out in ((demo, by_file), (demo.parent, by_dir)):
        result = dawserver("render", str(project), "-o", str(out), "--no-progress")
        assert result.returncode == 0, result.stderr
    assert np.array_equal(sf.read(by_file, dtype="float32")[0],
                          sf.read(by_dir, dtype="float32")[0])


def test_a_directory_without_a_project_file_is_one_error_line(tmp_path: Path) -> None:
    result = dawserver("render", str(tmp_path), "-o", str(tmp_path / "x.wav"), "--no-progress")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip() == f"error: {tmp_path / 'project.json'}: no such project file"


def _break_json(project: Path, change) -> None:
    data = json.loads(project.read_text())
    change(data)
    project.write_text(json.dumps(data))


def _overlap(data: dict) -> None:
    track = next(t for t in data["tracks"] if len(t["clips"]) >= 2)
    # two clips starting together (a later start that ends later would be a crossfade)
    track["clips"][1]["position"] = track["clips"][0]["position"]


def _first_source(project: Path) -> Path:
    session = load_project(project)
    return Path(session.tracks[0].clips[0].source)


def _corrupt_audio(project: Path) -> None:
    _first_source(project).write_bytes(b"RIFF....WAVEfmt junk" * 10)


def _nan_audio(project: Path) -> None:
    source = _first_source(project)
    data, rate = sf.read(source, dtype="float32")
    data[100] = np.nan
    source.unlink()
    sf.write(source.with_suffix(".wav"), data, rate, subtype="FLOAT")
    _break_json(project, lambda d: [c.update(source=c["source"].replace(source.name,
                                                                        source.stem + ".wav"))
                                    for t in d["tracks"] for c in t["clips"]])


@pytest.mark.parametrize("breakage,extra,message", [
    (lambda p: p.unlink(), [], "no such project file"),
    (lambda p: p.write_text("{not json"), [], "invalid JSON"),
    (lambda p: _break_json(p, _overlap), [], "overlaps"),
    (lambda p: _first_source(p).unlink(), [], "tracks[0].clips[0]"),
    (_corrupt_audio, [], "tracks[0].clips[0]"),
    (_nan_audio, [], "NaN"),
    (lambda p: None, ["--sample-rate", "12345"], "unsupported render rate 12345"),
])
def test_bad_input_gets_one_clear_error_line(demo: Path, tmp_path: Path, breakage, extra,
                                             message: str) -> None:
    project = _copy(demo, tmp_path)
    breakage(project)
    result = dawserver("render", str(project), "-o", str(tmp_path / "x.wav"), "--no-progress",
                       *extra)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert message in lines[0]
    assert not (tmp_path / "x.wav").exists(), "a failed render leaves no half-written file"


def _project_with_new_effects(directory: Path) -> Path:
    """Half a second of noise bursts through every effect kind issue 17 added."""
    rate, frames = 48000, 24000
    rng = np.random.default_rng(17)
    burst = (0.4 * rng.standard_normal(frames)).astype(np.float32)
    burst[frames // 2:] *= 0.001  # a quiet half for the gate to close on
    (directory / "audio").mkdir(parents=True)
    sf.write(directory / "audio" / "mono.wav", burst, rate, subtype="FLOAT")
    sf.write(directory / "audio" / "stereo.wav", np.stack([burst, burst[::-1]], axis=1), rate,
             subtype="FLOAT")
    project = {
        "format": "max-booster-project", "version": 1, "sample_rate": rate,
        "buses": [{"id": "room", "effects": [
            {"kind": "reverb", "params": {"room_size": 0.8, "pre_delay_ms": 20, "mix": 1.0}}]}],
        "tracks": [
            {"id": "voice", "channels": 1, "sends": [{"bus": "room", "level_db": -6}],
             "effects": [
                 {"kind": "gate", "params": {"threshold_db": -30, "hold_ms": 5}},
                 {"kind": "saturation", "params": {"drive_db": 18, "mix": 0.7}},
                 {"kind": "chorus", "params": {"rate_hz": 1.5, "depth_ms": 4}}],
             "clips": [{"source": "audio/mono.wav", "position": 0, "length": frames}]},
            {"id": "pad", "channels": 2,
             "effects": [{"kind": "flanger", "params": {"feedback": 0.7}},
                         {"kind": "phaser", "params": {"rate_hz": 2, "feedback": 0.5}},
                         {"kind": "reverb", "params": {"room_size": 0.3, "mix": 0.3}}],
             "clips": [{"source": "audio/stereo.wav", "position": 0, "length": frames}]},
        ],
    }
    path = directory / "project.json"
    path.write_text(json.dumps(project))
    return path


def test_a_project_with_the_new_effects_renders_alike_on_both_backends(tmp_path: Path) -> None:
    project = _project_with_new_effects(tmp_path / "p")
    outputs = {}
    for backend in ("native", "reference"):
        outputs[backend] = tmp_path / f"{backend}.wav"
        result = dawserver("render", str(project), "-o", str(outputs[backend]), "--tail", "0.5",
                           "--backend", backend, "--block-size", "256", "--no-progress")
        assert result.returncode == 0, result.stderr
    native, rate = sf.read(outputs["native"], dtype="float32")
    twin, _ = sf.read(outputs["reference"], dtype="float32")
    assert rate == 48000 and native.shape == (48000, 2)  # half a second and its tail
    np.testing.assert_allclose(native, twin, atol=2e-5, rtol=0)
    assert np.isfinite(native).all()
    assert np.abs(native[36000:]).max() > 1e-4, "the reverb rings on into the tail"


def test_a_bad_new_effect_parameter_is_one_error_line(tmp_path: Path) -> None:
    project = _project_with_new_effects(tmp_path / "p")
    data = json.loads(project.read_text())
    data["buses"][0]["effects"][0]["params"]["room_size"] = 2
    project.write_text(json.dumps(data))
    result = dawserver("render", str(project), "-o", str(tmp_path / "x.wav"), "--no-progress")
    assert result.returncode != 0
    assert "buses[0].effects[0].params.room_size: must be in [0, 1], got 2" in result.stderr
    assert not (tmp_path / "x.wav").exists()
