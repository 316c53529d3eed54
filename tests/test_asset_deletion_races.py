"""An asset deleted between its lookup and the read of its files answers 404, as a
missing asset does, on every route that reads it (never 500 or 422)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from test_deleted_project_routes import Project, project  # noqa: F401 - the fixture

from dawserver import asset_objects
from dawserver.assets import ASSETS

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]

EVERY_FILE = ""  # the suffix every file ends with
PEAKS_FILE = ".peaks.npz"


def then_delete(lookup: Callable[..., Awaitable[Any]], suffix: str
                ) -> Callable[..., Awaitable[Any]]:
    """``lookup`` (of an asset), which then deletes the asset's files ending in
    ``suffix``, as a deletion racing the read that follows would."""
    async def looked_up(*args: Any, **kwargs: Any) -> Any:
        asset = await lookup(*args, **kwargs)
        for path in Path(asset.path).parent.glob(f"{asset.id}.*"):
            if path.name.endswith(suffix):
                path.unlink()
        return asset

    return looked_up


def vanishing(served: Project, monkeypatch: pytest.MonkeyPatch, suffix: str) -> str:
    """The id of the project's asset, whose files ending in ``suffix`` go right after
    each lookup of it (``asset_objects.pull`` and ``pull_for``)."""
    for name in ("pull", "pull_for"):
        monkeypatch.setattr(asset_objects, name,
                            then_delete(getattr(asset_objects, name), suffix))
    return served.app[ASSETS].project_assets(served.project_id)[0]


@pytest.mark.parametrize("suffix", [EVERY_FILE, PEAKS_FILE], ids=["every-file", "peaks-file"])
@pytest.mark.parametrize("path", ["/assets/{id}/peaks", "/peaks?source={id}"])
async def test_peaks_of_an_asset_deleted_meanwhile_answer_404(
        project: Project, monkeypatch: pytest.MonkeyPatch, suffix: str,  # noqa: F811
        path: str) -> None:
    asset_id = vanishing(project, monkeypatch, suffix)
    assert await project.status("GET", path.format(id=asset_id), project.headers()) == 404


@pytest.mark.parametrize("path", ["/assets/{id}", "/audio?source={id}"])
async def test_the_audio_of_an_asset_deleted_meanwhile_answers_404(
        project: Project, monkeypatch: pytest.MonkeyPatch, path: str) -> None:  # noqa: F811
    asset_id = vanishing(project, monkeypatch, EVERY_FILE)
    assert await project.status("GET", path.format(id=asset_id), project.headers()) == 404
