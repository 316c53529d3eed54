"""Standard MIDI File import and export (mido) for MIDI tracks.

>>> imported = read_smf("song.mid", sample_rate=48000)   # tracks with one MIDI clip each
>>> write_smf(session.tracks, "out.mid", sample_rate=48000, tempo=120.0)

Import follows the file's whole tempo map (tick -> seconds -> frames, rounded to the
nearest frame); export writes one tempo (the project's) at ``ticks_per_beat`` 480, so
a frame lands on the nearest tick: at 120 BPM and 48 kHz one tick is 50 frames.
A MIDI clip's notes are written at their timeline frames (clip position + start).
"""

from __future__ import annotations

import bisect
import io
import os
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import mido

from .errors import ProjectError
from .midi import ControlEvent, Instrument, MidiClip, Note, validate_clip
from .session import Track
from .tempo import METER_DENOMINATORS

DEFAULT_TICKS_PER_BEAT = 480
DEFAULT_TEMPO = 120.0
#: The most notes plus controller events one import takes (over every track).
MAX_IMPORT_EVENTS = 100_000
#: The most MIDI tracks one import makes.
MAX_IMPORT_TRACKS = 64
#: Before mido parses a file its tracks are scanned and every event counted (notes on
#: and off, aftertouch, sysex, meta ...): past this many per imported event, plus
#: :data:`SCAN_SLACK`, the file is refused without building a message.
SCAN_FACTOR = 4
#: Events the scan allows beyond ``SCAN_FACTOR * max_events`` (names, tempos, track ends).
SCAN_SLACK = 1000
#: Data bytes after the status byte of a channel message, by its high nibble.
_CHANNEL_DATA = {0x8: 2, 0x9: 2, 0xA: 2, 0xB: 2, 0xC: 1, 0xD: 1, 0xE: 2}
#: Data bytes of the system messages mido reads (others it refuses).
_SYSTEM_DATA = {0xF1: 1, 0xF2: 2, 0xF3: 1, 0xF6: 0, 0xF8: 0, 0xFA: 0, 0xFB: 0, 0xFC: 0,
                0xFE: 0}


class SmfTooLarge(ProjectError):
    """A file holds more than :data:`MAX_IMPORT_EVENTS` events or
    :data:`MAX_IMPORT_TRACKS` tracks."""


@dataclass
class SmfImport:
    """What a file held: one track per MIDI file track with notes or controllers, the
    first tempo (BPM) and the first usable time signature (``meter_given`` False: the
    file has none, 4/4 by the standard)."""

    tracks: list[Track] = field(default_factory=list)
    tempo: float = DEFAULT_TEMPO
    beats_per_bar: int = 4
    beat_unit: int = 4
    meter_given: bool = False


def _open(source: str | os.PathLike[str] | bytes | BinaryIO,
          max_events: int = MAX_IMPORT_EVENTS) -> mido.MidiFile:
    try:
        if isinstance(source, bytes):
            data = source
        elif hasattr(source, "read"):
            data = source.read()
        else:
            data = Path(source).read_bytes()
        limit = SCAN_FACTOR * max_events + SCAN_SLACK
        if count_events(data, limit) > limit:
            raise SmfTooLarge(f"the MIDI file holds more than {limit} MIDI events (notes on "
                              f"and off, controllers, aftertouch, sysex, meta); at most "
                              f"{max_events} notes and controller events are imported: "
                              "split it and import the parts")
        return mido.MidiFile(file=io.BytesIO(data))
    except (OSError, EOFError, ValueError, KeyError, IndexError) as exc:
        raise ProjectError(f"not a readable Standard MIDI File: {exc}; export it again as "
                           "a type 0 or 1 .mid file") from exc


def count_events(data: bytes, limit: int) -> int:
    """The events of every track mido would read in ``data``, counted without building
    them and stopping at ``limit + 1``; a file mido would refuse is counted up to where
    it breaks (mido then raises there, having read no more events than were counted).

    Follows mido's reading: the header's track count, delta times, running status (set
    by every status but meta's) and the lengths of sysex and meta events."""
    if data[:4] != b"MThd" or len(data) < 14:
        return 0
    pos = 8 + int.from_bytes(data[4:8], "big")
    tracks = int.from_bytes(data[10:12], "big", signed=True)
    end, events = len(data), 0

    def varint(at: int) -> tuple[int, int]:
        value = 0
        while at < end:
            byte = data[at]
            value, at = (value << 7) | (byte & 0x7F), at + 1
            if byte < 0x80:
                return value, at
        raise EOFError

    try:
        for _ in range(max(0, tracks)):
            if data[pos:pos + 4] != b"MTrk" or pos + 8 > end:
                return events
            size = int.from_bytes(data[pos + 4:pos + 8], "big")
            pos = start = pos + 8
            running = None
            while pos - start != size:
                _, pos = varint(pos)
                if pos >= end:
                    return events
                status, pos = data[pos], pos + 1
                peeked = 0
                if status < 0x80:
                    if running is None:
                        return events
                    status, peeked = running, 1
                elif status != 0xFF:
                    running = status
                if status == 0xFF:
                    pos += 1  # the meta type
                    length, pos = varint(pos)
                    pos += length
                elif status in (0xF0, 0xF7):
                    length, pos = varint(pos)
                    pos += length
                elif status < 0xF0:
                    pos += _CHANNEL_DATA[status >> 4] - peeked
                elif status in _SYSTEM_DATA:
                    pos += max(0, _SYSTEM_DATA[status] - peeked)
                else:
                    return events
                if pos > end:
                    return events
                events += 1
                if events > limit:
                    return events
    except EOFError:
        pass
    return events


class _TempoMap:
    """Absolute ticks to seconds over the file's tempo changes."""

    def __init__(self, midi: mido.MidiFile) -> None:
        self.tpb = midi.ticks_per_beat
        if self.tpb < 0:
            raise ProjectError("the MIDI file's timing is invalid: SMPTE time division is not "
                               "supported; export the file with PPQ (ticks per beat) timing")
        if self.tpb == 0:
            raise ProjectError("the MIDI file's timing is invalid: its header gives 0 ticks "
                               "per beat; export the file again")
        changes: dict[int, int] = {}
        tracks = midi.tracks if midi.type != 2 else midi.tracks[:1]
        for track in tracks:
            tick = 0
            for msg in track:
                tick += msg.time
                if msg.type == "set_tempo":
                    if msg.tempo <= 0:
                        raise ProjectError(f"the MIDI file's timing is invalid: a tempo of "
                                           f"{msg.tempo} µs per beat at tick {tick}; fix the "
                                           "tempo and export the file again")
                    changes[tick] = msg.tempo
        self.points = sorted(changes.items()) or [(0, 500000)]
        if self.points[0][0] != 0:
            self.points.insert(0, (0, 500000))
        self.ticks = [t for t, _ in self.points]
        self.seconds = [0.0]
        for (t0, tempo), (t1, _) in zip(self.points, self.points[1:], strict=False):
            self.seconds.append(self.seconds[-1] + mido.tick2second(t1 - t0, self.tpb, tempo))

    def to_seconds(self, tick: int) -> float:
        i = max(0, bisect.bisect_right(self.ticks, tick) - 1)
        t0, tempo = self.points[i]
        return self.seconds[i] + mido.tick2second(tick - t0, self.tpb, tempo)


def read_smf(source: str | os.PathLike[str] | bytes | BinaryIO, sample_rate: int,
             id_prefix: str = "midi", max_events: int = MAX_IMPORT_EVENTS,
             max_tracks: int = MAX_IMPORT_TRACKS, instrument: str = "synth") -> SmfImport:
    """Read a Standard MIDI File into MIDI tracks (each with a default synth and one clip
    from frame 0); raises :class:`ProjectError` for a file mido cannot parse, whose
    timing is invalid (0 ticks per beat, a tempo of 0 µs per beat, SMPTE time division)
    or whose times leave the frame range, :class:`SmfTooLarge` past ``max_events`` notes
    and controller events or ``max_tracks`` tracks.  A time signature no project meter
    takes (numerator outside 1..64, denominator not 1, 2, 4 ... 32) is skipped.

    ``instrument="soundfont"`` gives each track a stereo General MIDI ``soundfont``
    instrument instead (:mod:`dsp_core.soundfont`) playing, on each channel, the first
    program the file selects there."""
    if instrument not in ("synth", "soundfont"):
        raise ProjectError(f"an imported track's instrument must be 'synth' or 'soundfont', "
                           f"got {instrument!r}")
    midi = _open(source, max_events)
    tempo_map = _TempoMap(midi)
    result = SmfImport(tempo=round(mido.tempo2bpm(tempo_map.points[0][1]), 6))

    def frame(tick: int) -> int:
        return round(tempo_map.to_seconds(tick) * sample_rate)

    events = 0

    def count() -> None:
        nonlocal events
        events += 1
        if events > max_events:
            raise SmfTooLarge(f"the MIDI file holds more than {max_events} notes and "
                              "controller events; split it and import the parts")

    for index, mtrack in enumerate(midi.tracks):
        tick, name = 0, ""
        notes: list[Note] = []
        controls: list[ControlEvent] = []
        sounding: dict[tuple[int, int], deque[tuple[int, int]]] = {}
        programs: dict[str, int] = {}
        for msg in mtrack:
            tick += msg.time
            if msg.type == "program_change":
                programs.setdefault(f"program_{msg.channel}", msg.program)
            elif msg.type == "track_name":
                name = _name_read(msg.name)
            elif msg.type == "time_signature" and not result.meter_given and _usable_meter(
                    msg.numerator, msg.denominator):
                result.beats_per_bar, result.beat_unit = msg.numerator, msg.denominator
                result.meter_given = True
            elif msg.type == "note_on" and msg.velocity > 0:
                sounding.setdefault((msg.channel, msg.note), deque()).append(
                    (tick, msg.velocity))
            elif msg.type in ("note_off", "note_on"):
                started = sounding.get((msg.channel, msg.note))
                if started:
                    on, velocity = started.popleft()
                    count()
                    notes.append(_note(frame(on), frame(tick), msg.note, velocity, msg.channel,
                                       len(notes)))
            elif msg.type == "control_change":
                count()
                controls.append(ControlEvent("cc", frame(tick), msg.value, msg.control,
                                             msg.channel, f"cc{len(controls)}"))
            elif msg.type == "pitchwheel":
                count()
                controls.append(ControlEvent("pitch_bend", frame(tick), msg.pitch, 0,
                                             msg.channel, f"cc{len(controls)}"))
        for (channel, pitch), started in sounding.items():  # never released: to the end
            for on, velocity in started:
                count()
                notes.append(_note(frame(on), frame(tick), pitch, velocity, channel, len(notes)))
        if not notes and not controls:
            continue
        end = max([n.end for n in notes] + [c.frame + 1 for c in controls])
        track_id = f"{id_prefix}{index + 1}"
        if len(result.tracks) >= max_tracks:
            raise SmfTooLarge(f"the MIDI file has more than {max_tracks} tracks with notes; "
                              "merge or split them and import again")
        clip = MidiClip(0, end, sorted(notes, key=lambda n: (n.start, n.pitch)), controls,
                        f"{track_id}-clip")
        validate_clip(clip, f"MIDI file track {index + 1} ({name or 'unnamed'})")
        gm = instrument == "soundfont"
        result.tracks.append(Track(id=track_id, name=name or f"MIDI {index + 1}",
                                   channels=2 if gm else 1,
                                   instrument=Instrument("soundfont", dict(programs)) if gm
                                   else Instrument("synth"), midi_clips=[clip]))
    return result


def _usable_meter(numerator: int, denominator: int) -> bool:
    """Whether a file's time signature is one a project's meter takes (1..64 over
    1, 2, 4 ... 32); others are skipped, as a file without one."""
    return 1 <= numerator <= 64 and denominator in METER_DENOMINATORS


def _note(on: int, off: int, pitch: int, velocity: int, channel: int, index: int) -> Note:
    return Note(pitch, velocity, on, max(1, off - on), channel, f"n{index}")


def write_smf(tracks: list[Track], target: str | os.PathLike[str] | BinaryIO, sample_rate: int,
              tempo: float = DEFAULT_TEMPO, ticks_per_beat: int = DEFAULT_TICKS_PER_BEAT,
              beats_per_bar: int = 4, beat_unit: int = 4) -> None:
    """Write the MIDI clips of ``tracks`` as a type 1 file: a tempo track, then one track
    per track with MIDI clips (audio tracks are left out)."""
    midi = mido.MidiFile(type=1, ticks_per_beat=ticks_per_beat)
    us = mido.bpm2tempo(tempo)
    midi.tracks.append(mido.MidiTrack([
        mido.MetaMessage("set_tempo", tempo=us, time=0),
        mido.MetaMessage("time_signature", numerator=beats_per_bar, denominator=beat_unit,
                         time=0),
        mido.MetaMessage("end_of_track", time=0)]))

    def tick(frames: int) -> int:
        return round(mido.second2tick(frames / sample_rate, ticks_per_beat, us))

    for track in tracks:
        if not track.midi_clips:
            continue
        events: list[tuple[int, int, mido.Message]] = []
        for clip in track.midi_clips:
            for c in clip.controls:
                if c.frame >= clip.length:
                    continue
                at = tick(clip.position + c.frame)
                msg = (mido.Message("control_change", channel=c.channel, control=c.number,
                                    value=c.value) if c.kind == "cc" else
                       mido.Message("pitchwheel", channel=c.channel, pitch=c.value))
                events.append((at, 0, msg))
            for n in clip.notes:
                if n.start >= clip.length:
                    continue
                on = tick(clip.position + n.start)
                events.append((on, 2, mido.Message(
                    "note_on", channel=n.channel, note=n.pitch, velocity=n.velocity)))
                off = max(on + 1, tick(clip.position + min(n.end, clip.length)))
                events.append((off, 1, mido.Message(
                    "note_off", channel=n.channel, note=n.pitch, velocity=0)))
        events.sort(key=lambda e: (e[0], e[1]))
        mtrack = mido.MidiTrack([mido.MetaMessage(
            "track_name", name=_name_written(track.name or track.id), time=0)])
        last = 0
        for at, _, msg in events:
            mtrack.append(msg.copy(time=at - last))
            last = at
        mtrack.append(mido.MetaMessage("end_of_track", time=0))
        midi.tracks.append(mtrack)
    if hasattr(target, "write"):
        midi.save(file=target)
    else:
        midi.save(os.fspath(target))


def _name_written(text: str) -> str:
    """``text`` as a track name for mido, which writes Latin-1: as it is when Latin-1
    holds it, else its UTF-8 bytes, which DAWs read as UTF-8 (a name such as "ボーカル"
    or "Vox 🎤" would fail the whole file otherwise)."""
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8").decode("latin-1")
    return text


def _name_read(text: str) -> str:
    """A track name as mido read it (Latin-1): its UTF-8 reading when its bytes are
    UTF-8 (as most DAWs write them), else as read."""
    try:
        return text.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text
