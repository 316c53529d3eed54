"""One Opus encoder per live mix: each 20 ms frame is encoded once for every listener.

aiortc would otherwise run one encoder per listener (per ``RTCRtpSender``); a
track that hands it ready ``av.Packet`` objects skips that, so a listener costs
only RTP and SRTP.  Music settings: the ``audio`` application (aiortc's own
encoder uses ``voip``), 128 kbit/s stereo.
"""

from __future__ import annotations

import fractions

import av
import numpy as np

RATE = 48000
FRAME = 960
TIME_BASE = fractions.Fraction(1, RATE)


class OpusEncoder:
    """Encodes interleaved int16 stereo frames of 960 samples at 48 kHz to Opus packets."""

    def __init__(self, bitrate: int = 128_000, application: str = "audio") -> None:
        self.codec = av.CodecContext.create("libopus", "w")
        self.codec.bit_rate = bitrate
        self.codec.format = "s16"
        self.codec.layout = "stereo"
        self.codec.sample_rate = RATE
        self.codec.time_base = TIME_BASE
        self.codec.options = {"application": application}

    def encode(self, pcm: np.ndarray, index: int) -> bytes | None:
        """The Opus packet of one ``(960, 2)`` int16 frame (None while the encoder primes)."""
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="stereo")
        frame.sample_rate = RATE
        frame.pts = index * FRAME
        frame.time_base = TIME_BASE
        packets = self.codec.encode(frame)
        return bytes(packets[0]) if packets else None


def packet(data: bytes, index: int) -> av.Packet:
    """An ``av.Packet`` aiortc sends as is: RTP time from the mix frame index."""
    result = av.Packet(data)
    result.pts = index * FRAME
    result.time_base = TIME_BASE
    return result
