"""``dawserver demo-project``: write a synthetic multi-track project to try at once."""

from __future__ import annotations

from pathlib import Path

import click
from tqdm import tqdm

from dawserver.cli import CliError
from dsp_core import DspError
from dsp_core.demo import write_demo_project


@click.command("demo-project")
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--tracks", type=click.IntRange(1, 4096), default=256, show_default=True)
@click.option("--seconds", type=click.FloatRange(1.0, 600.0), default=16.0, show_default=True)
@click.option("--sample-rate", type=int, default=48000, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
def demo_project(directory: Path, tracks: int, seconds: float, sample_rate: int,
                 seed: int) -> None:
    """Write a demo project (drums, bass, pads, noise; real audio files) into DIRECTORY."""
    try:
        with tqdm(desc="demo-project", unit="file", leave=False) as bar:
            def progress(done: int, total: int) -> None:
                bar.total = total
                bar.update(done - bar.n)

            path = write_demo_project(directory, tracks=tracks, seconds=seconds,
                                      sample_rate=sample_rate, seed=seed, progress=progress)
    except DspError as exc:
        raise CliError(str(exc)) from exc
    except OSError as exc:
        raise CliError(f"{exc.filename or directory}: {exc.strerror or exc}") from exc
    click.echo(f"wrote {path} ({tracks} tracks, {seconds:g} s at {sample_rate} Hz)")
