"""Standard MIDI File import and export (mido)."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import mido
import pytest

from dsp_core.errors import ProjectError
from dsp_core.midi import ControlEvent, Instrument, MidiClip, Note
from dsp_core.session import Track
from dsp_core.smf import read_smf, write_smf

RATE = 48000
TICK = 50  # frames per tick at 120 BPM, 480 ticks per beat, 48 kHz


def keys_track() -> Track:
    notes = [Note(60, 100, 0, 480 * TICK, 0), Note(64, 90, 240 * TICK, 240 * TICK, 0),
             Note(67, 1, 960 * TICK, 7 * TICK, 9), Note(60, 110, 480 * TICK, 10 * TICK, 0)]
    controls = [ControlEvent("cc", 0, 127, number=64), ControlEvent("pitch_bend", 30 * TICK, -8192),
                ControlEvent("cc", 700 * TICK, 0, number=64, channel=9)]
    return Track("keys", name="Keys", instrument=Instrument("synth"),
                 midi_clips=[MidiClip(120 * TICK, 2000 * TICK, notes, controls)])


def key(note: Note) -> tuple:
    return note.pitch, note.velocity, note.start, note.length, note.channel


def test_export_then_import_gives_back_the_notes_and_controllers(tmp_path: Path) -> None:
    track = keys_track()
    path = tmp_path / "song.mid"
    write_smf([track, Track("audio")], path, RATE, tempo=120.0)
    imported = read_smf(path, RATE)
    assert imported.tempo == pytest.approx(120.0)
    [back] = imported.tracks
    assert back.name == "Keys" and back.instrument == Instrument("synth")
    [clip] = back.midi_clips
    position = track.midi_clips[0].position  # export writes timeline frames; import from 0
    assert sorted(map(key, clip.notes)) == sorted(
        (n.pitch, n.velocity, n.start + position, n.length, n.channel)
        for n in track.midi_clips[0].notes)
    assert sorted((c.kind, c.frame, c.value, c.number, c.channel) for c in clip.controls) == \
        sorted((c.kind, c.frame + position, c.value, c.number, c.channel)
               for c in track.midi_clips[0].controls)
    # and a second trip changes nothing
    again = io.BytesIO()
    write_smf(imported.tracks, again, RATE, tempo=imported.tempo)
    assert sorted(map(key, read_smf(again.getvalue(), RATE).tracks[0].midi_clips[0].notes)) == \
        sorted(map(key, clip.notes))


def test_track_names_outside_latin1_are_written_and_read_back_as_utf8(
        tmp_path: Path) -> None:
    """mido writes names as Latin-1: one Latin-1 holds is written so (and read back),
    any other as its UTF-8 bytes, which are read back as UTF-8 (to a path, as the CLI
    exports, or to a buffer, as the server does)."""
    names = ["Café", "ボーカル 🎤", "Vox"]
    tracks = [replace(keys_track(), id=f"t{n}", name=name) for n, name in enumerate(names)]
    write_smf(tracks, tmp_path / "song.mid", RATE, 120.0)
    data = (tmp_path / "song.mid").read_bytes()
    assert [t.name for t in read_smf(data, RATE).tracks] == names
    raw = [t[0].name.encode("latin-1") for t in mido.MidiFile(file=io.BytesIO(data)).tracks[1:]]
    assert raw == ["Café".encode("latin-1"), "ボーカル 🎤".encode(), b"Vox"]


def test_import_follows_a_tempo_change_and_untied_notes() -> None:
    midi = mido.MidiFile(type=1, ticks_per_beat=96)
    midi.tracks.append(mido.MidiTrack([
        mido.MetaMessage("set_tempo", tempo=500000, time=0),
        mido.MetaMessage("set_tempo", tempo=1000000, time=96),   # 60 BPM from beat 2
        mido.MetaMessage("time_signature", numerator=3, denominator=4, time=0)]))
    midi.tracks.append(mido.MidiTrack([
        mido.Message("note_on", note=60, velocity=100, time=0),
        mido.Message("note_on", note=60, velocity=0, time=96),    # off by velocity 0
        mido.Message("note_on", note=62, velocity=80, time=0),
        mido.Message("note_off", note=62, time=96),               # one beat at 60 BPM
        mido.Message("note_on", note=64, velocity=70, time=0)]))  # never released
    data = io.BytesIO()
    midi.save(file=data)
    result = read_smf(data.getvalue(), RATE)
    assert (result.tempo, result.beats_per_bar, result.beat_unit) == (120.0, 3, 4)
    notes = sorted(result.tracks[0].midi_clips[0].notes, key=lambda n: n.start)
    assert [(n.pitch, n.start, n.length) for n in notes] == [
        (60, 0, 24000), (62, 24000, 48000), (64, 72000, 1)]


def test_a_file_that_is_not_midi_is_refused_with_a_clear_error() -> None:
    with pytest.raises(ProjectError, match="not a readable Standard MIDI File"):
        read_smf(b"RIFF....WAVEfmt ", RATE)


def one_note_file(meta: list[mido.MetaMessage], ticks_per_beat: int = 480) -> bytes:
    """A type 1 file: ``meta`` then a one-beat note on middle C."""
    midi = mido.MidiFile(type=1, ticks_per_beat=ticks_per_beat)
    midi.tracks.append(mido.MidiTrack([*meta,
                                       mido.Message("note_on", note=60, velocity=100, time=0),
                                       mido.Message("note_off", note=60, time=480)]))
    data = io.BytesIO()
    midi.save(file=data)
    return data.getvalue()


@pytest.mark.parametrize("data, words", [
    (one_note_file([mido.MetaMessage("set_tempo", tempo=0)]), "tempo of 0 µs per beat"),
    (one_note_file([mido.MetaMessage("set_tempo", tempo=500000),
                    mido.MetaMessage("set_tempo", tempo=0, time=240)]),
     "tempo of 0 µs per beat at tick 240"),
    (one_note_file([], ticks_per_beat=0), "0 ticks per beat"),
], ids=["tempo-0", "tempo-0-later", "tpb-0"])
def test_a_file_with_zero_tempo_or_zero_ticks_per_beat_is_refused(data: bytes,
                                                                   words: str) -> None:
    with pytest.raises(ProjectError, match="timing is invalid") as caught:
        read_smf(data, RATE)
    assert words in str(caught.value)


def test_an_smpte_timed_file_is_refused_rather_than_read_as_ticks() -> None:
    data = one_note_file([], ticks_per_beat=-6360)   # 25 fps, 40 ticks per frame
    assert mido.MidiFile(file=io.BytesIO(data)).ticks_per_beat < 0
    with pytest.raises(ProjectError, match="SMPTE time division is not supported; export "
                                           r"the file with PPQ \(ticks per beat\) timing"):
        read_smf(data, RATE)


@pytest.mark.parametrize("numerator, denominator", [(0, 4), (65, 4), (4, 64), (7, 128)])
def test_a_time_signature_no_meter_takes_is_skipped(numerator: int, denominator: int) -> None:
    bad = mido.MetaMessage("time_signature", numerator=numerator, denominator=denominator)
    alone = read_smf(one_note_file([bad]), RATE)
    assert (alone.beats_per_bar, alone.beat_unit) == (4, 4)   # as a file without one
    assert not alone.meter_given
    assert [n.length for n in alone.tracks[0].midi_clips[0].notes] == [24000]
    later = read_smf(one_note_file([bad, mido.MetaMessage("time_signature", numerator=6,
                                                          denominator=8, time=10)]), RATE)
    assert (later.beats_per_bar, later.beat_unit) == (6, 8) and later.meter_given


def aftertouch_flood(events: int) -> bytes:
    """A type 1 file of one track: ``events`` polyphonic aftertouch events in running
    status (3 bytes each), which the import neither keeps nor counted."""
    body = b"\x00\xa0\x40\x40" + b"\x00\x40\x40" * (events - 1) + b"\x00\xff\x2f\x00"
    return (b"MThd" + (6).to_bytes(4, "big") + b"\x00\x01\x00\x01\x01\xe0"
            + b"MTrk" + len(body).to_bytes(4, "big") + body)


@pytest.mark.parametrize("source", ["bytes", "file", "path"])
def test_a_flood_of_uncounted_events_is_refused_before_mido_parses_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str) -> None:
    from dsp_core import smf

    def no_parsing(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("mido parsed a file the scan should have refused")

    monkeypatch.setattr(smf.mido, "MidiFile", no_parsing)
    data = aftertouch_flood(smf.SCAN_FACTOR * 10 + smf.SCAN_SLACK + 1)  # 1,041 + end
    path = tmp_path / "flood.mid"
    path.write_bytes(data)
    given = {"bytes": data, "file": io.BytesIO(data), "path": path}[source]
    with pytest.raises(smf.SmfTooLarge, match=r"more than 1040 MIDI events .* at most 10 "
                                              r"notes and controller events"):
        read_smf(given, RATE, max_events=10)


def test_the_scan_counts_every_event_as_mido_reads_them() -> None:
    """Running status, sysex, meta and system messages, over two tracks: the scan's count
    is mido's, so a file at the limit is read as before."""
    from dsp_core.smf import count_events

    midi = mido.MidiFile(type=1)
    track = mido.MidiTrack([
        mido.MetaMessage("track_name", name="Keys"), mido.Message("sysex", data=[1, 2, 3]),
        mido.Message("note_on", note=60, velocity=90), mido.Message("note_on", note=62),
        mido.Message("aftertouch", value=3), mido.Message("aftertouch", value=4, time=99999),
        mido.MetaMessage("text", text="x" * 300), mido.Message("polytouch", note=3, value=3),
        mido.Message("pitchwheel", pitch=-5), mido.Message("program_change", program=4),
        mido.Message("songpos", pos=5), mido.Message("song_select", song=3)])
    midi.tracks += [track, track]
    buffer = io.BytesIO()
    midi.save(file=buffer)
    data = buffer.getvalue()
    read = sum(len(t) for t in mido.MidiFile(file=io.BytesIO(data)).tracks)
    assert count_events(data, 10_000) == read == 26
    assert count_events(data, 10) == 11
    assert count_events(aftertouch_flood(5000), 10**6) == 5001
    assert count_events(b"not midi", 10) == 0
