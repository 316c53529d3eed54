"""A Python WebRTC listener: joins a project's live mix over ``POST /projects/{id}/rtc``.

Used by the tests, the latency benchmark and anyone who wants the live mix
in Python.  It can also send an audio track (a microphone, a test tone) to be
recorded into the project's armed tracks.

>>> async with RtcListener(base_url, project_id, token) as listener:
...     await listener.wait_frames(50)
...     audio = listener.audio()          # (2, frames) float32 at 48 kHz
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import logging
import math
import time
from typing import Any

import aiohttp
import numpy as np
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError
from av import AudioFrame

log = logging.getLogger(__name__)

RATE = 48000
FRAME = 960


class RtcError(Exception):
    """The server refused the connection (the message is the server's)."""


def shrink_jitter_buffer(pc: RTCPeerConnection, capacity: int = 4, prefetch: int = 1) -> None:
    """Make the audio receivers of ``pc`` buffer less (lower latency, less loss tolerance).

    aiortc's default audio jitter buffer holds 16 packets and waits for 4
    before playing out (about 80 ms); on loopback a smaller one is enough.
    """
    from aiortc.jitterbuffer import JitterBuffer

    for receiver in pc.getReceivers():
        if receiver.track is not None and receiver.track.kind == "audio":
            receiver._RTCRtpReceiver__jitter_buffer = JitterBuffer(capacity, prefetch)


class ToneTrack(MediaStreamTrack):
    """A sine tone paced in real time (a stand-in microphone).

    Sent as identical stereo channels: aiortc's encoder would upmix a mono
    frame at -3 dB.
    """

    kind = "audio"

    def __init__(self, frequency: float = 1000.0, level: float = 0.5) -> None:
        super().__init__()
        self.frequency, self.level = frequency, level
        self.sent = 0
        self._start: float | None = None

    async def recv(self) -> AudioFrame:
        """The next 20 ms of tone, released when it is due."""
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        due = self._start + self.sent * FRAME / RATE
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        n = np.arange(self.sent * FRAME, (self.sent + 1) * FRAME)
        tone = self.level * np.sin(2 * math.pi * self.frequency * n / RATE)
        pcm = np.repeat((tone * 32767).astype(np.int16), 2)[None, :]
        frame = AudioFrame.from_ndarray(pcm, format="s16", layout="stereo")
        frame.sample_rate, frame.pts = RATE, self.sent * FRAME
        frame.time_base = fractions.Fraction(1, RATE)
        self.sent += 1
        return frame


class RtcListener:
    """Receive a project's live mix (an async context manager).

    Attributes
    ----------
    frames : list of ndarray
        Received frames, ``(2, n)`` float32 each, in arrival order.
    arrivals : list of float
        ``time.monotonic()`` when each frame arrived.
    pts : list of int
        Each frame's RTP timestamp in 48 kHz ticks (gaps show frames the server skipped).
        Frames of other codecs (PCMU at 8 kHz) are converted to 48 kHz stereo.
    """

    def __init__(self, base_url: str, project_id: str, token: str, *,
                 send: MediaStreamTrack | None = None, track: str | None = None,
                 latency_ms: float = 0.0, low_latency: bool = True,
                 codec: str | None = None, monitor: str | None = None) -> None:
        self.url = f"{base_url.rstrip('/')}/projects/{project_id}/rtc"
        self.token = token
        self.send = send
        self.options: dict[str, Any] = {"latency_ms": latency_ms}
        if track:
            self.options["track"] = track
        if monitor:  # "binaural" or "stereo": the immersive mix (docs/immersive.md)
            self.options["monitor"] = monitor
        self.low_latency = low_latency
        self.codec = codec
        self.skipped: list[str] = []
        self.connection: str | None = None  # the server's id of the open connection
        self.frames: list[np.ndarray] = []
        self.arrivals: list[float] = []
        self.pts: list[int] = []
        self.pc: RTCPeerConnection | None = None
        self._task: asyncio.Task | None = None
        self._got = asyncio.Event()

    async def __aenter__(self) -> RtcListener:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Offer, get the answer, start receiving."""
        self.pc = pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        if self.send is not None:
            pc.addTrack(self.send)
        else:
            pc.addTransceiver("audio", direction="recvonly")
        if self.codec is not None:  # e.g. "audio/PCMU": offer only that codec
            for transceiver in pc.getTransceivers():
                transceiver.setCodecPreferences(
                    [c for c in RTCRtpSender.getCapabilities("audio").codecs
                     if c.mimeType.lower() == self.codec.lower()])

        @pc.on("track")
        def on_track(track) -> None:
            if track.kind == "audio":
                self._task = asyncio.create_task(self._receive(track))

        await pc.setLocalDescription(await pc.createOffer())
        body = {"sdp": pc.localDescription.sdp, "type": pc.localDescription.type,
                **self.options}
        async with aiohttp.ClientSession() as http, http.post(
                self.url, json=body, headers={"Authorization": f"Bearer {self.token}"}
        ) as response:
            answer = await response.json(content_type=None)
            if response.status != 200:
                await pc.close()
                raise RtcError(f"HTTP {response.status}: {answer.get('error', answer)}")
        # what the server's mix leaves out (clips naming audio that is not the project's)
        self.skipped = list(answer.get("skipped", []))
        self.connection = answer.get("connection")
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"],
                                                            type=answer["type"]))
        if self.low_latency:
            shrink_jitter_buffer(pc)

    async def declare_latency(self, latency_ms: float) -> None:
        """Declare this connection's round trip again (every take that ends from now on,
        the one under way included, is placed by it)."""
        if self.connection is None:
            raise RtcError("not connected: start() first")
        async with aiohttp.ClientSession() as http, http.patch(
                f"{self.url}/{self.connection}", json={"latency_ms": latency_ms},
                headers={"Authorization": f"Bearer {self.token}"}) as response:
            if response.status != 200:
                answer = await response.json(content_type=None)
                raise RtcError(f"HTTP {response.status}: {answer.get('error', answer)}")
        self.options["latency_ms"] = latency_ms

    async def _receive(self, track) -> None:
        from av import AudioResampler

        resampler = None
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            pts = int(frame.pts or 0) * RATE // frame.sample_rate
            if frame.sample_rate != RATE or frame.layout.name != "stereo":  # PCMU/PCMA
                resampler = resampler or AudioResampler(format="s16", layout="stereo",
                                                        rate=RATE)
                converted = resampler.resample(frame)
                if not converted:
                    continue
                data = np.concatenate([f.to_ndarray().reshape(-1, 2) for f in converted]).T
            else:
                data = frame.to_ndarray().reshape(-1, 2).T
            self.frames.append(data.astype(np.float32) / 32768.0)
            self.arrivals.append(time.monotonic())
            self.pts.append(pts)
            self._got.set()

    async def wait_frames(self, count: int, timeout: float = 20.0) -> None:
        """Wait until ``count`` frames have arrived in total."""
        deadline = time.monotonic() + timeout
        while len(self.frames) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {len(self.frames)} of {count} frames arrived")
            self._got.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.5):
                    await self._got.wait()

    def audio(self, start_frame: int = 0) -> np.ndarray:
        """Received audio from frame ``start_frame`` on, ``(2, n)`` float32.

        Each frame sits at its RTP time, so frames the server skipped (a late
        listener loses its oldest frames) leave silence instead of shifting the rest.
        """
        chunks, stamps = self.frames[start_frame:], self.pts[start_frame:]
        if not chunks:
            return np.zeros((2, 0), np.float32)
        starts = [(p - stamps[0]) % (1 << 32) for p in stamps]
        total = starts[-1] + chunks[-1].shape[1]
        if total > 4 * sum(c.shape[1] for c in chunks):  # timestamps reset: just concatenate
            return np.concatenate(chunks, axis=1)
        out = np.zeros((2, total), np.float32)
        for start, chunk in zip(starts, chunks, strict=True):
            out[:, start:start + chunk.shape[1]] = chunk
        return out

    async def stop(self) -> None:
        """Close the connection."""
        if self.pc is not None:
            await self.pc.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
