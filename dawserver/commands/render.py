"""``dawserver render``: bounce a project file to an audio file."""

from __future__ import annotations

from pathlib import Path

import click
from tqdm import tqdm

from dawserver.cli import CliError
from dsp_core import BACKENDS, DspError, Engine
from dsp_core.audio_io import BIT_DEPTHS, EXPORT_RATES
from dsp_core.bounce import bounce
from dsp_core.project import check_sources, load_project
from dsp_core.sources import local_resolver, resolve_session


@click.command()
@click.argument("project", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), default=Path("mix.wav"),
              show_default=True, help="Output file (.wav, .flac, .aiff).")
@click.option("--sample-rate", type=int, default=None,
              help=f"Render rate in Hz ({min(EXPORT_RATES)}-{max(EXPORT_RATES)}); "
                   "default: the project's rate.")
@click.option("--bit-depth", type=click.Choice(list(BIT_DEPTHS)), default="32f",
              show_default=True, help="32-bit float, or 24/16-bit PCM with TPDF dither.")
@click.option("--block-size", type=click.IntRange(16, 16384), default=1024, show_default=True)
@click.option("--tail", type=click.FloatRange(0, 60), default=0.0, show_default=True,
              help="Seconds rendered after the last clip (delay/reverb tails).")
@click.option("--backend", type=click.Choice(BACKENDS), default=None,
              help="Kernel backend (default: native C engine when built).")
@click.option("--threads", type=click.IntRange(1, 16), default=1, show_default=True,
              help="Threads the C engine splits the tracks over.")
@click.option("--progress/--no-progress", default=True, show_default=True)
@click.option("--assets", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Asset directory (DATA_DIR/assets) for clips that name asset ids.")
def render(project: Path, output: Path, sample_rate: int | None, bit_depth: str,
           block_size: int, tail: float, backend: str | None, threads: int,
           progress: bool, assets: Path | None) -> None:
    """Render PROJECT (a project JSON file, or a directory with project.json) to an audio file
    and print the real-time factor."""
    try:
        session = load_project(project)
        rate = sample_rate or session.sample_rate
        if rate not in EXPORT_RATES:
            raise CliError(f"unsupported render rate {rate} Hz; use one of "
                           f"{', '.join(map(str, EXPORT_RATES))}")
        session, refused = resolve_session(session, local_resolver(assets))
        if refused:
            raise CliError("cannot render: " + "; ".join(map(str, refused)))
        check_sources(session)
        engine = Engine(session, sample_rate=rate, block_size=block_size, backend=backend,
                        threads=threads)
        total = engine.length + int(round(tail * rate))
        with tqdm(total=total, unit="frame", unit_scale=True, disable=not progress,
                  desc="render", leave=False) as bar:
            stats = bounce(engine, output, bit_depth, tail,
                           progress=lambda done, _total: bar.update(done - bar.n))
    except DspError as exc:
        raise CliError(str(exc)) from exc
    except OSError as exc:
        raise CliError(f"{exc.filename or project}: {exc.strerror or exc}") from exc
    click.echo(
        f"rendered {stats.audio_seconds:.2f} s at {rate} Hz ({bit_depth}) with "
        f"{len(session.tracks)} tracks to {output} in {stats.wall_seconds:.2f} s: "
        f"{stats.realtime_factor:.1f}x real time ({engine.backend_name} backend), "
        f"peak {stats.peak:.3f}"
    )
