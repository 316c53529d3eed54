"""The shared Opus encoder: one packet per 20 ms frame, decodable, close to the input."""

from __future__ import annotations

import av
import numpy as np

from dawserver.opus import FRAME, RATE, OpusEncoder, packet


def test_each_frame_gives_one_packet_that_decodes_close_to_the_input() -> None:
    t = np.arange(50 * FRAME) / RATE
    music = 0.3 * np.sin(2 * np.pi * 440 * t) * (0.7 + 0.3 * np.sin(2 * np.pi * 2 * t))
    pcm = (np.stack([music, music], axis=1) * 32767).astype(np.int16)
    encoder = OpusEncoder()
    decoder = av.CodecContext.create("libopus", "r")
    decoded = []
    for i in range(50):
        data = encoder.encode(pcm[i * FRAME:(i + 1) * FRAME], i)
        assert data is not None and 50 < len(data) < 1500
        sent = packet(data, i)
        assert sent.pts == i * FRAME
        for frame in decoder.decode(sent):
            decoded.append(frame.to_ndarray().reshape(-1, frame.layout.nb_channels)[:, 0]
                           if frame.format.is_packed else frame.to_ndarray()[0])
    out = np.concatenate(decoded).astype(np.float32)
    out = out / 32768.0 if np.abs(out).max() > 2 else out
    ref = pcm[:, 0].astype(np.float32) / 32767
    # the codec delays the signal by its look-ahead (312 samples): find it, then compare
    best = max(np.corrcoef(out[4800 + d:28800 + d], ref[4800:28800])[0, 1] for d in range(400))
    assert best > 0.999, best
