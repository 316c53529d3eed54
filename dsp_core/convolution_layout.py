"""The convolution reverb's impulse response and memory rows, shared by C and twin.

Copies of ``native/internal.h``'s ``CONV_*`` numbers (tests/test_engine_header.py
holds them to it). Each channel's memory row is a header (input fill, delay-line
head, ring index, number of partitions), the spectra of the impulse response's
partitions (``PARTITION`` frames each, zero-padded to ``2 * PARTITION`` and
transformed here with numpy, re then im, ``PARTITION + 1`` bins each), the spectra
of as many past input windows, the input window, the output partition, work space
and the input ring (pre-delay and the dry path's latency).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .errors import ProjectError

PARTITION = 256
MAX_FFT = 4096
HEADER = 16
MAX_PRE_MS = 500.0
H_FILL, H_HEAD, H_RING, H_PARTS = 0, 1, 2, 3
#: The longest impulse response accepted, in seconds at the render rate.
MAX_IR_SECONDS = 10.0


@dataclass(frozen=True)
class ConvolutionLayout:
    """Offsets (floats) inside one memory row, for ``parts`` partitions at one rate."""

    parts: int
    partition: int
    ir: int
    fdl: int
    inp: int
    out: int
    acc: int
    work: int
    ring: int
    ring_len: int
    pre_max: int
    total: int


def convolution_layout(parts: int, sr: float) -> ConvolutionLayout:
    """The layout ``native/convolution.c`` computes for ``parts`` partitions at ``sr``."""
    p, bins2 = PARTITION, 2 * (PARTITION + 1)
    ir = HEADER
    fdl = ir + parts * bins2
    inp = fdl + parts * bins2
    out = inp + 2 * p
    acc = out + p
    work = acc + bins2
    ring = work + 4 * p
    pre_max = int(MAX_PRE_MS * 1e-3 * sr)
    ring_len = pre_max + p + 2
    return ConvolutionLayout(parts, p, ir, fdl, inp, out, acc, work, ring, ring_len, pre_max,
                             ring + ring_len)


@dataclass(frozen=True)
class ConvolutionIR:
    """An impulse response at the render rate, one row per processed channel."""

    source: str
    samples: np.ndarray  # (channels, frames) float32
    layout: ConvolutionLayout
    spectra: np.ndarray  # (channels, parts, 2, PARTITION + 1) float32

    def new_memory(self) -> np.ndarray:
        """Fresh memory rows: header and IR spectra filled in, everything else zero."""
        rows = np.zeros((self.samples.shape[0], self.layout.total), dtype=np.float32)
        rows[:, H_PARTS] = self.layout.parts
        g = self.layout
        rows[:, g.ir:g.fdl] = self.spectra.reshape(rows.shape[0], -1)
        return rows


def load_ir(source: str, channels: int, sample_rate: int,
            load: Callable[[str, int], np.ndarray] | None) -> ConvolutionIR:
    """Read ``source`` at ``sample_rate`` and prepare it for ``channels`` channels.

    A mono IR serves both channels of a stereo track; a stereo IR on a mono track is
    averaged to mono. Raises :class:`ProjectError` when the IR is empty, has more
    than two channels or is longer than :data:`MAX_IR_SECONDS`.
    """
    if load is None:
        from .audio_io import load_source as load
    audio = np.asarray(load(source, sample_rate), dtype=np.float32)
    if audio.ndim == 1:
        audio = audio[None, :]
    if audio.ndim != 2 or audio.shape[0] not in (1, 2) or audio.shape[1] == 0:
        raise ProjectError(f"convolution ir {source!r}: needs mono or stereo audio with at "
                           f"least one frame, got shape {audio.shape}")
    most = int(MAX_IR_SECONDS * sample_rate)
    if audio.shape[1] > most:
        raise ProjectError(
            f"convolution ir {source!r} is {audio.shape[1] / sample_rate:.2f} s long at "
            f"{sample_rate} Hz; the limit is {MAX_IR_SECONDS:g} s: trim the impulse response")
    if channels == 1 and audio.shape[0] == 2:
        audio = ((audio[0] + audio[1]) * np.float32(0.5))[None, :]
    elif channels == 2 and audio.shape[0] == 1:
        audio = np.repeat(audio, 2, axis=0)
    parts = math.ceil(audio.shape[1] / PARTITION)
    padded = np.zeros((channels, parts, 2 * PARTITION))
    flat = np.zeros((channels, parts * PARTITION))
    flat[:, :audio.shape[1]] = audio
    padded[:, :, :PARTITION] = flat.reshape(channels, parts, PARTITION)
    spectrum = np.fft.rfft(padded, axis=2)
    spectra = np.stack([spectrum.real, spectrum.imag], axis=2).astype(np.float32)
    return ConvolutionIR(source, np.ascontiguousarray(audio),
                         convolution_layout(parts, sample_rate), spectra)
