"""Local playback (and take capture) through sounddevice/PortAudio, on its own thread.

The :class:`Player` thread renders the project block by block with the local
engine at the playhead (:class:`dsp_core.playhead.Playhead`, following the
shared transport) and writes each block to a blocking PortAudio stream, so
the device's clock paces it.  With ``record`` the stream is duplex: the input
block read alongside each output block is appended to the current take while
the transport records.  What the musician played into an input block they
played along to audio written earlier by the stream's input plus output
latency (as PortAudio reports them), so the take is placed that much before
the block it was captured with (its start is dropped where that would be
before the timeline's start).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import soundfile as sf

from dsp_core.errors import DspError
from dsp_core.playhead import Playhead
from dsp_core.session import Session

if TYPE_CHECKING:
    from .live_midi import LiveMidi

log = logging.getLogger(__name__)

MAX_AHEAD = 0.5  # seconds the player may run ahead of the wall clock


@dataclass
class StreamSettings:
    """Which devices and how: PortAudio device ids or names, block size, latency.

    ``save`` names a float32 WAV file that receives a copy of every block played.
    """

    device: int | str | None = None
    input_device: int | str | None = None
    block_size: int = 1024
    latency: str | float = "high"
    record: bool = False
    save: str | None = None


@dataclass
class Take:
    """Audio captured while the transport recorded (mono float32 at the project rate).

    ``skip`` frames at the start were played before the timeline's start and are dropped.
    """

    position: int
    tracks: list[str]
    sample_rate: int
    blocks: list[np.ndarray] = field(default_factory=list)
    skip: int = 0
    loop: tuple[int, int] | None = None  # the transport's loop as it began (session frames)

    @property
    def audio(self) -> np.ndarray:
        """The whole take, mono."""
        audio = np.concatenate(self.blocks) if self.blocks else np.zeros(0, np.float32)
        return audio[self.skip:]


def list_devices() -> str:
    """PortAudio's device list, as sounddevice prints it."""
    import sounddevice as sd

    return str(sd.query_devices()) or "no audio devices found"


def parse_device(text: str | None) -> int | str | None:
    """A device given on the command line: a number is an index, anything else a name."""
    if text is None or text == "":
        return None
    return int(text) if text.strip().isdigit() else text


class Player:
    """Plays the engine's render through PortAudio on a thread (start, stop, join)."""

    def __init__(self, engine, playhead: Playhead, settings: StreamSettings, *,
                 armed: list[str] | None = None, on_take: Callable[[Take], None] | None = None,
                 stop_after: int | None = None,
                 on_finish: Callable[[BaseException | None], None] | None = None,
                 live: LiveMidi | None = None) -> None:
        self.engine = engine
        self.live = live
        self.playhead = playhead
        self.settings = settings
        self.armed = list(armed or [])
        self.on_take = on_take
        self.on_finish = on_finish
        self.stop_after = stop_after
        self.frames_played = 0
        self.blocks_written = 0
        self.underflows = 0
        self.overflows = 0
        self.latency: tuple[float, float] | None = None  # PortAudio's (input, output), seconds
        self.error: BaseException | None = None
        self._take: Take | None = None
        self._clock = time.monotonic()
        self._written = 0.0
        self._copy = None
        self._pending: tuple[Session | None, dict | None, list[str] | None] = (None, None, None)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="player", daemon=True)

    def start(self) -> None:
        """Open the stream and start playing (silence while the transport is stopped)."""
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to finish (the open take is kept)."""
        self._stop.set()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the thread."""
        self._thread.join(timeout)

    def update(self, session: Session | None = None, transport: dict | None = None,
               armed: list[str] | None = None) -> None:
        """Hand a newer session / transport / armed-track list to the thread."""
        with self._lock:
            old_session, old_transport, old_armed = self._pending
            self._pending = (session or old_session, transport or old_transport,
                             old_armed if armed is None else armed)

    def _open_stream(self):
        import sounddevice as sd

        s = self.settings
        rate = self.playhead.render_rate
        if s.record:
            return sd.Stream(samplerate=rate, blocksize=s.block_size,
                             device=(s.input_device, s.device), channels=(1, 2),
                             dtype="float32", latency=s.latency)
        return sd.OutputStream(samplerate=rate, blocksize=s.block_size, device=s.device,
                               channels=2, dtype="float32", latency=s.latency)

    def _open_copy(self):
        if self.settings.save is None:
            return contextlib.nullcontext(None)
        return sf.SoundFile(self.settings.save, "w", samplerate=self.playhead.render_rate,
                            channels=2, subtype="FLOAT", format="WAV")

    def _run(self) -> None:
        try:
            with self._open_stream() as stream, self._open_copy() as copy:
                log.info("playing on %s (latency %s s)", stream.device, stream.latency)
                if self.settings.record:
                    self.latency = tuple(float(x) for x in stream.latency)
                self._copy = copy
                self._clock, self._written = time.monotonic(), 0.0
                while not self._stop.is_set():
                    if not self._step(stream):
                        break
            if self._take is not None:
                self._finish_take()
        except BaseException as exc:  # reported to the caller, who turns it into one line
            self.error = exc
        finally:
            if self.on_finish is not None:
                self.on_finish(self.error)

    def _step(self, stream) -> bool:
        with self._lock:
            session, transport, armed = self._pending
            self._pending = (None, None, None)
        if session is not None:
            try:
                self.engine.apply(session)
            except DspError as exc:
                log.warning("keeping the previous mix: %s", exc)
        if transport is not None:
            self.playhead.follow(transport)
        if armed is not None:
            self.armed = armed
        block = self.settings.block_size
        recording = self.playhead.playing and self.playhead.recording and bool(self.armed)
        spans = self.playhead.advance(block)
        out = np.zeros((2, block), dtype=np.float32)
        for offset, start, count in spans:
            out[:, offset:offset + count] = self.engine.render(start, count)
        if self.live is not None:  # a keyboard plays along, playing or stopped
            heard_at = self._clock + self._written + self._output_latency(stream)
            self.live.block(out, spans[0][1] if spans else None, heard_at)
        if self.settings.record:
            captured, overflowed = stream.read(block)
            self.overflows += int(overflowed)
            if recording and self._take is None and spans:
                self._take = self._new_take(spans[0][1])
            if self._take is not None and recording:
                self._take.blocks.append(captured[:, 0].copy())
            elif self._take is not None:
                self._finish_take()
        interleaved = np.ascontiguousarray(out.T)
        self.underflows += int(stream.write(interleaved))
        if self._copy is not None:
            self._copy.write(interleaved)
        self.blocks_written += 1
        if spans:
            self.frames_played += block
        self._pace(block)
        return self.stop_after is None or self.frames_played < self.stop_after

    def _pace(self, block: int) -> None:
        """Never run more than ``MAX_AHEAD`` s ahead of the wall clock.

        A real device's blocking write already paces the thread (its buffer is far
        smaller); an unclocked one (ALSA ``null``/``file``) would otherwise be fed as
        fast as the engine renders.
        """
        now = time.monotonic()
        self._written += block / self.playhead.render_rate
        ahead = self._clock + self._written - now
        if ahead > MAX_AHEAD:
            self._stop.wait(ahead - MAX_AHEAD)
        elif ahead < -MAX_AHEAD:  # the device (or this machine) fell behind: start afresh
            self._clock, self._written = now, 0.0

    @staticmethod
    def _output_latency(stream) -> float:  # noqa: ANN001 - a sounddevice stream
        latency = getattr(stream, "latency", 0.0)
        return float(latency[1] if isinstance(latency, tuple) else latency or 0.0)

    @property
    def take_latency(self) -> int:
        """Render-rate frames a take is placed before the block it was captured with."""
        if self.latency is None:
            return 0
        return int(round(sum(self.latency) * self.playhead.render_rate))

    def _new_take(self, timeline: int) -> Take:
        """A take captured with the block rendered at ``timeline``, placed where it was heard."""
        heard = timeline - self.take_latency
        head = self.playhead
        loop = None if head.loop is None else (head.to_session(head.loop[0]),
                                               head.to_session(head.loop[1]))
        return Take(head.to_session(max(0, heard)), list(self.armed), head.session_rate,
                    skip=max(0, -heard), loop=loop)

    def _finish_take(self) -> None:
        take, self._take = self._take, None
        if take is not None and take.blocks and self.on_take is not None:
            self.on_take(take)
