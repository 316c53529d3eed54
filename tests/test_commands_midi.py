"""``dawserver midi import`` and ``dawserver midi export`` on project files."""

from __future__ import annotations

from pathlib import Path

import mido
from click.testing import CliRunner

from dawserver.cli import main
from dsp_core.project import load_project, save_project
from dsp_core.session import Session, Track
from dsp_core.smf import read_smf


def midi_file(path: Path) -> Path:
    midi = mido.MidiFile(type=0, ticks_per_beat=480)
    midi.tracks.append(mido.MidiTrack([
        mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(120)),
        mido.Message("note_on", note=60, velocity=100, time=0),
        mido.Message("note_off", note=60, time=480),
        mido.Message("control_change", control=7, value=90, time=0)]))
    midi.save(path)
    return path


def test_a_midi_file_is_imported_into_a_project_and_exported_again(tmp_path: Path) -> None:
    project = save_project(Session(tracks=[Track("drums")]), tmp_path / "song")
    song = midi_file(tmp_path / "riff.mid")
    result = CliRunner().invoke(main, ["midi", "import", str(tmp_path / "song"), str(song)])
    assert result.exit_code == 0, result.output
    assert "added 1 MIDI tracks (1 notes, file tempo 120 BPM)" in result.output
    session = load_project(project)
    assert [t.id for t in session.tracks] == ["drums", "riff-1"]
    [note] = session.tracks[1].midi_clips[0].notes
    assert (note.pitch, note.start, note.length) == (60, 0, 24000)

    again = CliRunner().invoke(main, ["midi", "import", str(project), str(song)])
    assert again.exit_code == 1 and "already exist" in again.output

    out = tmp_path / "out.mid"
    result = CliRunner().invoke(main, ["midi", "export", str(project), str(out)])
    assert result.exit_code == 0, result.output
    [track] = read_smf(out, 48000).tracks
    assert [(n.pitch, n.start, n.length) for n in track.midi_clips[0].notes] == [(60, 0, 24000)]


def test_exporting_a_project_without_midi_says_so(tmp_path: Path) -> None:
    project = save_project(Session(tracks=[Track("drums")]), tmp_path / "p.json")
    result = CliRunner().invoke(main, ["midi", "export", str(project), str(tmp_path / "o.mid")])
    assert result.exit_code == 1 and "has no MIDI clips to export" in result.output
