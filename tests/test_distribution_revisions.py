"""What reaches a store: a takedown of the release as delivered, and the newest
revision last when an earlier one was still being sent."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from distribution_helpers import TODAY, make_art, make_audio, release_dict
from test_distribution_delivery import (
    _connectors,
    _pipeline,
    _run_once,
    _setup,
)


@pytest.fixture(scope="module")
def art(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_art(tmp_path_factory.mktemp("art") / "cover.jpg")


def _release(root: Path, art: Path) -> dict[str, Any]:
    """A release with the shared cover and a short track of its own under ``root``."""
    audio = make_audio(root / "song.wav", seconds=1.0)
    return release_dict(root, art=art, audio=[audio])


def test_a_takedown_describes_the_release_as_delivered_not_as_edited_since(
        tmp_path: Path, art: Path) -> None:
    """The takedown keeps the delivered revision's gate snapshot (routes send none), and
    a file changed since does not stop it (a takedown sends no files)."""
    async def go() -> None:
        async with _setup(tmp_path) as (db, store, catalog):
            raw = _release(tmp_path, art)
            await catalog.save_release("acc", raw)
            pipeline = _pipeline(db, _connectors(store, ["alpha"]), catalog)
            snapshot = await catalog.snapshot("acc", "rel-1", today=TODAY)
            await pipeline.enqueue("acc", "rel-1", ["alpha"], snapshot_id=snapshot)
            await _run_once(pipeline)
            await catalog.save_release("acc", {**raw, "title": "Night Drive (edited)"})
            make_audio(tmp_path / "song.wav", seconds=1.0, freq=880.0)
            [takedown] = await pipeline.enqueue("acc", "rel-1", ["alpha"], "takedown")
            assert takedown["snapshot_id"] == snapshot
            await _run_once(pipeline)
            [job] = await pipeline.jobs("acc")
            assert (job["state"], job["revision"]) == ("delivered", 2), job["last_error"]
            assert [(v["action"], v["title"]) for v in store.accepted.values()] == [
                ("new", "Night Drive"), ("takedown", "Night Drive")]

    asyncio.run(go())

