"""The desktop client lets a keyboard's notes go when its MIDI input port goes: closed,
switched for another, or gone (the keyboard unplugged), over real RtMidi ports (JACK)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from midi_helpers import jack_server

from dawclient.controls import ControlError
from dawclient.live_midi import LiveMidi
from dawclient.midi_input import MidiInput, MidiMessage, list_ports, parse_message, watch
from dawclient.session import ClientOptions, DesktopClient
from dsp_core.instrument_graph import CC, NOTE_ON
from dsp_core.midi import Instrument

rtmidi = pytest.importorskip("rtmidi")
pytestmark = pytest.mark.timeout(60)
RATE, BLOCK = 48000, 256
#: The built-in synth's amp envelope: at once up, then 100 ms release (linear, to 0).
SYNTH = Instrument("synth", {"attack_ms": 0.0, "decay_ms": 0.0, "sustain": 1.0,
                             "release_ms": 100.0})
RELEASE = RATE // 10
#: Pedal down; key 60 pressed and let go under the pedal; key 64 pressed and held.
HELD = ([0xB0, 64, 127], [0x90, 60, 100], [0x80, 60, 0], [0x90, 64, 90])
#: How long a wait for MIDI over JACK may take before it fails (well inside the timeout,
#: which would end the whole run).
PATIENCE = 15.0
#: A mod wheel at rest: what :meth:`Client.connect` sends until one arrives.
PROBE = [0xB0, 1, 0]


@pytest.fixture
def jack(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with jack_server(RATE, BLOCK) as name:
        monkeypatch.setenv("JACK_DEFAULT_SERVER", name)
        yield name


def keyboard(name: str) -> object:
    """A virtual MIDI output port on JACK named ``name``: what a keyboard would be."""
    out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, f"test {name}")
    out.open_virtual_port(name)
    return out


def unplug(out: object) -> None:
    out.close_port()  # type: ignore[attr-defined]
    out.delete()  # type: ignore[attr-defined]


class Client:
    """The client's path for a port: messages into :class:`LiveMidi` (kept in
    :attr:`arrived`, to know they arrived; :data:`PROBE` s only counted), ``on_close``
    its panic, as ``dawclient.session`` wires them."""

    def __init__(self, port: str) -> None:
        self.live = LiveMidi("keys", SYNTH, RATE, BLOCK, lambda frame: frame, "native")
        self.arrived: list[MidiMessage] = []
        self.probes = 0
        self.port = MidiInput(port, self.message, api="jack", on_close=self.live.panic)

    def message(self, message: MidiMessage) -> None:
        self.live.message(message)
        if (message.kind, message.key, message.value) == (CC, PROBE[1], PROBE[2]):
            self.probes += 1  # a late one must not pass for the message a test awaits
        else:
            self.arrived.append(message)

    def wait_for(self, count: int) -> None:
        """Until ``count`` messages have arrived; fails after :data:`PATIENCE`."""
        deadline = time.monotonic() + PATIENCE
        while len(self.arrived) < count:
            assert time.monotonic() < deadline, f"{len(self.arrived)} of {count} arrived"
            time.sleep(0.005)

    def connect(self, out: object) -> None:
        """Until messages from ``out`` reach the open port: JACK makes a connection live
        at a later cycle than the open that asked for it, and what ``out`` sends before
        then is lost. :attr:`arrived` starts again from nothing, and a :data:`PROBE`
        is sent until one arrives (probes are never kept in it, however late)."""
        self.arrived.clear()
        deadline, before = time.monotonic() + PATIENCE, self.probes
        while self.probes == before:
            assert time.monotonic() < deadline, "no message from the keyboard arrived"
            out.send_message(PROBE)  # type: ignore[attr-defined]
            time.sleep(0.02)

    def render(self, blocks: int) -> np.ndarray:
        """``blocks`` monitor blocks, transport stopped (channel 0)."""
        out = np.zeros((2, blocks * BLOCK), dtype=np.float32)
        for b in range(blocks):
            self.live.block(out[:, b * BLOCK:(b + 1) * BLOCK], None, time.monotonic())
        return out[0]


async def until(done: Callable[[], bool], what: str) -> None:
    """Until ``done()``; fails after :data:`PATIENCE`, naming ``what`` it waited for."""
    deadline = time.monotonic() + PATIENCE
    while not done():
        assert time.monotonic() < deadline, f"waited {PATIENCE} s for {what}"
        await asyncio.sleep(0.005)


def held_notes(client: Client, keys: object) -> None:
    """Pedal down, one key let go under it, one held, once ``keys`` is connected: both
    sound."""
    client.connect(keys)
    for message in HELD:
        keys.send_message(message)  # type: ignore[attr-defined]
    client.wait_for(len(HELD))
    assert np.abs(client.render(10)[-BLOCK:]).max() > 0.05


def test_closing_the_port_lets_the_held_notes_go(jack: str) -> None:
    """Held notes, then the port closed (the client leaving, or the user closing the
    input): silent, exactly, from the synth's release after; the next port opened plays."""
    keys = keyboard("keys")
    client = Client("keys")
    client.port.open()
    held_notes(client, keys)
    client.port.close()
    out = client.render(40)
    assert np.abs(out[:64]).max() > 0.05  # released at the next block
    assert not out[RELEASE:].any()
    client.port.open()
    client.connect(keys)
    keys.send_message([0x90, 67, 100])  # type: ignore[attr-defined]
    client.wait_for(1)
    assert np.abs(client.render(4)).max() > 0.05
    client.port.close()
    unplug(keys)


def test_switching_ports_lets_the_old_ports_notes_go(jack: str) -> None:
    """Notes held on one keyboard when the input switches to another: silent from the
    release after; the new keyboard plays, the old one is not heard."""
    keys, pads = keyboard("keys"), keyboard("pads")
    client = Client("keys")
    client.port.open()
    held_notes(client, keys)
    client.port.switch("pads")
    assert "pads" in (client.port.name or "")
    out = client.render(40)
    assert np.abs(out[:64]).max() > 0.05
    assert not out[RELEASE:].any()
    client.connect(pads)
    keys.send_message([0x90, 72, 100])  # type: ignore[attr-defined]  # (closed: not heard)
    pads.send_message([0x90, 67, 100])  # type: ignore[attr-defined]
    client.wait_for(1)
    assert [m.key for m in client.arrived] == [67]
    assert np.abs(client.render(4)).max() > 0.05
    client.port.close()
    unplug(keys)
    unplug(pads)


@pytest.mark.asyncio
async def test_a_keyboard_unplugged_mid_note_is_silenced_and_heard_again_when_back(
        jack: str) -> None:
    """The keyboard's port vanishes with notes held (pedal down): the client's watch
    closes the input, the notes are let go and silent from the release after; plugged in
    again, the watch opens it and it plays."""
    keys = keyboard("keys")
    client = Client("keys")
    client.port.open()
    held_notes(client, keys)
    watcher = asyncio.create_task(watch(client.port, every=0.01))
    unplug(keys)
    await until(lambda: not client.port.is_open, "the watch to close the port")
    out = client.render(40)
    assert np.abs(out[:64]).max() > 0.05
    assert not out[RELEASE:].any()
    keys = keyboard("keys")
    await until(lambda: client.port.is_open, "the watch to open the port again")
    await asyncio.to_thread(client.connect, keys)
    keys.send_message([0x90, 67, 100])  # type: ignore[attr-defined]
    await until(lambda: len(client.arrived) == 1, "the note from the keyboard back")
    assert np.abs(client.render(4)).max() > 0.05
    watcher.cancel()
    with pytest.raises(asyncio.CancelledError):
        await watcher
    client.port.close()
    unplug(keys)


@pytest.mark.asyncio
async def test_a_port_opened_by_index_is_opened_again_by_its_name(jack: str) -> None:
    """Opened as port 0, unplugged: the watch waits for that keyboard, not whichever port
    is now listed first, and a failure on the way is logged, not the watch's end."""
    first, second = keyboard("first"), keyboard("second")
    ports = list_ports("jack")
    client = Client(str(next(i for i, name in enumerate(ports) if "first" in name)))
    client.port.open()
    assert "first" in (client.port.name or "")
    failures = 0
    real_open = client.port.open

    def flaky_open() -> MidiInput:
        nonlocal failures
        failures += 1
        if failures == 1:
            raise RuntimeError("the port vanished while it was being opened")
        return real_open()

    client.port.open = flaky_open  # type: ignore[method-assign]
    watcher = asyncio.create_task(watch(client.port, every=0.01))
    unplug(first)
    await until(lambda: not client.port.is_open, "the watch to close the port")
    for _ in range(20):  # the other keyboard is listed all along: never taken
        await asyncio.sleep(0.01)
        assert not client.port.is_open
    first = keyboard("first")
    await until(lambda: client.port.is_open, "the watch to open the port again")
    assert "first" in (client.port.name or "") and failures == 2 and not watcher.done()
    watcher.cancel()
    with pytest.raises(asyncio.CancelledError):
        await watcher
    client.port.close()
    unplug(first)
    unplug(second)


def test_a_note_being_recorded_ends_at_the_panic() -> None:
    """While the transport plays, a key held when the port goes is recorded as ending
    there (not left open until the transport stops), at or after the frame it started."""
    live = LiveMidi("keys", SYNTH, RATE, BLOCK, lambda frame: frame)
    out = np.zeros((2, BLOCK), dtype=np.float32)
    now = time.monotonic()
    live.block(out, 0, now)
    live.message(MidiMessage(NOTE_ON, 0, 60, 100, now))
    live.block(out, BLOCK, now + BLOCK / RATE)
    assert live.take_notes() == []  # still held
    live.panic()
    notes = live.take_notes()
    assert [(n.pitch, n.velocity) for n in notes] == [(60, 100)]
    assert notes[0].start >= 0 and notes[0].length >= 1


def desktop(client: Client, tmp_path: Path) -> DesktopClient:
    """A desktop client (not connected) whose MIDI input is ``client``'s."""
    desk = DesktopClient(ClientOptions("http://127.0.0.1:9", "p", "t", cache_dir=tmp_path,
                                       midi_in="keys", midi_api="jack"))
    desk._live, desk._midi_port = client.live, client.port
    return desk


def test_the_midi_in_control_line_switches_ports_and_lets_the_notes_go(
        jack: str, tmp_path: Path) -> None:
    """``midi-in pads`` on the client's control input with notes held on ``keys``: silent
    from the release after, and ``pads`` plays; a port that is not there is refused,
    naming the ports there are."""
    keys, pads = keyboard("keys"), keyboard("pads")
    client = Client("keys")
    desk = desktop(client, tmp_path)
    client.port.open()
    held_notes(client, keys)
    desk._control_line(None, "midi-in pads\n")
    out = client.render(40)
    assert np.abs(out[:64]).max() > 0.05
    assert not out[RELEASE:].any()
    client.connect(pads)
    pads.send_message([0x90, 67, 100])  # type: ignore[attr-defined]
    client.wait_for(1)
    assert np.abs(client.render(4)).max() > 0.05
    with pytest.raises(ControlError, match="no MIDI input port 'drums'.*pads"):
        desk._control_line(None, "midi-in drums")
    assert client.port.is_open and "pads" in (client.port.name or "")  # a typo: kept
    for line in ("panic all", "panic 1", "midi-in"):
        with pytest.raises(ControlError, match="expected 'panic' or 'midi-in PORT'"):
            desk._control_line(None, line)
        assert "pads" in (client.port.name or ""), line  # never a switch
    spaced = keyboard("my keys")
    desk._control_line(None, "midi-in my keys")  # a name with a space in it
    assert "my keys" in (client.port.name or "")
    client.port.close()
    unplug(spaced)
    unplug(keys)
    unplug(pads)


def test_the_panic_control_line_lets_the_notes_go(tmp_path: Path) -> None:
    """``panic`` on the client's control input, notes held by a key and the pedal: silent
    from the release after; without a MIDI input the line is refused."""
    client = Client("keys")  # (the port is not opened: panic needs none)
    desk = desktop(client, tmp_path)
    for data in HELD:
        message = parse_message(data, time.monotonic())
        assert message is not None
        client.live.message(message)
    assert np.abs(client.render(10)[-BLOCK:]).max() > 0.05
    desk._control_line(None, "panic")
    out = client.render(40)
    assert np.abs(out[:64]).max() > 0.05
    assert not out[RELEASE:].any()
    desk._live = None
    with pytest.raises(ControlError, match="no MIDI input"):
        desk._control_line(None, "panic")
