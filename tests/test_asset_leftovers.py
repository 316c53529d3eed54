"""What a killed upload, rewrite or collection leaves in an asset store's tmp/ is gone
when a store opens there again, once untouched for a day; fresh work and recording
takes stay."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from collab.takes import TakeSegment
from dawserver import leftovers
from dawserver.asset_store import AssetStore
from dawserver.leftovers import LEFTOVER_AGE_S
from dawserver.take_files import journal_path
from dawserver.take_journal import TakeJournal


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
    _written(tmp / "tmpk2.take.json", old)  # and where it belongs
    AssetStore(tmp_path)
    assert sorted(p.name for p in tmp.iterdir()) == [
        "fresh.upload", "tmpk2.take.json", "tmpk2.take.wav"]


def test_a_take_journal_that_cannot_be_written_leaves_no_temporary_file(
        tmp_path: Path) -> None:
    audio = _written(tmp_path / "tmpk2.take.wav")
    journal_path(audio).mkdir()  # in the way: the rename over it fails
    journal = TakeJournal("p1", "ada", ["t1"], 48_000, 48_000,
                          [TakeSegment(0, 0, None)])
    with pytest.raises(IsADirectoryError):
        journal.write(audio)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tmpk2.take.json",
                                                         "tmpk2.take.wav"]


def test_a_leftover_that_cannot_be_removed_does_not_stop_the_store_opening(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    AssetStore(tmp_path)
    stuck = tmp_path / "tmp" / "collect-stuck"
    stuck.mkdir()
    then = time.time() - LEFTOVER_AGE_S - 60
    os.utime(stuck, (then, then))

    def refusing(path: Path, *args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(leftovers.shutil, "rmtree", refusing)
    AssetStore(tmp_path)  # opens, leaving it
    assert stuck.exists()
