"""``Store.get_projects``: many projects' rows in one read, on each store and the regions'."""

from __future__ import annotations

from pathlib import Path

import pytest

from collab.regional_store import RegionalCollabStore
from collab.store import open_store, store_for
from database import open_database

pytestmark = pytest.mark.asyncio


async def test_many_projects_are_read_at_once_and_missing_ones_left_out(
        collab_database_url: str, tmp_path: Path) -> None:
    async with open_store(collab_database_url, tmp_path) as store:
        for name in ("a", "b", "c"):
            await store.create_project(f"song-{name}", name.upper(), None)
        found = await store.get_projects(["song-c", "nowhere", "song-a", "song-c"])
        assert sorted(found) == ["song-a", "song-c"]
        assert found["song-c"] == await store.get_project("song-c")
        assert await store.get_projects([]) == {}


async def test_the_regions_facade_asks_every_region_once(collab_database_url: str,
                                                          tmp_path: Path) -> None:
    async with (open_database(f"sqlite://{tmp_path / 'main.db'}") as main,
                open_database(collab_database_url) as eu):
        store = RegionalCollabStore({"default": store_for(main), "eu": store_for(eu)})
        async with store:
            await store.create_project_in("eu", "song-eu", "Eu", None)
            await store.create_project("song-main", "Main", None)
            found = await store.get_projects(["song-eu", "song-main", "nowhere"])
            assert {pid: info.name for pid, info in found.items()} == {
                "song-eu": "Eu", "song-main": "Main"}
            assert await store.region_of("song-eu") == "eu"
