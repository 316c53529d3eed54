"""``dawserver immersive``: export a project as ADM BWF, or render it to a layout."""

from __future__ import annotations

import time
from pathlib import Path

import click
import soundfile as sf

from dawserver.cli import CliError
from dsp_core import BACKENDS, DspError
from dsp_core.audio_io import EXPORT_RATES
from dsp_core.immersive_adm import write_adm_bwf
from dsp_core.immersive_binaural import binaural, load_sofa
from dsp_core.immersive_render import HEADPHONES, TARGETS, pan_stems, render_stems
from dsp_core.project import check_sources, load_project

ADM = "adm"


@click.command()
@click.argument("project", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), default=Path("mix-adm.wav"),
              show_default=True, help="Output WAV file.")
@click.option("--target", type=click.Choice([ADM, *TARGETS]), default=ADM, show_default=True,
              help="adm: ADM BWF (bed + objects with positions, BS.2076 in a BW64 file); "
                   "a layout: its loudspeaker feeds; binaural: headphones (HRTF from SOFA).")
@click.option("--sample-rate", type=int, default=None,
              help="Render rate in Hz; default: the project's rate.")
@click.option("--sofa", type=click.Path(path_type=Path), default=None,
              help="SOFA file for binaural (default: $DAW_SOFA or Debian's libmysofa KEMAR).")
@click.option("--backend", type=click.Choice(BACKENDS), default=None,
              help="Kernel backend (default: native C engine when built).")
def immersive(project: Path, output: Path, target: str, sample_rate: int | None,
              sofa: Path | None, backend: str | None) -> None:
    """Export PROJECT's immersive mix (tracks routed to the 7.1.4 bed or as objects) as an
    ADM BWF file, or render it to 7.1.4, 5.1, stereo or binaural."""
    started = time.perf_counter()
    try:
        session = load_project(project)
        rate = sample_rate or session.sample_rate
        if rate not in EXPORT_RATES:
            raise CliError(f"unsupported render rate {rate} Hz; use one of "
                           f"{', '.join(map(str, EXPORT_RATES))}")
        check_sources(session)
        stems = render_stems(session, rate, backend=backend)
        if target == ADM:
            write_adm_bwf(output, stems, session.name)
            what = (f"ADM BWF: {'7.1.4 bed + ' if stems.has_bed else ''}"
                    f"{len(stems.objects)} object(s)")
        else:
            if target == HEADPHONES:
                audio = binaural(pan_stems(stems, "7.1.4", backend=backend), load_sofa(sofa),
                                 rate)
            else:
                audio = pan_stems(stems, target, backend=backend)
            sf.write(output, audio.T, rate, subtype="FLOAT")
            what = f"{target}: {audio.shape[0]} channels"
    except DspError as exc:
        raise CliError(str(exc)) from exc
    except OSError as exc:
        raise CliError(f"{exc.filename or project}: {exc.strerror or exc}") from exc
    click.echo(f"wrote {output} ({what}, {stems.frames / rate:.2f} s at {rate} Hz) in "
               f"{time.perf_counter() - started:.2f} s")
