"""What a killed upload, rewrite or collection leaves in an asset store's tmp/ is gone
when a store opens there again, once untouched for a day; fresh work and recording
takes stay."""

from __future__ import annotations

import os
import time
from pathlib import Path

from dawserver.asset_store import AssetStore
from dawserver.leftovers import LEFTOVER_AGE_S


def _written(path: Path, age_s: float = 0.0) -> Path:
    """``path`` written, last touched ``age_s`` ago."""
    path.write_bytes(b"RIFF....")
    then = time.time() - age_s
    os.utime(path, (then, then))
    return path


def test_a_store_opening_removes_a_crash_s_leftovers_and_keeps_the_rest(
        tmp_path: Path) -> None:
    AssetStore(tmp_path)
    tmp, old = tmp_path / "tmp", LEFTOVER_AGE_S + 60
    collection = tmp / "collect-x1"
    collection.mkdir()
    _written(collection / "a.wav", old)
    os.utime(collection, (time.time() - old, time.time() - old))
    for name in ("tmpa8x.upload", "tmpq0w", ".abc.1f.pending"):  # upload, rewrite, mark
        _written(tmp / name, old)
    _written(tmp / "fresh.upload")  # another process's upload, still being written
    _written(tmp / "tmpk2.take.wav", old)  # a take a crash cut short: the musician's audio
    AssetStore(tmp_path)
    assert sorted(p.name for p in tmp.iterdir()) == ["fresh.upload", "tmpk2.take.wav"]
