"""SoundFont playback: a ``soundfont`` track rendered by FluidSynth inside the engine's
block path, checked against FluidSynth's own command-line render of the same file."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import mido
import numpy as np
import pytest
import soundfile as sf

from collab.schema import ProjectDocument
from dsp_core.engine import Engine
from dsp_core.errors import ProjectError
from dsp_core.midi import Instrument, MidiClip, Note, validate_instrument
from dsp_core.session import Session, Track
from dsp_core.smf import read_smf
from dsp_core.soundfont import SoundFontError, default_font

pytest.importorskip("fluidsynth")
pytestmark = pytest.mark.timeout(120)
RATE = 48000
#: FluidSynth's file renderer starts its MIDI player one 64-frame period in.
CLI_LAG = 64


def gm_file(path: Path, on_grid: bool) -> Path:
    """Piano, strings with volume and bend, drums; ``on_grid``: every event on a beat
    (500 ms, a whole number of FluidSynth's 64-frame ticks), else anywhere."""
    unit = 480 if on_grid else 100
    midi = mido.MidiFile(type=1, ticks_per_beat=480)
    midi.tracks.append(mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500000)]))
    piano = mido.MidiTrack([mido.Message("program_change", channel=0, program=0)])
    for pitch in (60, 64, 67, 72):
        piano += [mido.Message("note_on", channel=0, note=pitch, velocity=100),
                  mido.Message("note_off", channel=0, note=pitch, time=4 * unit)]
    strings = mido.MidiTrack([
        mido.Message("program_change", channel=1, program=48),
        mido.Message("note_on", channel=1, note=55, velocity=90, time=unit),
        mido.Message("control_change", channel=1, control=7, value=80, time=3 * unit),
        mido.Message("pitchwheel", channel=1, pitch=2000, time=2 * unit),
        mido.Message("note_off", channel=1, note=55, time=9 * unit)])
    drums = mido.MidiTrack()
    for i in range(8):
        drums += [mido.Message("note_on", channel=9, note=(36, 38)[i % 2], velocity=110,
                               time=0 if i == 0 else unit),
                  mido.Message("note_off", channel=9, note=(36, 38)[i % 2], time=unit)]
    midi.tracks += [piano, strings, drums]
    midi.save(path)
    return path


def cli_render(smf: Path, out: Path) -> np.ndarray:
    if shutil.which("fluidsynth") is None:
        pytest.fail("fluidsynth is not installed: apt-get install fluidsynth "
                    "(scripts/apt-packages.txt)")
    subprocess.run(["fluidsynth", "-ni", "-q", "-g", "0.2", "-r", str(RATE), "-o",
                    "audio.file.format=float", "-o", "audio.file.type=wav", "-F", str(out),
                    str(default_font()), str(smf)], check=True, capture_output=True, timeout=60)
    audio, rate = sf.read(out, dtype="float32")
    assert rate == RATE
    return audio.T


def our_render(smf: Path, frames: int, block: int = 512, backend: str = "native"
               ) -> np.ndarray:
    tracks = read_smf(smf, RATE, instrument="soundfont").tracks
    return Engine(Session(tracks=tracks), block_size=block, backend=backend).render(0, frames)


def test_import_gives_each_track_its_programs(tmp_path: Path) -> None:
    tracks = read_smf(gm_file(tmp_path / "gm.mid", True), RATE, instrument="soundfont").tracks
    assert [t.instrument.kind for t in tracks] == ["soundfont"] * 3
    assert [t.instrument.params for t in tracks] == [{"program_0": 0}, {"program_1": 48}, {}]
    assert all(t.channels == 2 for t in tracks)
    with pytest.raises(ProjectError, match="'synth' or 'soundfont'"):
        read_smf(tmp_path / "gm.mid", RATE, instrument="organ")


def test_events_on_ticks_render_as_fluidsynths_own_player(tmp_path: Path) -> None:
    smf = gm_file(tmp_path / "gm.mid", on_grid=True)
    cli = cli_render(smf, tmp_path / "cli.wav")
    ours = our_render(smf, cli.shape[1])
    assert np.abs(cli).max() > 0.05
    n = cli.shape[1] - CLI_LAG
    # not bit-identical: FluidSynth's player and direct calls differ by ~1.5e-4 (-50 dB)
    np.testing.assert_allclose(ours[:, :n], cli[:, CLI_LAG:], atol=1e-3)


def test_events_anywhere_keep_fluidsynths_spectrum_and_envelope(tmp_path: Path) -> None:
    """Off FluidSynth's 64-frame ticks its player (whole milliseconds) may start a note one
    tick from where we do, so the waveforms part: the spectrum (third-octave bands, 50 Hz
    to 16 kHz) and the loudness every 100 ms stay within 1.5 dB (measured: 0.7 and 0.8)."""
    smf = gm_file(tmp_path / "gm.mid", on_grid=False)
    cli = cli_render(smf, tmp_path / "cli.wav")
    ours = our_render(smf, cli.shape[1])
    n = cli.shape[1] - CLI_LAG
    a, b = ours[:, :n].mean(axis=0), cli[:, CLI_LAG:].mean(axis=0)
    power_a, power_b = np.abs(np.fft.rfft(a)) ** 2, np.abs(np.fft.rfft(b)) ** 2
    freq = np.fft.rfftfreq(n, 1 / RATE)
    edges = 50 * 2 ** (np.arange(0, 26) / 3)
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        band = (freq >= lo) & (freq < hi)
        assert abs(10 * np.log10(power_a[band].sum() / power_b[band].sum())) < 1.5, (lo, hi)
    w = RATE // 10
    rms_a = np.sqrt((a[: n // w * w].reshape(-1, w) ** 2).mean(axis=1))
    rms_b = np.sqrt((b[: n // w * w].reshape(-1, w) ** 2).mean(axis=1))
    loud = rms_b > 0.01 * rms_b.max()
    assert loud.sum() >= 15
    assert np.abs(20 * np.log10(rms_a[loud] / rms_b[loud])).max() < 1.5


@pytest.mark.parametrize("backend", ["native", "reference"])
def test_the_render_is_deterministic_and_independent_of_the_block_size(
        tmp_path: Path, backend: str) -> None:
    smf = gm_file(tmp_path / "gm.mid", on_grid=False)
    first = our_render(smf, 3 * RATE, 512, backend)
    assert np.abs(first).max() > 0.05
    for block in (512, 100, 64):
        np.testing.assert_array_equal(our_render(smf, 3 * RATE, block, backend), first)


def test_the_track_chain_applies_and_a_seek_chases_controllers() -> None:
    clip = MidiClip(0, 4 * RATE, [Note(60, 100, 0, RATE), Note(64, 100, 2 * RATE, RATE)])
    loud = Track("gm", channels=2, instrument=Instrument("soundfont"), midi_clips=[clip])
    quiet = Track("gm", channels=2, gain_db=-20.0, instrument=Instrument("soundfont"),
                  midi_clips=[clip])
    a = Engine(Session(tracks=[loud]), block_size=256).render(0, RATE // 2)
    b = Engine(Session(tracks=[quiet]), block_size=256).render(0, RATE // 2)
    np.testing.assert_allclose(b, a * 10 ** (-20 / 20), atol=1e-6)
    engine = Engine(Session(tracks=[loud]), block_size=256)
    later = engine.render(int(1.5 * RATE), RATE)  # a seek: the first note is not chased
    assert np.abs(later[:, : RATE // 4]).max() < 1e-3
    assert np.abs(later[:, RATE // 2 + 4000:]).max() > 0.01


def gm_session(notes: list[Note]) -> Session:
    return Session(tracks=[Track("gm", channels=2, instrument=Instrument("soundfont"),
                                 midi_clips=[MidiClip(0, 5 * RATE, notes)])])


def test_a_seek_into_a_held_note_sounds_it_at_once_and_not_one_that_ended() -> None:
    """Note chase: a piano C4 held across the seek starts there (as a note written to start
    there); an F#4 that ended before it stays silent."""
    held, ended, seek = Note(60, 100, 0, 4 * RATE), Note(66, 127, 0, RATE // 2), 2 * RATE
    out = Engine(gm_session([held, ended]), block_size=256).render(seek, RATE)
    assert np.sqrt(np.mean(out[0, :256] ** 2)) > 2e-3  # heard in the first block
    spectrum = np.abs(np.fft.rfft(out[0, :8192] * np.hanning(8192)))
    hz = np.fft.rfftfreq(8192, 1 / RATE)
    near = {f: spectrum[np.abs(hz - f) < 8].max() for f in (261.6, 370.0)}
    assert near[261.6] > 30 * near[370.0]  # at the held note's pitch, not the ended one's
    fresh = Note(60, 100, seek, 2 * RATE)
    np.testing.assert_array_equal(
        out, Engine(gm_session([fresh]), block_size=256).render(seek, RATE))


def test_programs_are_checked_and_a_missing_font_is_named(monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    with pytest.raises(ProjectError, match="program_3"):
        validate_instrument(Instrument("soundfont", {"program_3": 128}), "keys")
    with pytest.raises(ProjectError, match="whole number"):
        validate_instrument(Instrument("soundfont", {"program_3": 1.5}), "keys")
    monkeypatch.setenv("DAW_SOUNDFONT", "/nowhere/gm.sf2")
    with pytest.raises(SoundFontError, match="DAW_SOUNDFONT"):
        default_font()


def test_a_soundfont_track_in_the_document_plays() -> None:
    doc = ProjectDocument.from_session(Session(tracks=[Track("gm", channels=2)]))
    doc.set_instrument("gm", Instrument("soundfont", {"program_0": 24}))
    doc.add_midi_clip("gm", MidiClip(0, RATE, [Note(57, 100, 0, RATE // 2)]))
    session = doc.to_session()
    assert session.tracks[0].instrument == Instrument("soundfont", {"program_0": 24})
    assert np.abs(Engine(session, block_size=512).render(0, RATE // 2)).max() > 0.01


def test_the_cli_imports_a_general_midi_file_into_a_project_file(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from dawserver.cli import main
    from dsp_core.project import load_project, save_project

    project = save_project(Session(tracks=[Track("vox")]), tmp_path / "song")
    song = gm_file(tmp_path / "gm.mid", on_grid=True)
    result = CliRunner().invoke(main, ["midi", "import", "--soundfont", str(tmp_path / "song"),
                                       str(song)])
    assert result.exit_code == 0, result.output
    session = load_project(project)
    assert [t.instrument.params for t in session.tracks[1:]] == [
        {"program_0": 0}, {"program_1": 48}, {}]
    assert np.abs(Engine(session, block_size=512).render(0, RATE)).max() > 0.05
