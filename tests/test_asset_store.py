"""Content-addressed asset storage: ingest, dedupe, lookup by source, project index."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from dawserver.asset_store import AssetNotFound, AssetStore, InvalidAudio


def test_a_file_is_stored_once_under_its_hash_and_found_by_its_source(tmp_path: Path) -> None:
    take = tmp_path / "take.wav"
    sf.write(take, np.full(1000, 0.25, np.float32), 44100, subtype="FLOAT")
    store = AssetStore(tmp_path / "assets")
    first = store.ingest_file(take, project_id="p1", name="take.wav")
    second = store.ingest_file(take, project_id="p2")
    assert first.id == second.id == hashlib.sha256(take.read_bytes()).hexdigest()
    assert (first.sample_rate, first.frames, first.channels) == (44100, 1000, 1)
    assert store.asset_for_source(first.path) == first
    assert store.asset_for_source(str(take)) is None
    assert store.belongs("p1", first.id) and store.belongs("p2", first.id)
    assert not store.belongs("p3", first.id)
    assert store.peaks(first.id).level(64).max[0, 0] == pytest.approx(0.25)
    assert list((tmp_path / "assets" / "tmp").iterdir()) == []


def test_unknown_ids_and_bad_files_raise_clear_errors(tmp_path: Path) -> None:
    store = AssetStore(tmp_path / "assets")
    with pytest.raises(AssetNotFound, match="64 hex digits"):
        store.asset("../../etc/passwd")
    with pytest.raises(AssetNotFound, match="no asset"):
        store.asset("0" * 64)
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF nonsense")
    with pytest.raises(InvalidAudio, match="bad.wav: not a readable"):
        store.ingest_file(bad, project_id="p1", name="bad.wav")
    assert list((tmp_path / "assets" / "objects").iterdir()) == []


def test_peaks_of_other_files_are_computed_once_and_cached(tmp_path: Path) -> None:
    source = tmp_path / "src.wav"
    sf.write(source, np.linspace(-1, 1, 5000, dtype=np.float32), 48000, subtype="FLOAT")
    store = AssetStore(tmp_path / "assets")
    peaks = store.peaks_of_file(str(source))
    assert peaks.level(4096).min[0, 0] == -1.0
    assert len(list((tmp_path / "assets" / "peaks-cache").iterdir())) == 1
    assert store.peaks_of_file(str(source)).frames == 5000
