"""Project format version 3: sources name assets by id; older files are migrated."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from dawserver.asset_store import AssetStore
from dsp_core import Engine
from dsp_core.errors import ProjectError
from dsp_core.project import load_project, save_project, session_from_dict
from dsp_core.sources import (
    SourceRefused,
    legacy_asset_id,
    local_resolver,
    resolve_session,
)

RATE = 48000


def project(version: int, clips: list[dict], effects: list[dict] | None = None) -> dict:
    return {"format": "max-booster-project", "version": version, "sample_rate": RATE,
            "tracks": [{"id": "t1", "clips": clips, "effects": effects or []}]}


@pytest.fixture
def stored(tmp_path: Path) -> tuple[AssetStore, str, Path]:
    """An asset directory holding one tone, and the tone's original file."""
    original = tmp_path / "tone.wav"
    t = np.arange(RATE) / RATE
    sf.write(original, (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), RATE,
             subtype="FLOAT")
    store = AssetStore(tmp_path / "data" / "assets")
    asset = store.ingest_file(original, project_id="p1", name="tone.wav")
    return store, asset.id, original


def test_an_old_file_naming_a_store_path_reads_it_as_the_asset_id(stored, tmp_path) -> None:
    store, asset_id, original = stored
    path = store.asset(asset_id).path
    assert legacy_asset_id(path) == asset_id
    session = session_from_dict(project(2, [
        {"id": "a", "source": path, "position": 0, "length": 1000},
        {"id": "b", "source": "audio/kick.wav", "position": 2000, "length": 1000}]),
        base_dir=tmp_path)
    a, b = session.tracks[0].clips
    assert a.source == asset_id  # the store's path: migrated to its id
    assert b.source == str(tmp_path / "audio" / "kick.wav")  # a local path stays a path
    # a version 3 file names ids as they are (never joined to the project directory)
    again = session_from_dict(project(3, [{"source": asset_id, "position": 0,
                                           "length": 1000}]), base_dir=tmp_path)
    assert again.tracks[0].clips[0].source == asset_id
    # a file name that only looks like a store path in a v3 file stays a path
    odd = session_from_dict(project(3, [{"source": "x/" + asset_id, "position": 0,
                                         "length": 1000}]), base_dir=tmp_path)
    assert odd.tracks[0].clips[0].source == str(tmp_path / "x" / asset_id)


def test_an_ir_naming_a_store_path_is_migrated_like_a_clip(stored, tmp_path) -> None:
    store, asset_id, _ = stored
    effects = [{"kind": "convolution", "params": {"ir": store.asset(asset_id).path}}]
    session = session_from_dict(project(2, [], effects), base_dir=tmp_path)
    assert session.tracks[0].effects[0].params["ir"] == asset_id


def test_a_migrated_project_saves_as_version_4_and_renders_the_same(stored, tmp_path) -> None:
    store, asset_id, original = stored
    old_file = tmp_path / "old" / "project.json"
    old_file.parent.mkdir()
    clip = {"id": "c1", "position": 500, "length": 24000, "fade_in": 480, "gain_db": -3.0}
    old_file.write_text(json.dumps(project(2, [{**clip, "source": store.asset(asset_id).path}])))
    before = Engine(session_from_dict(project(2, [{**clip, "source": str(original)}]))
                    ).render(0, RATE)
    session = load_project(old_file)
    new_file = save_project(session, tmp_path / "new")
    saved = json.loads(new_file.read_text())
    assert saved["version"] == 4 and saved["tracks"][0]["clips"][0]["source"] == asset_id
    playable, refused = resolve_session(load_project(new_file), local_resolver(store.root))
    assert refused == []
    np.testing.assert_array_equal(Engine(playable).render(0, RATE), before)
    # without an asset directory a local tool refuses the id, naming the clip
    _, refused = resolve_session(session, local_resolver(None))
    assert [str(r) for r in refused] == [
        f"clip 'c1' on track 't1': names asset {asset_id}; give the asset directory that "
        "holds it (--assets DATA_DIR/assets) or render it on the server"]
    # the CLI renders it from the asset directory, and says what to do without one
    out = tmp_path / "mix.wav"
    run = subprocess.run([sys.executable, "-m", "dawserver", "render", str(new_file), "-o",
                          str(out), "--no-progress", "--assets", str(store.root)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    audio, _ = sf.read(out, dtype="float32")
    np.testing.assert_allclose(audio.T, before[:, :audio.shape[0]], atol=1e-6)  # blocks
    assert audio.shape[0] == 24500
    run = subprocess.run([sys.executable, "-m", "dawserver", "render", str(new_file), "-o",
                          str(out), "--no-progress"], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode != 0 and "--assets DATA_DIR/assets" in run.stderr


def test_a_local_resolver_refuses_an_id_missing_from_the_directory(stored) -> None:
    store, _, _ = stored
    with pytest.raises(SourceRefused, match="is not in"):
        local_resolver(store.root)("0" * 64)


def test_a_newer_version_is_refused() -> None:
    with pytest.raises(ProjectError, match="version: 5 is not supported"):
        session_from_dict(project(5, []))
