"""A MIDI input port (python-rtmidi): each message with the time it arrived.

RtMidi reads the ALSA sequencer or JACK; which one is ``api`` (``alsa``, ``jack`` or
None for RtMidi's default).  Messages reach ``on_message`` on RtMidi's own thread as
:class:`MidiMessage` (note on, note off, controller, pitch bend; the rest is dropped)
stamped with :func:`time.monotonic` at arrival.

A port closed, switched for another or gone (a USB keyboard unplugged: :func:`watch`
notices) calls ``on_close``: the client lets the notes it held go
(:meth:`dawclient.live_midi.LiveMidi.panic`), as a DAW sends All Notes Off.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dsp_core.instrument_graph import BEND, CC, NOTE_OFF, NOTE_ON

log = logging.getLogger(__name__)


class MidiInputError(Exception):
    """A MIDI port that cannot be opened (no RtMidi, no such port, no server)."""


@dataclass(frozen=True)
class MidiMessage:
    """One channel message: ``kind`` is the engine's ``NOTE_ON``/``NOTE_OFF``/``CC``/``BEND``;
    ``value`` the velocity, controller value or bend (-8192..8191); ``at`` monotonic
    seconds when it arrived."""

    kind: int
    channel: int
    key: int
    value: int
    at: float


def parse_message(data: list[int] | tuple[int, ...], at: float) -> MidiMessage | None:
    """A channel message from raw MIDI bytes, or None for anything else (clock, sysex...).
    A note-on with velocity 0 is a note-off."""
    if len(data) < 2 or not 0x80 <= data[0] < 0xF0:
        return None
    status, channel = data[0] & 0xF0, data[0] & 0x0F
    first = data[1] & 0x7F
    second = data[2] & 0x7F if len(data) > 2 else 0
    if status == 0x90 and second > 0:
        return MidiMessage(NOTE_ON, channel, first, second, at)
    if status in (0x80, 0x90):
        return MidiMessage(NOTE_OFF, channel, first, 0, at)
    if status == 0xB0:
        return MidiMessage(CC, channel, first, second, at)
    if status == 0xE0:
        return MidiMessage(BEND, channel, 0, (first | (second << 7)) - 8192, at)
    return None


def _rtmidi() -> Any:
    try:
        import rtmidi
    except ImportError:
        raise MidiInputError("live MIDI needs python-rtmidi: pip install 'max-booster[midi]' "
                             "(or python-rtmidi)") from None
    return rtmidi


def _api(rtmidi: Any, name: str | None) -> int:
    apis = {"alsa": rtmidi.API_LINUX_ALSA, "jack": rtmidi.API_UNIX_JACK,
            "coremidi": rtmidi.API_MACOSX_CORE, "winmm": rtmidi.API_WINDOWS_MM}
    if name is None:
        return rtmidi.API_UNSPECIFIED
    if name not in apis:
        raise MidiInputError(f"MIDI API must be one of {', '.join(apis)}, got {name!r}")
    if apis[name] not in rtmidi.get_compiled_api():
        raise MidiInputError(f"this RtMidi was built without {name}")
    return apis[name]


def list_ports(api: str | None = None) -> list[str]:
    """The MIDI input ports RtMidi sees (``alsa``, ``jack`` or the default API)."""
    rtmidi = _rtmidi()
    try:
        port = rtmidi.MidiIn(_api(rtmidi, api), "dawclient")
    except rtmidi.SystemError as exc:
        raise MidiInputError(f"no MIDI system ({api or 'default API'}): {exc}") from None
    try:
        return list(port.get_ports())
    finally:
        port.delete()


#: ALSA's client:port numbers at the end of a port's name (they change on a new plug-in).
_ALSA_NUMBERS = re.compile(r"\s+\d+:\d+$")


class MidiInput:
    """An open MIDI input port (a context manager) that calls ``on_message``.

    ``port`` is an index into :func:`list_ports` or a part of a port's name;
    ``on_close`` is called each time an open port is closed (after its last message).
    """

    def __init__(self, port: str | int, on_message: Callable[[MidiMessage], None],
                 api: str | None = None, on_close: Callable[[], None] | None = None) -> None:
        self.port = port
        self.api = api
        self.on_message = on_message
        self.on_close = on_close
        self.name: str | None = None
        self._midi: Any = None
        self._closing = threading.Lock()  # close() from the loop, check() from a worker

    @property
    def is_open(self) -> bool:
        """Whether the port is open."""
        return self._midi is not None

    def open(self) -> MidiInput:
        """Open the port (``MidiInputError`` with the ports there are when none matches).
        Once open, the port is known by its name (less ALSA's client:port numbers, which
        change when a keyboard is plugged in again), so it is opened again by name, never
        by an index that now lists another device."""
        if self._midi is not None:
            raise MidiInputError("the MIDI input is already open")
        rtmidi = _rtmidi()
        try:
            midi = rtmidi.MidiIn(_api(rtmidi, self.api), "dawclient")
        except rtmidi.SystemError as exc:
            raise MidiInputError(f"no MIDI system ({self.api or 'default API'}): "
                                 f"{exc}") from None
        try:
            ports = list(midi.get_ports())
            index = find_port(ports, self.port)
            if index is None:
                raise MidiInputError(f"no MIDI input port {self.port!r}; there are: "
                                     f"{', '.join(map(repr, ports)) or 'none'}")
            midi.ignore_types(sysex=True, timing=True, active_sense=True)
            midi.set_callback(self._arrived)
            midi.open_port(index, "dawclient in")
        except Exception as exc:  # (the port may vanish between listing and opening)
            midi.delete()
            if isinstance(exc, MidiInputError):
                raise
            raise MidiInputError(f"the MIDI input {self.port!r} did not open: {exc}") from None
        self.name, self._midi = ports[index], midi
        self.port = _ALSA_NUMBERS.sub("", self.name)
        log.info("MIDI input from %s", self.name)
        return self

    def _arrived(self, event: tuple[list[int], float], _data: object = None) -> None:
        message = parse_message(event[0], time.monotonic())
        if message is not None:
            self.on_message(message)

    def close(self) -> None:
        """Close the port (no more messages after this returns), then call ``on_close``."""
        with self._closing:
            midi, self._midi = self._midi, None
            if midi is None:
                return
            midi.cancel_callback()
            midi.close_port()
            midi.delete()
        if self.on_close is not None:
            self.on_close()

    def switch(self, port: str | int) -> MidiInput:
        """Play from ``port`` instead: the one open is closed first (``on_close``). A
        ``port`` that is not there is refused (``MidiInputError``) before anything
        closes, so a typo leaves the keyboard playing."""
        ports = list_ports(self.api)
        if find_port(ports, port) is None:
            raise MidiInputError(f"no MIDI input port {port!r}; there are: "
                                 f"{', '.join(map(repr, ports)) or 'none'}")
        self.close()
        self.port = port
        return self.open()

    def check(self) -> bool:
        """Close the port if it went away (a keyboard unplugged); whether it is open."""
        with self._closing:
            midi = self._midi
            gone = midi is not None and self.name not in midi.get_ports()
        if gone:
            log.warning("MIDI input %s went away: its notes are let go", self.name)
            self.close()
        return self.is_open

    def __enter__(self) -> MidiInput:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()


async def watch(port: MidiInput, every: float = 0.5) -> None:
    """Check ``port`` every ``every`` seconds until cancelled: closed when it went away
    (``on_close`` lets its notes go), opened again when it is back.

    The checks run on the loop (a port listing takes well under a millisecond), so a
    cancel leaves no check or open half done behind a later :meth:`MidiInput.close`.
    While the port is away one listing client is kept to look for it (making one takes
    about 20 ms, which would stall the player's thread each time), and it is opened only
    once it is listed. A failure is logged and the watch goes on.
    """
    rtmidi, lister = None, None
    try:
        while True:
            await asyncio.sleep(every)
            try:
                if port.check():
                    continue
                if lister is None:
                    rtmidi = _rtmidi()
                    lister = rtmidi.MidiIn(_api(rtmidi, port.api), "dawclient watch")
                if find_port(list(lister.get_ports()), port.port) is not None:
                    port.open()
            except Exception:  # noqa: BLE001 - a watch that died would never reopen it
                log.exception("watching the MIDI input %s", port.name or port.port)
    finally:
        if lister is not None:
            lister.delete()


def find_port(ports: list[str], port: str | int) -> int | None:
    """Which of ``ports`` ``port`` names: an index, or the first holding it in its name."""
    if isinstance(port, int) or str(port).isdigit():
        index = int(port)
        return index if 0 <= index < len(ports) else None
    matches = [i for i, name in enumerate(ports) if str(port) in name]
    return matches[0] if matches else None
