"""``dawserver render``: bounce a project file to an audio file.

Stretched clips (stretch, pitch, warp markers, ``follow_tempo``) play the same Rubber
Band renders the server's live mix plays (:mod:`dawserver.clip_renders`), made before the
mix with a progress bar. With ``--assets`` the renders of asset sources are kept as
derived audio in that directory, under the server's keys: a render the server kept is
reused, and one made here is reused by the server. The renders this command keeps count
as used by one project, :data:`RENDER_PROJECT`, holding what the last render played.

An ``lv2`` plug-in that fails during the render (hangs, crashes, outputs NaN) plays
bypassed in the file: the command says so on stderr, one ``warning:`` line per plug-in,
and still exits 0 with the file written; with ``--strict`` it removes the file and exits
1 instead.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

import click
from tqdm import tqdm

from dawserver.cli import CliError
from dsp_core import BACKENDS, DspError, Engine
from dsp_core.audio_io import BIT_DEPTHS, EXPORT_RATES
from dsp_core.bounce import BounceStats, bounce
from dsp_core.project import check_sources, load_project
from dsp_core.session import Session
from dsp_core.sources import local_resolver, resolve_session

if TYPE_CHECKING:  # imported when a project has stretched clips
    from dawserver.asset_store import AssetStore
    from dawserver.clip_renders import PreparedRenders

#: The project the derived audio kept by ``dawserver render --assets`` counts as used by.
RENDER_PROJECT = "dawserver-render"


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
@click.option("--strict", is_flag=True, default=False,
              help="Fail (exit 1, no file) when an lv2 plug-in fails during the render, "
                   "instead of warning and keeping the file with it bypassed.")
def render(project: Path, output: Path, sample_rate: int | None, bit_depth: str,
           block_size: int, tail: float, backend: str | None, threads: int,
           progress: bool, assets: Path | None, strict: bool) -> None:
    """Render PROJECT (a project JSON file, or a directory with project.json) to an audio file
    and print the real-time factor; warn of each lv2 plug-in that failed (bypassed)."""
    try:
        session = load_project(project)
        rate = sample_rate or session.sample_rate
        if rate not in EXPORT_RATES:
            raise CliError(f"unsupported render rate {rate} Hz; use one of "
                           f"{', '.join(map(str, EXPORT_RATES))}")
        session, refused = resolve_session(session, local_resolver(assets))
        if refused:
            raise CliError("cannot render: " + "; ".join(map(str, refused)))
        check_sources(session)  # a stretched clip against its render's length
        with _stretch_renders(session, rate, assets, progress):
            engine = Engine(session, sample_rate=rate, block_size=block_size,
                            backend=backend, threads=threads)
        total = engine.length + int(round(tail * rate))
        with engine, tqdm(total=total, unit="frame", unit_scale=True,
                          disable=not progress, desc="render", leave=False) as bar:
            stats = bounce(engine, output, bit_depth, tail,
                           progress=lambda done, _total: bar.update(done - bar.n))
    except DspError as exc:
        raise CliError(str(exc)) from exc
    except OSError as exc:
        raise CliError(f"{exc.filename or project}: {exc.strerror or exc}") from exc
    _warn_bypassed(stats, session, output, strict)
    click.echo(
        f"rendered {stats.audio_seconds:.2f} s at {rate} Hz ({bit_depth}) with "
        f"{len(session.tracks)} tracks to {output} in {stats.wall_seconds:.2f} s: "
        f"{stats.realtime_factor:.1f}x real time ({engine.backend_name} backend), "
        f"peak {stats.peak:.3f}"
    )


def _warn_bypassed(stats: BounceStats, session: Session, output: Path, strict: bool) -> None:
    """One ``warning:`` line per plug-in the file plays bypassed (the host logs each failure
    too); with ``strict``, remove the file and fail."""
    from dawserver.lv2_faults import describe, render_faults

    faults = render_faults(stats.plugin_errors, session)
    for fault in faults:
        click.echo(f"warning: bypassed in {output}: {describe(fault)}", err=True)
    if faults and strict:
        output.unlink(missing_ok=True)
        raise CliError(f"{len(faults)} lv2 plug-in(s) failed during the render, so "
                       f"{output} was not kept; fix them, or leave out --strict to keep "
                       "the file with them bypassed")


def _stretch_renders(session: Session, rate: int, assets: Path | None,
                     progress: bool) -> PreparedRenders:
    """Every stretched clip's render, held while the engine is built (a progress bar per
    clip); kept in ``assets`` as derived audio when given."""
    from dawserver import clip_renders

    clips = clip_renders.stretched_clips(session)
    if not clips:
        return clip_renders.PreparedRenders()

    async def run() -> PreparedRenders:
        store = None if assets is None else _derived_store(assets)
        with tqdm(total=len(clips), unit="clip", disable=not progress, desc="stretch",
                  leave=False) as bar:
            prepared = await clip_renders.prepare(
                session, rate, store=store, project_id=RENDER_PROJECT,
                progress=lambda done, _total: bar.update(done - bar.n))
        if store is not None:
            await _prune(store, prepared)
        return prepared

    return asyncio.run(run())


def _derived_store(assets: Path) -> AssetStore:
    """The asset store of ``assets`` (a server's DATA_DIR/assets) for derived audio."""
    from dawserver.asset_store import AssetStore

    if not assets.is_dir():
        raise CliError(f"--assets {assets}: no such directory")
    return AssetStore(assets)


async def _prune(store: AssetStore, prepared: PreparedRenders) -> None:
    """Keep only what this render played as :data:`RENDER_PROJECT`'s derived audio."""
    from dawserver import derived_audio

    try:
        await derived_audio.prune(store, RENDER_PROJECT,
                                  {render.derived for render in prepared.renders})
    except OSError as exc:  # the render still counts
        click.echo(f"warning: old derived renders not pruned: {exc}", err=True)
