"""``dawserver render`` plays stretched clips as the live mix does: from the derived audio
kept in ``--assets`` (Rubber Band runs once), with clear errors when it cannot."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from stretch_helpers import RubberBandRuns, needs_rubberband, restart

from dawserver import derived_audio
from dawserver.asset_store import AssetStore
from dsp_core import Engine
from dsp_core.project import save_project
from dsp_core.session import Clip, Session, Track
from dsp_core.stretch import StretchSpec

pytestmark = [pytest.mark.timeout(300)]
RATE = 48000
STRETCHED = RATE * 3 // 2
#: The project ``dawserver render --assets`` keeps its renders for (its docs say so).
RENDER_PROJECT = "dawserver-render"
#: A 32-bit float render holds the engine's samples as they are.
FLOAT_TOLERANCE = 1e-6


def dawserver(*args: str, path: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=path) if path is not None else None
    return subprocess.run([sys.executable, "-m", "dawserver", *args], capture_output=True,
                          text=True, timeout=240, env=env)


def asset(assets: Path, audio: np.ndarray) -> tuple[str, Path]:
    """Store ``audio`` in ``assets`` laid out as the server does: its id and file."""
    buffer = io.BytesIO()
    sf.write(buffer, audio, RATE, format="WAV", subtype="FLOAT")
    data = buffer.getvalue()
    asset_id = hashlib.sha256(data).hexdigest()
    path = assets / "objects" / asset_id[:2] / f"{asset_id}.wav"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return asset_id, path


def project(folder: Path, source: str, **time_keys: object) -> Path:
    length = round(RATE * float(time_keys.get("stretch", 1.0)))
    clip = Clip(source, 0, length, id="c1", **time_keys)
    return save_project(Session(name="S", tracks=[Track("t0", clips=[clip])]),
                        folder / "project.json")


TONE = (0.3 * np.sin(2 * np.pi * 330 * np.arange(RATE) / RATE)).astype(np.float32)


def render_with(session_source: str, audio: np.ndarray, monkeypatch: pytest.MonkeyPatch,
                **time_keys: object) -> np.ndarray:
    """The offline engine's render of the project with ``audio`` as its clip's render."""
    cache = restart(monkeypatch)
    clip = Clip(session_source, 0, STRETCHED, id="c1", **time_keys)
    spec = StretchSpec(float(time_keys.get("stretch", 1.0)),
                       float(time_keys.get("semitones", 0.0)))
    cache.put(spec.key(session_source, RATE), audio)
    return Engine(Session(name="S", tracks=[Track("t0", clips=[clip])]),
                  sample_rate=RATE).render(0, STRETCHED)


@needs_rubberband
def test_a_stretched_clip_renders_once_and_then_from_the_kept_derived_audio(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runs = RubberBandRuns.on_path(tmp_path / "counted", monkeypatch)
    assets = tmp_path / "assets"
    asset_id, file = asset(assets, TONE)
    keys = {"stretch": 1.5, "semitones": 2.0}
    path = project(tmp_path, asset_id, **keys)
    first, second = tmp_path / "first.wav", tmp_path / "second.wav"

    result = dawserver("render", str(path), "-o", str(first), "--assets", str(assets))
    assert result.returncode == 0, result.stderr
    assert "stretch" in result.stderr  # the renders' progress bar
    assert runs.count == 1
    derived = derived_audio.derived_key(asset_id, StretchSpec(1.5, 2.0), RATE)
    kept = derived_audio.local_path(AssetStore(assets), derived)
    audio, rate = sf.read(kept, dtype="float32", always_2d=True)
    assert rate == RATE and audio.shape == (STRETCHED, 1)
    rendered, _ = sf.read(first, dtype="float32")
    want = render_with(str(file), np.ascontiguousarray(audio.T), monkeypatch, **keys)
    assert np.abs(rendered.T - want).max() <= FLOAT_TOLERANCE

    result = dawserver("render", str(path), "-o", str(second), "--assets", str(assets),
                       "--no-progress")
    assert result.returncode == 0, result.stderr
    assert runs.count == 1  # no second Rubber Band run
    again, _ = sf.read(second, dtype="float32")
    np.testing.assert_array_equal(again, rendered)

    plain = Engine(Session(name="S", tracks=[Track("t0", clips=[Clip(str(file), 0, RATE)])]),
                   sample_rate=RATE).render(0, RATE)
    assert np.abs(rendered.T[:, :RATE] - plain).max() > 0.1  # not the unstretched clip


@needs_rubberband
def test_a_path_source_is_stretched_without_an_asset_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runs = RubberBandRuns.on_path(tmp_path / "counted", monkeypatch)
    sf.write(tmp_path / "tone.wav", TONE, RATE, subtype="FLOAT")
    path = project(tmp_path, str(tmp_path / "tone.wav"), stretch=1.5)
    out = tmp_path / "mix.wav"
    result = dawserver("render", str(path), "-o", str(out), "--no-progress")
    assert result.returncode == 0, result.stderr
    assert runs.count == 1 and sf.info(out).frames == STRETCHED


@needs_rubberband
def test_only_the_last_render_is_kept_for_the_command_line(tmp_path: Path) -> None:
    assets = tmp_path / "assets"
    asset_id, _ = asset(assets, TONE)
    store = AssetStore(assets)
    old = derived_audio.derived_key(asset_id, StretchSpec(1.5), RATE)
    shared = derived_audio.derived_key(asset_id, StretchSpec(1.25), RATE)
    for stretch in (1.5, 1.25):
        path = project(tmp_path, asset_id, stretch=stretch)
        result = dawserver("render", str(path), "-o", str(tmp_path / "mix.wav"),
                           "--assets", str(assets), "--no-progress")
        assert result.returncode == 0, result.stderr
    assert not derived_audio.local_path(store, old).exists()  # nobody plays it any more
    assert derived_audio.local_path(store, shared).is_file()

    (store.root / "derived-index" / "assets" / "derived-uses" / shared[:2] / shared
     / "server-project").touch()  # a server project plays it too: it stays
    path = project(tmp_path, asset_id, stretch=1.5)
    result = dawserver("render", str(path), "-o", str(tmp_path / "mix.wav"),
                       "--assets", str(assets), "--no-progress")
    assert result.returncode == 0, result.stderr
    assert derived_audio.local_path(store, shared).is_file()
    assert [p.name for p in (store.root / "derived-index" / "assets" / "derived-projects"
                             / RENDER_PROJECT).iterdir()] == [old]


def test_without_rubber_band_the_render_fails_naming_the_clip(tmp_path: Path) -> None:
    assets = tmp_path / "assets"
    asset_id, _ = asset(assets, TONE)
    path = project(tmp_path, asset_id, stretch=1.5)
    (tmp_path / "empty").mkdir()
    result = dawserver("render", str(path), "-o", str(tmp_path / "mix.wav"),
                       "--assets", str(assets), path=str(tmp_path / "empty"))
    assert result.returncode == 1 and not (tmp_path / "mix.wav").exists()
    assert result.stderr.strip().splitlines()[-1] == (
        "error: clip 'c1' cannot be stretched: time-stretch needs Rubber Band: install the "
        "rubberband-cli package (apt-get install rubberband-cli)")


@needs_rubberband
def test_a_kept_render_plays_without_rubber_band(tmp_path: Path) -> None:
    assets = tmp_path / "assets"
    asset_id, _ = asset(assets, TONE)
    path = project(tmp_path, asset_id, stretch=1.5)
    first = dawserver("render", str(path), "-o", str(tmp_path / "a.wav"), "--assets",
                      str(assets), "--no-progress")
    assert first.returncode == 0, first.stderr
    (tmp_path / "empty").mkdir()
    again = dawserver("render", str(path), "-o", str(tmp_path / "b.wav"), "--assets",
                      str(assets), "--no-progress", path=str(tmp_path / "empty"))
    assert again.returncode == 0, again.stderr
    np.testing.assert_array_equal(sf.read(tmp_path / "a.wav")[0], sf.read(tmp_path / "b.wav")[0])


def test_a_corrupt_asset_is_one_error_line_naming_the_clip(tmp_path: Path) -> None:
    assets = tmp_path / "assets"
    asset_id, file = asset(assets, TONE)
    file.write_bytes(b"RIFF" + bytes(100))  # torn on disk
    path = project(tmp_path, asset_id, stretch=1.5)
    result = dawserver("render", str(path), "-o", str(tmp_path / "mix.wav"),
                       "--assets", str(assets), "--no-progress")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    # the source check finds it before any render, as it finds a plain clip's
    assert line.startswith("error: tracks[0].clips[0] (track 't0', clip 'c1'): ")
    assert str(file) in line

