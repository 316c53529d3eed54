"""Creating projects in the store from sessions and project files."""

from __future__ import annotations

from pathlib import Path

import pytest
from pycrdt import Doc

from collab.schema import ProjectDocument
from collab.store import open_store
from dawserver.projects import import_project_file, import_session, new_project_id
from dsp_core.errors import ProjectError
from dsp_core.session import Clip, Session, Track

pytestmark = pytest.mark.asyncio


async def test_project_ids_are_readable_and_unique() -> None:
    first, second = new_project_id("My First Song!"), new_project_id("My First Song!")
    assert first.startswith("my-first-song-") and first != second
    assert len(new_project_id("")) == 8


async def test_an_imported_session_is_the_first_snapshot(tmp_path: Path) -> None:
    session = Session(name="Song", tracks=[Track("a", clips=[Clip("/x.wav", 0, 10)])])
    async with open_store(None, tmp_path) as store:
        info = await import_session(store, session, project_id="song")
        stored = await store.load("song")
    assert (info.project_id, info.name) == ("song", "Song")
    doc = Doc()
    doc.apply_update(stored.snapshot)
    assert ProjectDocument(doc).to_session().tracks[0].clips[0].length == 10


async def test_an_invalid_session_or_file_is_refused_before_storing(tmp_path: Path) -> None:
    bad = Session(tracks=[Track("a"), Track("a")])
    async with open_store(None, tmp_path) as store:
        with pytest.raises(ProjectError, match="duplicate track id"):
            await import_session(store, bad)
        with pytest.raises(ProjectError, match="no such project file"):
            await import_project_file(store, tmp_path / "missing.json")
        assert await store.list_projects() == []
