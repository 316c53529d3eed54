"""The convolution reverb's impulse response and memory rows, shared by C and twin.

Copies of ``native/internal.h``'s ``CONV_*`` numbers (tests/test_convolution.py
holds them to it). Each channel's memory row is a header (per stage: input fill,
delay-line head, number of partitions; the ring index; whether the IR is true
stereo), then per stage the spectra of its impulse-response partitions (zero-padded
to twice the partition and transformed here with numpy, re then im), for a true-stereo
IR the spectra of the other input's path to this output (row 0 = left out: LL then
RL; row 1 = right out: RR then LR), the spectra of as many past input windows,
the input window, the output partition and work space, and last the input ring
(pre-delay and the dry path's latency). The head stage has ``PARTITION``-frame
partitions and covers the IR's first ``HEAD_FRAMES``; the tail stage (if the IR is
longer) has ``TAIL_PARTITION``-frame partitions, whose output, one tail partition
late, arrives exactly when the head's would.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .errors import AudioFileError, ProjectError

PARTITION = 256
TAIL_PARTITION = 4096
#: IR frames the 256-frame head stage covers; the tail stage takes the rest.
HEAD_FRAMES = TAIL_PARTITION - PARTITION
MAX_FFT = 8192
HEADER = 16
MAX_PRE_MS = 500.0
H_FILL, H_HEAD, H_RING, H_PARTS = 0, 1, 2, 3
H_TAIL_FILL, H_TAIL_HEAD, H_TAIL_PARTS = 4, 5, 6
#: 1.0 in a true-stereo effect's rows: each output hears both inputs (4-channel IR).
H_CROSS = 7
#: A true-stereo impulse response's channels, input then output: L->L, L->R, R->L, R->R.
TRUE_STEREO_ORDER = ("LL", "LR", "RL", "RR")
#: The longest impulse response accepted, in seconds at the render rate.
MAX_IR_SECONDS = 10.0


@dataclass(frozen=True)
class StageLayout:
    """One stage's offsets (floats) inside a memory row: ``parts`` partitions of
    ``partition`` frames, and the header slots of its fill count and delay-line head."""

    partition: int
    parts: int
    ir: int
    xir: int  # the cross path's IR spectra (true stereo); == fdl when there are none
    fdl: int
    inp: int
    out: int
    acc: int
    work: int
    end: int
    h_fill: int
    h_head: int


def _stage(partition: int, parts: int, off: int, h_fill: int, h_head: int,
           cross: bool) -> StageLayout:
    bins2 = 2 * (partition + 1)
    xir = off + parts * bins2
    fdl = xir + (parts * bins2 if cross else 0)
    inp = fdl + parts * bins2
    out = inp + 2 * partition
    acc = out + partition
    work = acc + bins2
    return StageLayout(partition, parts, off, xir, fdl, inp, out, acc, work,
                       work + 4 * partition, h_fill, h_head)


@dataclass(frozen=True)
class ConvolutionLayout:
    """A memory row: the head stage, the tail stage if any, then the input ring."""

    stages: tuple[StageLayout, ...]
    cross: bool
    ring: int
    ring_len: int
    pre_max: int
    total: int

    @property
    def partition(self) -> int:
        """The head's partition: the effect's latency in frames."""
        return self.stages[0].partition


def convolution_layout(head_parts: int, tail_parts: int, sr: float,
                       cross: bool = False) -> ConvolutionLayout:
    """The layout ``native/convolution.c`` computes for these partition counts at ``sr``
    (``cross``: true stereo, each stage also holds the cross paths' IR spectra)."""
    stages = [_stage(PARTITION, head_parts, HEADER, H_FILL, H_HEAD, cross)]
    if tail_parts > 0:
        stages.append(_stage(TAIL_PARTITION, tail_parts, stages[0].end, H_TAIL_FILL,
                             H_TAIL_HEAD, cross))
    ring = stages[-1].end
    pre_max = int(MAX_PRE_MS * 1e-3 * sr)
    ring_len = pre_max + PARTITION + 2
    return ConvolutionLayout(tuple(stages), cross, ring, ring_len, pre_max, ring + ring_len)


def _spectra(audio: np.ndarray, partition: int) -> tuple[int, np.ndarray]:
    """Partition count and spectra (channels, parts, 2, partition + 1) of ``audio``."""
    channels, frames = audio.shape
    parts = math.ceil(frames / partition)
    flat = np.zeros((channels, parts * partition))
    flat[:, :frames] = audio
    padded = np.zeros((channels, parts, 2 * partition))
    padded[:, :, :partition] = flat.reshape(channels, parts, partition)
    spectrum = np.fft.rfft(padded, axis=2)
    return parts, np.stack([spectrum.real, spectrum.imag], axis=2).astype(np.float32)


@dataclass(frozen=True)
class ConvolutionIR:
    """An impulse response at the render rate, one row per processed channel (four
    for a true-stereo IR, in :data:`TRUE_STEREO_ORDER`, which plays on two rows)."""

    source: str
    samples: np.ndarray  # (channels, frames) float32
    layout: ConvolutionLayout
    spectra: tuple[np.ndarray, ...]  # per stage: (channels, parts, 2, partition + 1)

    @property
    def true_stereo(self) -> bool:
        """Whether each output channel hears both inputs (a 4-channel IR)."""
        return self.layout.cross

    def new_memory(self) -> np.ndarray:
        """Fresh memory rows: header and IR spectra filled in, everything else zero."""
        channels = 2 if self.true_stereo else self.samples.shape[0]
        rows = np.zeros((channels, self.layout.total), dtype=np.float32)
        stages = self.layout.stages
        rows[:, H_PARTS] = stages[0].parts
        rows[:, H_TAIL_PARTS] = stages[1].parts if len(stages) > 1 else 0
        rows[:, H_CROSS] = float(self.true_stereo)
        for stage, spectra in zip(stages, self.spectra, strict=True):
            flat = spectra.reshape(spectra.shape[0], -1)
            if self.true_stereo:  # row 0 (left out): LL, RL; row 1 (right out): RR, LR
                rows[0, stage.ir:stage.fdl] = np.concatenate([flat[0], flat[2]])
                rows[1, stage.ir:stage.fdl] = np.concatenate([flat[3], flat[1]])
            else:
                rows[:, stage.ir:stage.fdl] = flat
        return rows


def _read_ir(load: Callable[..., np.ndarray], source: str, sample_rate: int) -> np.ndarray:
    """Call ``load``, lifting its channel limit to an IR's when it has one."""
    from .audio_io import MAX_IR_CHANNELS

    try:
        takes_limit = "max_channels" in inspect.signature(load).parameters
    except (TypeError, ValueError):  # a builtin or C callable without a signature
        takes_limit = False
    if takes_limit:
        return load(source, sample_rate, max_channels=MAX_IR_CHANNELS)
    return load(source, sample_rate)


def load_ir(source: str, channels: int, sample_rate: int,
            load: Callable[[str, int], np.ndarray] | None) -> ConvolutionIR:
    """Read ``source`` at ``sample_rate`` and prepare it for ``channels`` channels.

    A mono IR serves both channels of a stereo track; a stereo IR on a mono track is
    averaged to mono. A 4-channel IR is true stereo (:data:`TRUE_STEREO_ORDER`: each
    output hears both inputs) on a stereo track, and on a mono track what the two
    outputs of a centred input average to, (LL + LR + RL + RR) / 2. Raises
    :class:`ProjectError` when the IR is empty, has 3 or more than 4 channels or is
    longer than :data:`MAX_IR_SECONDS`, and
    :class:`AudioFileError` when it cannot be read.

    A loader that takes a ``max_channels`` keyword (as
    :func:`~dsp_core.audio_io.load_source` does) is asked for up to
    :data:`~dsp_core.audio_io.MAX_IR_CHANNELS`, so a 4-channel file reaches the
    convolution while a clip's loader call still refuses it.
    """
    if load is None:
        from .audio_io import load_source as load
    try:
        audio = np.asarray(_read_ir(load, source, sample_rate), dtype=np.float32)
    except AudioFileError as exc:
        raise AudioFileError(f"convolution impulse response: {exc}") from None
    if audio.ndim == 1:
        audio = audio[None, :]
    if audio.ndim != 2 or audio.shape[0] not in (1, 2, 4) or audio.shape[1] == 0:
        raise ProjectError(f"convolution ir {source!r}: needs mono, stereo or true-stereo "
                           "(4 channels: LL, LR, RL, RR) audio with at least one frame, "
                           f"got shape {audio.shape}")
    most = int(MAX_IR_SECONDS * sample_rate)
    if audio.shape[1] > most:
        raise ProjectError(
            f"convolution ir {source!r} is {audio.shape[1] / sample_rate:.2f} s long at "
            f"{sample_rate} Hz; the limit is {MAX_IR_SECONDS:g} s: trim the impulse response")
    if channels == 1 and audio.shape[0] == 4:
        audio = ((audio[0] + audio[1] + audio[2] + audio[3]) * np.float32(0.5))[None, :]
    if channels == 1 and audio.shape[0] == 2:
        audio = ((audio[0] + audio[1]) * np.float32(0.5))[None, :]
    elif channels == 2 and audio.shape[0] == 1:
        audio = np.repeat(audio, 2, axis=0)
    head_parts, head = _spectra(audio[:, :HEAD_FRAMES], PARTITION)
    spectra = [head]
    tail_parts = 0
    if audio.shape[1] > HEAD_FRAMES:
        tail_parts, tail = _spectra(audio[:, HEAD_FRAMES:], TAIL_PARTITION)
        spectra.append(tail)
    return ConvolutionIR(source, np.ascontiguousarray(audio),
                         convolution_layout(head_parts, tail_parts, sample_rate,
                                            cross=audio.shape[0] == 4), tuple(spectra))
