"""``dawserver midi``: Standard MIDI Files in and out of a project file (docs/midi.md)."""

from __future__ import annotations

from pathlib import Path

import click

from dawserver.cli import CliError
from dsp_core import DspError
from dsp_core.project import load_project, project_file, save_project
from dsp_core.smf import read_smf, write_smf


@click.group()
def midi() -> None:
    """Import a MIDI file into a project file, or export a project's MIDI tracks."""


@midi.command("import")
@click.argument("project", type=click.Path(path_type=Path))
@click.argument("midi_file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--soundfont", is_flag=True, help="Play the tracks with FluidSynth's General "
              "MIDI font (each channel's program from the file) instead of default synths.")
def import_midi(project: Path, midi_file: Path, soundfont: bool = False) -> None:
    """Add the tracks of MIDI_FILE (each with a default synth) to PROJECT and save it."""
    try:
        session = load_project(project)
        imported = read_smf(midi_file, session.sample_rate, id_prefix=f"{midi_file.stem}-",
                            instrument="soundfont" if soundfont else "synth")
        taken = {t.id for t in session.tracks}
        clash = sorted(taken & {t.id for t in imported.tracks})
        if clash:
            raise CliError(f"track id(s) {', '.join(clash)} already exist in {project}; rename "
                           "the MIDI file (its name prefixes the new tracks' ids)")
        session.tracks.extend(imported.tracks)
        path = save_project(session, project_file(project))
    except DspError as exc:
        raise CliError(str(exc)) from exc
    notes = sum(len(c.notes) for t in imported.tracks for c in t.midi_clips)
    click.echo(f"added {len(imported.tracks)} MIDI tracks ({notes} notes, file tempo "
               f"{imported.tempo:g} BPM) to {path}")


@midi.command("export")
@click.argument("project", type=click.Path(path_type=Path))
@click.argument("output", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--tempo", type=click.FloatRange(10, 999), default=120.0, show_default=True,
              help="Tempo written to the file (frames become ticks at this tempo).")
def export_midi(project: Path, output: Path, tempo: float) -> None:
    """Write the MIDI tracks of PROJECT to OUTPUT as a type 1 Standard MIDI File."""
    try:
        session = load_project(project)
        tracks = [t for t in session.tracks if t.midi_clips]
        if not tracks:
            raise CliError(f"{project} has no MIDI clips to export")
        write_smf(tracks, output, session.sample_rate, tempo=tempo)
    except DspError as exc:
        raise CliError(str(exc)) from exc
    except OSError as exc:
        raise CliError(f"{exc.filename or output}: {exc.strerror or exc}") from exc
    click.echo(f"wrote {len(tracks)} MIDI tracks to {output}")
