"""``dawserver tempo``: a project's tempo map, its bars and beats, and position conversions."""

from __future__ import annotations

import re
from pathlib import Path

import click

from dawserver.cli import CliError
from dsp_core import DspError
from dsp_core.project import load_project
from dsp_core.tempo import BarBeat

_BAR_BEAT = re.compile(r"^(\d+)\.(\d+)$")


@click.command()
@click.argument("project", type=click.Path(path_type=Path))
@click.option("--at", "positions", multiple=True, metavar="POSITION",
              help="A frame (48000) or a bar.beat (5.3, 1-based) to convert; repeatable.")
@click.option("--bars", type=click.IntRange(0, 10000), default=0, show_default=True,
              help="Also list where each of the first BARS bars starts.")
def tempo(project: Path, positions: tuple[str, ...], bars: int) -> None:
    """Show PROJECT's tempo and meter changes and convert positions between frames and
    bars/beats (the engine's and the page's grid: dsp_core/tempo.py)."""
    try:
        session = load_project(project)
    except DspError as exc:
        raise CliError(str(exc)) from exc
    tmap, rate = session.tempo, session.sample_rate
    for change in tmap.to_dict()["tempos"] or [{"beat": 0.0, "bpm": tmap.bpm_at_beat(0)}]:
        frame = round(tmap.beat_to_frame(change["beat"], rate))
        ramp = ", ramping to the next" if change.get("ramp") else ""
        click.echo(f"tempo {change['bpm']:g} BPM from beat {change['beat']:g} "
                   f"({tmap.frame_to_bar_beat(frame, rate)}, frame {frame}){ramp}")
    for meter in tmap.to_dict()["meters"] or [{"bar": 0, "numerator": 4, "denominator": 4}]:
        click.echo(f"meter {meter['numerator']}/{meter['denominator']} from bar "
                   f"{meter['bar'] + 1}")
    for bar in range(1, bars + 1):
        click.echo(f"bar {bar}: frame {tmap.bar_beat_to_frame(BarBeat(bar, 1), rate)}")
    for text in positions:
        match = _BAR_BEAT.match(text)
        if match:
            bar, beat = int(match.group(1)), int(match.group(2))
            if bar < 1 or not 1 <= beat <= tmap.meter_at_bar(bar - 1).numerator:
                raise CliError(f"--at {text}: no such bar.beat; bars and beats count from 1 "
                               f"and bar {bar} has {tmap.meter_at_bar(max(bar, 1) - 1).numerator}"
                               " beats")
            click.echo(f"{text} = frame {tmap.bar_beat_to_frame(BarBeat(bar, beat), rate)}")
        elif text.isdigit():
            click.echo(f"frame {text} = {tmap.frame_to_bar_beat(int(text), rate)}")
        else:
            raise CliError(f"--at {text!r}: give a frame (48000) or a bar.beat (5.3)")
