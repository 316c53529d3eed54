"""``dawserver import``: load a project file into the server's store and print its id."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from collab.errors import CollabError
from collab.store import open_store
from dawserver.asset_store import AssetError, AssetStore
from dawserver.cli import CliError
from dawserver.projects import import_project_file
from dsp_core.errors import DspError

from ._server_options import data_options


async def _import(path: Path, data_dir: Path, database_url: str | None, name: str | None,
                  project_id: str | None) -> str:
    assets = AssetStore(data_dir / "assets")  # the server's asset directory (no regions)
    async with open_store(database_url, data_dir) as store:
        info = await import_project_file(store, path, name=name, project_id=project_id,
                                         assets=assets)
    return info.project_id


@click.command("import")
@click.argument("project", type=click.Path(path_type=Path))
@click.option("--name", default=None, help="Project name (default: the name in the file).")
@click.option("--id", "project_id", default=None, help="Project id (default: generated).")
@data_options
def import_project(project: Path, name: str | None, project_id: str | None, data_dir: Path,
                   database_url: str | None) -> None:
    """Import PROJECT (a project JSON file, or a directory with project.json) and its audio
    files (stored as the project's assets); print its id."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        click.echo(asyncio.run(_import(project, data_dir, database_url, name, project_id)))
    except (AssetError, CollabError, DspError, OSError) as exc:
        raise CliError(str(exc)) from exc
