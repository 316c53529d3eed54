"""``dawserver import``: a project file becomes a stored document; errors are one line."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from pycrdt import Doc

from collab.schema import ProjectDocument
from collab.store import open_store
from dawserver.asset_store import AssetStore
from dawserver.cli import main
from dsp_core.demo import write_demo_project
from dsp_core.sources import is_asset_id

pytestmark = pytest.mark.timeout(120)


def stored_document(data: Path, project_id: str, url: str | None = None) -> ProjectDocument:
    async def load():
        async with open_store(url, data) as store:
            return await store.load(project_id)

    stored = asyncio.run(load())
    doc = Doc()
    doc.apply_update(stored.snapshot)
    return ProjectDocument(doc)


def test_import_prints_the_id_of_a_document_built_from_the_project(tmp_path: Path) -> None:
    project = write_demo_project(tmp_path / "demo", tracks=4, seconds=2.0)
    result = CliRunner().invoke(main, ["import", str(project), "--data", str(tmp_path / "d")])
    assert result.exit_code == 0, result.output
    project_id = result.output.strip()
    document = stored_document(tmp_path / "d", project_id)
    source = json.loads(project.read_text())
    assert document.track_ids() == [t["id"] for t in source["tracks"]]
    session = document.to_session()
    assert sum(len(t.clips) for t in session.tracks) == sum(len(t["clips"])
                                                            for t in source["tracks"])
    # the project's audio files became the project's assets, named by id
    assets = AssetStore(tmp_path / "d" / "assets")
    sources = {c.source for t in session.tracks for c in t.clips}
    assert sources and all(is_asset_id(s) and assets.belongs(project_id, s) for s in sources)


def test_import_accepts_the_project_directory_as_well_as_its_file(tmp_path: Path) -> None:
    project = write_demo_project(tmp_path / "demo", tracks=2, seconds=1.0)
    ids = []
    for path in (project, project.parent):
        result = CliRunner().invoke(main, ["import", str(path), "--data", str(tmp_path / "d")])
        assert result.exit_code == 0, result.output
        ids.append(result.output.strip())
    first, second = (stored_document(tmp_path / "d", i).to_session() for i in ids)
    assert first == second


def test_import_into_postgresql(tmp_path: Path, postgres_url: str) -> None:
    project = write_demo_project(tmp_path / "demo", tracks=2, seconds=1.0)
    result = CliRunner().invoke(main, ["import", str(project.parent), "--id", "pg-demo",
                                       "--database", postgres_url, "--data", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert stored_document(tmp_path, "pg-demo", postgres_url).track_ids()
    again = CliRunner().invoke(main, ["import", str(project), "--id", "pg-demo",
                                      "--database", postgres_url, "--data", str(tmp_path)])
    assert again.exit_code == 1 and "already exists" in again.output


def test_a_missing_project_file_is_one_error_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["import", str(tmp_path / "nope.json"),
                                       "--data", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output.startswith("error: ") and "no such project file" in result.output
    assert "Traceback" not in result.output
