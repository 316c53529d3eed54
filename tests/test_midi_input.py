"""Live MIDI input: messages from a real RtMidi port (JACK), played through the selected
track's instrument and recorded at the timeline frames that were heard."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import numpy as np
import pytest
from midi_helpers import jack_server

from collab.schema import ProjectDocument
from dawclient.live_midi import LiveMidi, RecordedNote, write_notes
from dawclient.midi_input import MidiInput, MidiInputError, MidiMessage, list_ports, parse_message
from dsp_core.instrument_graph import BEND, CC, NOTE_OFF, NOTE_ON
from dsp_core.midi import Instrument, MidiClip
from dsp_core.session import Session, Track

rtmidi = pytest.importorskip("rtmidi")
pytestmark = pytest.mark.timeout(60)
RATE, BLOCK = 48000, 256
#: A recorded note's start may differ from the frame heard when it was sent by this much:
#: JACK hands MIDI over once per period (256 frames), twice (out port, in port), plus
#: thread wake-ups on a busy machine.
TOLERANCE = int(0.025 * RATE)


@pytest.fixture
def jack(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with jack_server(RATE, BLOCK) as name:
        monkeypatch.setenv("JACK_DEFAULT_SERVER", name)
        yield name


@pytest.fixture
def keyboard(jack: str) -> Iterator[object]:
    """A virtual MIDI output port on JACK: what a keyboard would be."""
    out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, "test keyboard")
    out.open_virtual_port("keys")
    yield out
    out.close_port()
    out.delete()


def test_channel_messages_are_parsed_and_the_rest_dropped() -> None:
    assert parse_message([0x91, 60, 100], 1.0) == MidiMessage(NOTE_ON, 1, 60, 100, 1.0)
    assert parse_message([0x90, 60, 0], 2.0) == MidiMessage(NOTE_OFF, 0, 60, 0, 2.0)
    assert parse_message([0x8F, 61, 40], 0.0).kind == NOTE_OFF
    assert parse_message([0xB0, 64, 127], 0.0) == MidiMessage(CC, 0, 64, 127, 0.0)
    assert parse_message([0xE3, 0, 64], 0.0) == MidiMessage(BEND, 3, 0, 0, 0.0)
    assert parse_message([0xE0, 127, 127], 0.0).value == 8191
    assert parse_message([0xF8], 0.0) is None and parse_message([0xC0, 5], 0.0) is None


def test_an_unknown_port_names_the_ports_there_are(keyboard: object) -> None:
    assert any("keys" in name for name in list_ports("jack"))
    with pytest.raises(MidiInputError, match="no MIDI input port 'piano'.*keys"):
        MidiInput("piano", lambda m: None, api="jack").open()


class PacedPlayer:
    """Renders blocks in real time as the player does (each block just before it is heard),
    transport playing from frame 0 at ``t0``; keeps what was rendered, and when each
    block's rendering began and ended (monotonic seconds)."""

    def __init__(self, live: LiveMidi, seconds: float) -> None:
        self.live, self.blocks = live, int(seconds * RATE) // BLOCK
        self.out = np.zeros((2, self.blocks * BLOCK), dtype=np.float32)
        self.began = np.full(self.blocks, np.inf)
        self.ended = np.full(self.blocks, np.inf)
        self.t0 = 0.0
        self.thread = threading.Thread(target=self.run, daemon=True)

    def start(self) -> None:
        """Play from frame 0 in 50 ms."""
        self.t0 = time.monotonic() + 0.05
        self.thread.start()

    def run(self) -> None:
        for b in range(self.blocks):
            heard_at = self.t0 + b * BLOCK / RATE
            time.sleep(max(0.0, heard_at - time.monotonic()))
            block = np.zeros((2, BLOCK), dtype=np.float32)
            self.began[b] = time.monotonic()
            self.live.block(block, b * BLOCK, heard_at)
            self.ended[b] = time.monotonic()
            self.out[:, b * BLOCK:(b + 1) * BLOCK] = block

    def rendered(self, after: float, before: float) -> np.ndarray:
        """Channel 0 of the blocks whose rendering began after ``after`` and ended before
        ``before``, one after another."""
        return np.concatenate([np.zeros(0, np.float32)] + [
            self.out[0, b * BLOCK:(b + 1) * BLOCK] for b in range(self.blocks)
            if self.began[b] > after and self.ended[b] < before])


#: A mod wheel at rest: sent until one arrives, so the port's connection is live.
PROBE = [0xB0, 1, 0]


@pytest.mark.alone  # recorded frames measured against the wall clock
def test_notes_from_the_port_are_heard_and_recorded_at_the_frames_played(
        keyboard: object, capsys: pytest.CaptureFixture[str]) -> None:
    live = LiveMidi("keys", Instrument("synth", {"attack_ms": 0.0}), RATE, BLOCK,
                    to_session=lambda frame: frame, backend="native")
    player = PacedPlayer(live, 2.5)
    sent: list[tuple[int, float]] = []
    arrived: list[MidiMessage] = []
    fed: list[float] = []  # when each of them had reached the live instrument
    probes: list[MidiMessage] = []

    def message(message: MidiMessage) -> None:
        if message.kind == CC:
            probes.append(message)
        else:
            live.message(message)
            fed.append(time.monotonic())
            arrived.append(message)

    def until(done: Callable[[], bool], what: str, probe: bool = False) -> None:
        deadline = time.monotonic() + 15
        while not done():
            assert time.monotonic() < deadline, f"waited 15 s for {what}"
            if probe:
                keyboard.send_message(PROBE)
            time.sleep(0.02)

    with MidiInput("keys", message, api="jack") as port:
        assert "keys" in (port.name or "")
        # JACK makes the connection live at a later cycle than the open that asked for it
        until(lambda: bool(probes), "a probe from the keyboard", probe=True)
        player.start()
        for i, pitch in enumerate((60, 64, 67, 72)):
            time.sleep(max(0.0, player.t0 + 0.3 + 0.45 * i - time.monotonic()))
            keyboard.send_message([0x90, pitch, 90 + i])
            sent.append((pitch, time.monotonic()))
            time.sleep(0.2)
            keyboard.send_message([0x80, pitch, 0])
        until(lambda: len(arrived) == 8, "the notes' eight messages")
        player.thread.join(10)
        assert not player.thread.is_alive()
    notes = sorted(live.take_notes(), key=lambda n: n.start)
    assert [(n.pitch, n.velocity) for n in notes] == [(60, 90), (64, 91), (67, 92), (72, 93)]
    # each note starts at the frame heard when its note-on reached the client, and lasts
    # until its note-off did: JACK's own delay (a period or two, more on a loaded machine)
    # and the sender's oversleeping are reported, not asserted
    ons = [m for m in arrived if m.kind == NOTE_ON]
    offs = [next(m for m in arrived if m.kind == NOTE_OFF and m.key == on.key) for on in ons]
    played = [fed[arrived.index(on)] for on in ons]
    errors = []
    for note, on, off, (_pitch, at) in zip(notes, ons, offs, sent, strict=True):
        assert abs(note.start - round((on.at - player.t0) * RATE)) <= TOLERANCE, (note, on)
        errors.append(note.start - round((at - player.t0) * RATE))
        assert abs(note.length - round((off.at - on.at) * RATE)) <= TOLERANCE, (note, off)
    # heard: silence in every block rendered before the first note-on arrived, sound in
    # every block rendered while a note was held
    assert not player.rendered(0.0, ons[0].at).any()
    for at, off in zip(played, offs, strict=True):
        held = player.rendered(at, off.at)
        assert held.size and np.abs(held).reshape(-1, BLOCK).max(axis=1).min() > 0.05
    latency = [lat.rendered - at for lat, (_p, at) in zip(live.latencies, sent, strict=True)]
    heard = [lat.heard - at for lat, (_p, at) in zip(live.latencies, sent, strict=True)]
    with capsys.disabled():
        print(f"\nlive MIDI over JACK ({BLOCK}-frame period, {BLOCK}-frame blocks): "
              f"record error {np.mean(errors) / RATE * 1000:+.1f} ms mean, "
              f"{np.max(np.abs(errors)) / RATE * 1000:.1f} ms max; note-on -> first audible "
              f"sample rendered {1000 * np.median(latency):.1f} ms median "
              f"({1000 * max(latency):.1f} max), heard {1000 * np.median(heard):.1f} ms")


def test_recorded_notes_land_in_the_clip_that_holds_them_or_a_new_one() -> None:
    doc = ProjectDocument.from_session(Session(tracks=[Track("keys")]))
    doc.set_instrument("keys", Instrument("synth"))
    old = doc.add_midi_clip("keys", MidiClip(0, 48000))
    clip = write_notes(doc, "keys", [RecordedNote(0, 60, 100, 1000, 500),
                                     RecordedNote(0, 62, 80, 60000, 4000)])
    assert clip is not None and clip != old
    assert [(n.pitch, n.start) for n in doc.midi_clip(old).notes] == [(60, 1000)]
    made = doc.midi_clip(clip)
    assert (made.position, made.length) == (60000, 4000)
    again = write_notes(doc, "keys", [RecordedNote(1, 64, 70, 70000, 2000)], clip)
    assert again == clip
    made = doc.midi_clip(clip)
    assert made.length == 12000
    assert sorted((n.pitch, n.start, n.channel) for n in made.notes) == [(62, 0, 0),
                                                                         (64, 10000, 1)]
    session = doc.to_session()
    assert sum(len(c.notes) for c in session.tracks[0].midi_clips) == 3


def test_a_new_soundfont_is_built_and_closed_off_the_player_thread(
        monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("fluidsynth")
    from dsp_core import soundfont

    threads: list[tuple[str, str]] = []
    made, close = soundfont.SoundFontSource.__init__, soundfont.SoundFontSource.close

    def making(self: object, *args: object, **kwargs: object) -> None:
        threads.append(("made", threading.current_thread().name))
        made(self, *args, **kwargs)

    def closing(self: object) -> None:
        threads.append(("closed", threading.current_thread().name))
        close(self)

    monkeypatch.setattr(soundfont.SoundFontSource, "__init__", making)
    monkeypatch.setattr(soundfont.SoundFontSource, "close", closing)
    live = LiveMidi("keys", Instrument("synth"), RATE, BLOCK, lambda frame: frame)

    def play(blocks: int) -> np.ndarray:
        heard: list[np.ndarray] = []

        def player() -> None:
            for _ in range(blocks):
                out = np.zeros((2, BLOCK), dtype=np.float32)
                live.block(out, None, time.monotonic())
                heard.append(out[0].copy())
        thread = threading.Thread(target=player, name="player")
        thread.start()
        thread.join(30)
        return np.concatenate(heard)

    for program in (0, 40):  # a synth becomes a SoundFont, then another program
        live.follow(Session(tracks=[Track("keys", instrument=Instrument(
            "soundfont", {"program_0": program}))]))
        live.message(MidiMessage(NOTE_ON, 0, 60, 100, time.monotonic()))
        assert np.abs(play(10)).max() > 0.01  # the new instrument sounds
        live.message(MidiMessage(NOTE_OFF, 0, 60, 0, time.monotonic()))
    live.follow(Session(tracks=[Track("keys", instrument=Instrument("synth"))]))
    play(1)
    live.finish()
    assert [kind for kind, _ in threads] == ["made", "made", "closed", "closed"]
    assert {name for _, name in threads} == {threading.current_thread().name}
