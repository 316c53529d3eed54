"""The token secret of a data folder is created once, whole, however many servers start
on the folder at the same moment (CI found two ``dawserver serve`` processes failing with
``File exists: secret.key``)."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from collab.tokens import SECRET_FILE, TokenSigner

pytestmark = pytest.mark.timeout(60)


def _start(folder: str, ready: multiprocessing.synchronize.Barrier) -> str:
    ready.wait(30)  # BrokenBarrierError, not a hang, if a process never comes
    signer = TokenSigner.from_data_dir(Path(folder))
    return signer.issue("song", "editor", "u", now=1.0)


def test_servers_starting_at_once_share_one_whole_secret(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    starts = 8
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        ready = manager.Barrier(starts)
        with context.Pool(starts) as pool:
            tokens = pool.starmap_async(_start, [(str(folder), ready)] * starts).get(45)
    # the same secret everywhere: every process issued the same token
    assert len(set(tokens)) == 1
    assert TokenSigner.from_data_dir(folder).verify(tokens[0]).project_id == "song"
    assert len((folder / SECRET_FILE).read_text().strip()) == 64
    assert [p.name for p in folder.iterdir()] == [SECRET_FILE]  # no drafts left
    assert (folder / SECRET_FILE).stat().st_mode & 0o777 == 0o600
