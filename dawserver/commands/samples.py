"""``dawserver samples``: index folders of samples into an account's library, search it."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import click

from dawserver.cli import CliError

from ._server_options import data_options


@click.group()
def samples() -> None:
    """The sample library: index folders, search them."""


@samples.command("index")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--account", required=True, help="The account whose library the samples join.")
@click.option("--no-progress", is_flag=True, help="No progress bar on stderr.")
@data_options
def index(folder: Path, account: str, no_progress: bool, data_dir: Path,
          database_url: str | None) -> None:
    """Index FOLDER's WAV/FLAC/AIFF/OGG files (again: only what changed) for an account."""
    if not folder.is_dir():
        raise CliError(f"{str(folder)!r} is not a folder; give a folder of samples")
    from tqdm import tqdm

    async def run() -> dict:
        with tqdm(total=0, unit="file", desc=folder.name, disable=no_progress) as bar:

            def progress(done: int, total: int, _path: str) -> None:
                bar.total = total
                bar.update(done - bar.n)

            async with _library(data_dir, database_url) as library:
                report = await library.index_folder(account, folder, progress=progress)
        return report.to_dict()

    click.echo(json.dumps(asyncio.run(run())))


@samples.command("search")
@click.argument("text", required=False, default="")
@click.option("--account", required=True, help="The account whose library to search.")
@click.option("--bpm", "bpm_range", default=None, metavar="MIN-MAX", help="A BPM range.")
@click.option("--key", default=None, help="A key such as 'A minor' or 'F#'.")
@click.option("--type", "kind", default=None, type=click.Choice(["loop", "one-shot"]))
@click.option("--class", "instrument", default=None, help="kick, snare, hat, bass, pad, ...")
@data_options
def search(text: str, account: str, bpm_range: str | None, key: str | None, kind: str | None,
           instrument: str | None, data_dir: Path, database_url: str | None) -> None:
    """Search an account's samples; one JSON line per hit, best first."""
    from samples.errors import BadQuery
    from samples.search import SampleQuery

    low = high = None
    if bpm_range:
        try:
            low, high = (float(v) for v in bpm_range.split("-", 1))
        except ValueError:
            raise CliError(f"--bpm {bpm_range!r}: write a range such as 118-122") from None

    async def run() -> list[dict]:
        async with _library(data_dir, database_url) as library:
            found = library.index.search(account, SampleQuery(
                text=text, bpm_min=low, bpm_max=high, key=key, kind=kind,
                instrument=instrument, limit=200))
        return [s.to_json() for s in found.samples]

    try:
        for hit in asyncio.run(run()):
            click.echo(json.dumps(hit))
    except BadQuery as exc:
        raise CliError(str(exc)) from exc


class _library:  # noqa: N801 - used as a context manager, named by what it yields
    """The server's database opened, the library loaded from it."""

    def __init__(self, data_dir: Path, database_url: str | None) -> None:
        self.data_dir, self.database_url = data_dir, database_url

    async def __aenter__(self):  # noqa: ANN204 - a SampleLibrary
        from database import open_database
        from samples.library import SampleLibrary

        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.database = open_database(self.database_url, self.data_dir)
        await self.database.start()
        library = SampleLibrary(self.database)
        await library.load(wait=True)
        return library

    async def __aexit__(self, *exc: object) -> None:
        await self.database.stop()
