"""Audio files in and out: reading, resampling, a source cache and export.

Everything is planar float32 ``(channels, frames)``, the layout the engine
renders.  Reading and writing go through libsndfile (``soundfile``) and
sample-rate conversion through libsoxr (``soxr``).

Resampling uses soxr's ``VHQ`` quality (28-bit precision, stop-band
attenuation around 175 dB): it keeps 24-bit sources intact, which ``HQ``
(20-bit, about 120 dB) would not, and on this machine it costs only about
10 % more time than ``HQ``.  Sources are resampled once and then cached.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path
from types import TracebackType

import numpy as np
import soundfile as sf
import soxr

from .arrays import checked_float32
from .errors import AudioFileError
from .session import SUPPORTED_RATES

log = logging.getLogger(__name__)


class AudioTooLong(AudioFileError):
    """A file decodes to more than :data:`MAX_DECODED_BYTES` (or the reader's limit)."""


MIN_RATE, MAX_RATE = 8000, 192000
#: The most channels a clip or sampler source may have (mono or stereo).
MAX_CHANNELS = 2
#: The most channels a convolution impulse response may have (true stereo: LL, LR, RL, RR).
MAX_IR_CHANNELS = 4
EXPORT_RATES = tuple(rate for rate in SUPPORTED_RATES if rate >= 44100)
BIT_DEPTHS = {"32f": "FLOAT", "24": "PCM_24", "16": "PCM_16"}
SAMPLE_BYTES = {"32f": 4, "24": 3, "16": 2}
#: The most audio bytes a RIFF WAV's 32-bit sizes count (less its header and chunks).
RIFF_MAX_DATA_BYTES = (1 << 32) - 1 - (1 << 16)
FORMATS = {".wav": "WAV", ".flac": "FLAC", ".aif": "AIFF", ".aiff": "AIFF"}
RESAMPLE_QUALITY = "VHQ"
READ_BLOCK = 1 << 16
#: The frames a read makes room for before any is decoded (about 87 s at 48 kHz); the
#: array then doubles as the file proves it holds more.
FIRST_FRAMES = 1 << 22
DEFAULT_CACHE_BYTES = int(os.environ.get("DAW_SOURCE_CACHE_MB", "1024")) << 20
#: The most bytes one read decodes into (float32: frames x channels x 4), 3 GiB by
#: default (``DAW_MAX_DECODED_MB``): 2 h 20 min of stereo at 48 kHz, 70 min at 96 kHz.
MAX_DECODED_BYTES = int(os.environ.get("DAW_MAX_DECODED_MB", "3072")) << 20
#: The frame count libsndfile gives a stream whose header holds none (a FLAC's 0).
UNKNOWN_FRAMES = (1 << 63) - 1

_TRUNCATED = re.compile(r"^\s*(?:data|SSND)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
_PLACEHOLDER_SIZES = {0, 0xFFFFFFFF, 0x7FFFFFFF}


def read_audio(path: str | os.PathLike[str], max_channels: int = MAX_CHANNELS,
               max_bytes: int | None = None) -> tuple[np.ndarray, int]:
    """Read a WAV, FLAC or AIFF file as planar float32.

    Parameters
    ----------
    path
        The file to read (16/24/32-bit integer or 32-bit float samples).
    max_channels
        The most channels accepted: :data:`MAX_CHANNELS` for clips,
        :data:`MAX_IR_CHANNELS` for impulse responses and uploads.
    max_bytes
        The most float32 bytes decoded (None: :data:`MAX_DECODED_BYTES`).

    Returns
    -------
    data, sample_rate
        A C-contiguous float32 array of shape ``(channels, frames)`` and the
        file's sample rate in Hz.

    Raises
    ------
    AudioFileError
        The file is missing, unreadable, corrupt or truncated, has a sample
        rate outside 8–192 kHz, no frames, more than ``max_channels``
        channels, or holds NaN/Inf samples; :class:`AudioTooLong` when it
        decodes (or its header says it decodes) to more than ``max_bytes``.
    """
    name = os.fspath(path)
    if not os.path.isfile(name):
        raise AudioFileError(f"{name}: no such audio file")
    try:
        with sf.SoundFile(name) as f:
            _check_header(name, f, max_channels)
            limit = MAX_DECODED_BYTES if max_bytes is None else max_bytes
            data, rate = _read_planar(name, f, limit), f.samplerate
    except sf.LibsndfileError as exc:
        raise AudioFileError(f"{name}: not a readable WAV/FLAC/AIFF file ({exc})") from exc
    except OSError as exc:
        raise AudioFileError(f"{name}: cannot read the file ({exc})") from exc
    except MemoryError:
        raise AudioFileError(f"{name}: too long to decode into this server's memory; "
                             "split it into shorter files") from None
    return data, rate


def audio_info(path: str | os.PathLike[str],
               max_channels: int = MAX_CHANNELS) -> tuple[int, int, int]:
    """Return ``(channels, frames, sample_rate)`` of a source from its header only.

    Applies the header checks of :func:`read_audio` (rate, channels,
    truncation, empty file) without decoding the samples.
    """
    name = os.fspath(path)
    if not os.path.isfile(name):
        raise AudioFileError(f"{name}: no such audio file")
    try:
        with sf.SoundFile(name) as f:
            _check_header(name, f, max_channels)
            return f.channels, f.frames, f.samplerate
    except sf.LibsndfileError as exc:
        raise AudioFileError(f"{name}: not a readable WAV/FLAC/AIFF file ({exc})") from exc
    except OSError as exc:
        raise AudioFileError(f"{name}: cannot read the file ({exc})") from exc


def check_channels(name: str, channels: int, max_channels: int = MAX_CHANNELS) -> None:
    """Raise :class:`AudioFileError` when a source has more than ``max_channels`` channels."""
    if channels <= max_channels:
        return
    if max_channels <= MAX_CHANNELS:
        raise AudioFileError(
            f"{name}: has {channels} channels; only mono and stereo sources are supported "
            "for clips (split or downmix it to stereo first; a 4-channel file can serve "
            "as a convolution impulse response)"
        )
    raise AudioFileError(
        f"{name}: has {channels} channels; at most {max_channels} are supported here"
    )


def _check_header(name: str, f: sf.SoundFile, max_channels: int) -> None:
    if not MIN_RATE <= f.samplerate <= MAX_RATE:
        raise AudioFileError(
            f"{name}: sample rate {f.samplerate} Hz is not supported; "
            f"sources must be {MIN_RATE}-{MAX_RATE} Hz"
        )
    check_channels(name, f.channels, max_channels)
    for declared, present in _TRUNCATED.findall(f.extra_info):
        declared, present = int(declared), int(present)
        if present < declared and declared not in _PLACEHOLDER_SIZES:
            raise AudioFileError(
                f"{name}: file is truncated: the header declares {declared} bytes of audio "
                f"but only {present} are present"
            )
    if f.frames <= 0:
        raise AudioFileError(f"{name}: the file holds no audio frames")


def _read_planar(name: str, f: sf.SoundFile, max_bytes: int = MAX_DECODED_BYTES
                 ) -> np.ndarray:
    """Read block by block into a planar array, checking every sample is finite.

    The array grows with what is decoded (doubling, never past the header's count):
    a header may claim far more frames than the file holds (a FLAC's STREAMINFO saying
    2^36 samples in a few kilobytes), and memory is not taken on its word.  Past
    ``max_bytes`` of float32 (by the header's count, or while decoding a file whose
    header gives none) :class:`AudioTooLong` is raised."""
    max_frames = max_bytes // (4 * f.channels)
    if f.frames != UNKNOWN_FRAMES and f.frames > max_frames:  # before decoding any
        raise _too_long(name, f, max_bytes, f"its header declares {f.frames} frames")
    data = np.empty((f.channels, min(f.frames, FIRST_FRAMES, max_frames)), dtype=np.float32)
    done, bad, first_bad = 0, 0, -1
    while done < f.frames:
        block = f.read(min(READ_BLOCK, f.frames - done), dtype="float32", always_2d=True)
        if len(block) == 0:
            break
        if done + len(block) > max_frames:
            raise _too_long(name, f, max_bytes, f"decodes to more than {max_frames} frames")
        finite = np.isfinite(block).all(axis=1)
        if not finite.all():
            if first_bad < 0:
                first_bad = done + int(np.argmin(finite))
            bad += int(np.count_nonzero(~np.isfinite(block)))
        if done + len(block) > data.shape[1]:
            grown = np.empty((f.channels, min(f.frames, max_frames,
                                              max(2 * data.shape[1], done + len(block)))),
                             dtype=np.float32)
            grown[:, :done] = data[:, :done]
            data = grown
        data[:, done : done + len(block)] = block.T
        done += len(block)
    if done < f.frames:
        raise AudioFileError(
            f"{name}: file is truncated: the header promises {f.frames} frames, "
            f"only {done} could be read"
        )
    if bad:
        raise AudioFileError(
            f"{name}: holds {bad} NaN/Inf samples (first at frame {first_bad}); "
            "re-export the file from its source"
        )
    return data


def _too_long(name: str, f: sf.SoundFile, max_bytes: int, what: str) -> AudioTooLong:
    hours = max_bytes / (4 * f.channels * f.samplerate * 3600)
    return AudioTooLong(
        f"{name}: {what}; the server decodes at most {max_bytes >> 20} MiB of audio "
        f"({hours:.2f} h of {f.channels}-channel audio at {f.samplerate} Hz); split it "
        "into shorter files")


def resampled_length(frames: int, from_rate: int, to_rate: int) -> int:
    """Number of frames :func:`resample` returns for ``frames`` input frames."""
    if from_rate == to_rate:
        return frames
    return int(frames * to_rate / from_rate + 0.5)


def resample(data: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Resample planar float32 ``data`` of shape ``(channels, frames)`` with soxr.

    Returns ``data`` itself when the rates are equal, otherwise a new
    C-contiguous float32 array of ``resampled_length(frames, ...)`` frames.
    """
    data = checked_float32(data, "data", (None, None))
    for rate in (from_rate, to_rate):
        if not (isinstance(rate, int | np.integer) and rate > 0):
            raise AudioFileError(f"sample rates must be positive integers, got {rate!r}")
    if from_rate == to_rate:
        return data
    channels, frames = data.shape
    if frames == 0:
        return np.zeros((channels, 0), dtype=np.float32)
    if channels == 1:
        out = soxr.resample(data[0], from_rate, to_rate, quality=RESAMPLE_QUALITY)[np.newaxis]
    else:
        out = soxr.resample(np.ascontiguousarray(data.T), from_rate, to_rate,
                            quality=RESAMPLE_QUALITY).T
    # soxr rounds a length ending in .5 either way; clips are sized by resampled_length,
    # so the result is held to it (a frame cut off or a silent one added at the end)
    length = resampled_length(frames, from_rate, to_rate)
    if out.shape[1] > length:
        out = out[:, :length]
    elif out.shape[1] < length:
        out = np.pad(out, ((0, 0), (0, length - out.shape[1])))
    return np.ascontiguousarray(out, dtype=np.float32)


class SourceCache:
    """A thread-safe LRU cache of decoded, resampled sources bounded by total bytes.

    Keys are ``(resolved path, mtime_ns, size, rate)``, so an edited file is
    read again, and its new reading replaces the old one: only the newest of a path
    at a rate is kept (the asset cache touches a file each time it is used, so without
    that every bounce would leave one more copy of its sources until the byte bound).
    Cached arrays are read-only because callers share them.
    """

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self._items: OrderedDict[tuple[str, int, int, int], np.ndarray] = OrderedDict()
        #: (path, rate) -> the key of its newest reading, the only one kept
        self._newest: dict[tuple[str, int], tuple[str, int, int, int]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def load(self, path: str | os.PathLike[str], sample_rate: int,
             max_channels: int = MAX_CHANNELS) -> np.ndarray:
        """Return the source at ``path`` resampled to ``sample_rate`` (see :func:`load_source`).

        A cached array is shared whatever the limit it was read under, so the channel
        limit is checked again on every hit.
        """
        resolved = Path(path).resolve()
        try:
            stat = resolved.stat()
        except OSError as exc:
            raise AudioFileError(f"{os.fspath(path)}: no such audio file") from exc
        key = (str(resolved), stat.st_mtime_ns, stat.st_size, int(sample_rate))
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                self.hits += 1
                cached = self._items[key]
            else:
                cached = None
                self.misses += 1
        if cached is not None:
            check_channels(os.fspath(path), cached.shape[0], max_channels)
            return cached
        data, rate = read_audio(resolved, max_channels)
        data = resample(data, rate, int(sample_rate))
        data.setflags(write=False)
        self._store(key, data)
        return data

    def _store(self, key: tuple[str, int, int, int], data: np.ndarray) -> None:
        if data.nbytes > self.max_bytes:
            log.info("source %s (%d bytes) is larger than the cache; not cached", key[0],
                     data.nbytes)
            return
        with self._lock:
            if key in self._items:
                return
            stale = self._newest.get((key[0], key[3]))
            if stale is not None and stale in self._items:  # the file changed or was touched
                self.bytes -= self._items.pop(stale).nbytes
            self._newest[(key[0], key[3])] = key
            self._items[key] = data
            self.bytes += data.nbytes
            while self.bytes > self.max_bytes:
                evicted_key, evicted = self._items.popitem(last=False)
                self.bytes -= evicted.nbytes
                if self._newest.get((evicted_key[0], evicted_key[3])) == evicted_key:
                    del self._newest[(evicted_key[0], evicted_key[3])]

    def clear(self) -> None:
        """Forget every cached source."""
        with self._lock:
            self._items.clear()
            self._newest.clear()
            self.bytes = 0


SOURCE_CACHE = SourceCache()


def load_source(path: str | os.PathLike[str], sample_rate: int,
                max_channels: int = MAX_CHANNELS) -> np.ndarray:
    """Read a source file and resample it to ``sample_rate``, through :data:`SOURCE_CACHE`.

    Returns a read-only planar float32 array ``(channels, frames)``; frames
    are at ``sample_rate``.  Raises :class:`AudioFileError` like
    :func:`read_audio` (a clip's source: at most :data:`MAX_CHANNELS`; a
    convolution's impulse response passes ``max_channels=MAX_IR_CHANNELS``).
    """
    return SOURCE_CACHE.load(path, sample_rate, max_channels)


def _format_for(path: Path, bit_depth: str) -> tuple[str, str]:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise AudioFileError(
            f"{path}: unknown export format {path.suffix!r}; use one of {', '.join(FORMATS)}"
        )
    if bit_depth not in BIT_DEPTHS:
        raise AudioFileError(
            f"bit depth {bit_depth!r} is not supported; use one of {', '.join(BIT_DEPTHS)}"
        )
    if fmt == "FLAC" and bit_depth == "32f":
        raise AudioFileError(f"{path}: FLAC cannot hold 32-bit float; use bit depth 24 or 16")
    return fmt, BIT_DEPTHS[bit_depth]


class AudioWriter:
    """Write planar float32 blocks to a WAV/FLAC/AIFF file, block by block.

    Parameters
    ----------
    path
        Target file; the format follows the suffix (``.wav``, ``.flac``,
        ``.aif``/``.aiff``).  Data goes to a temporary file beside it that
        replaces ``path`` only when the writer closes without an exception,
        so a failed export never destroys an existing file.
    sample_rate
        One of :data:`EXPORT_RATES` (44.1–192 kHz).
    channels
        1 or 2.
    bit_depth
        ``"32f"`` (float, written as is: no dither, no clipping), ``"24"`` or
        ``"16"`` (integer PCM: TPDF dither of ±1 LSB, then clipping to full
        scale; :attr:`clipped` counts samples beyond full scale).
    dither
        Add TPDF dither before rounding to integer PCM.
    seed
        Seed of the dither noise, for reproducible files.
    frames
        How many frames will be written, when known: a WAV file whose data would pass
        the 4 GiB a RIFF header can count is written as RF64 (EBU Tech 3306), which
        libsndfile and every DAW read whole; a plain WAV of it would read back short.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        sample_rate: int,
        channels: int = 2,
        bit_depth: str = "32f",
        dither: bool = True,
        seed: int | None = None,
        frames: int | None = None,
    ) -> None:
        self.path = Path(path)
        fmt, subtype = _format_for(self.path, bit_depth)
        if fmt == "WAV" and frames is not None and \
                frames * channels * SAMPLE_BYTES[bit_depth] > RIFF_MAX_DATA_BYTES:
            fmt = "RF64"
        if sample_rate not in EXPORT_RATES:
            raise AudioFileError(
                f"export sample rate {sample_rate} Hz is not supported; "
                f"use one of {', '.join(map(str, EXPORT_RATES))}"
            )
        if channels not in (1, 2):
            raise AudioFileError(f"export channels must be 1 or 2, got {channels}")
        if not self.path.parent.is_dir():
            raise AudioFileError(f"{self.path}: directory {self.path.parent} does not exist")
        self.sample_rate, self.channels, self.bit_depth = sample_rate, channels, bit_depth
        self.dither = dither
        self.frames = 0
        self.clipped = 0
        self._rng = np.random.default_rng(seed)
        fd, temp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".partial",
                                    dir=self.path.parent)
        os.close(fd)
        os.chmod(temp, 0o644)
        self._temp = Path(temp)
        try:
            self._file: sf.SoundFile | None = sf.SoundFile(
                temp, "w", samplerate=sample_rate, channels=channels, subtype=subtype, format=fmt
            )
        except Exception:
            self._temp.unlink(missing_ok=True)
            raise

    def __enter__(self) -> AudioWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def write(self, block: np.ndarray) -> None:
        """Append a planar float32 block of shape ``(channels, frames)``."""
        if self._file is None:
            raise AudioFileError(f"{self.path}: writer is already closed")
        block = checked_float32(block, "block", (self.channels, None))
        finite = np.isfinite(block)
        if not finite.all():
            raise AudioFileError(
                f"{self.path}: block holds {int(np.count_nonzero(~finite))} NaN/Inf samples; "
                "nothing of it was written"
            )
        if self.bit_depth == "32f":
            self._file.write(np.ascontiguousarray(block.T))
        else:
            self._file.write(np.ascontiguousarray(self._quantize(block).T))
        self.frames += block.shape[1]

    def _quantize(self, block: np.ndarray) -> np.ndarray:
        """Scale to integer PCM with optional TPDF dither; int16, or int32 holding 24 bits."""
        bits = 16 if self.bit_depth == "16" else 24
        scale = float(1 << (bits - 1))
        low, high = -scale, scale - 1.0
        scaled = block.astype(np.float64) * scale
        self.clipped += int(np.count_nonzero((scaled > high) | (scaled < low)))
        if self.dither:
            # Frame-major draws keep the noise independent of how the stream is blocked.
            pairs = self._rng.random((scaled.shape[1], scaled.shape[0], 2))
            scaled += (pairs[..., 0] - pairs[..., 1]).T
        quantized = np.clip(np.rint(scaled), low, high)
        if bits == 16:
            return quantized.astype(np.int16)
        return quantized.astype(np.int32) << 8

    def close(self) -> None:
        """Finish the file and move it into place."""
        if self._file is None:
            return
        self._file.close()
        self._file = None
        os.replace(self._temp, self.path)
        if self.clipped:
            log.warning("%s: %d samples clipped at full scale", self.path, self.clipped)

    def abort(self) -> None:
        """Discard what was written; an existing file at ``path`` is left untouched."""
        if self._file is not None:
            self._file.close()
            self._file = None
        self._temp.unlink(missing_ok=True)


def write_audio(
    path: str | os.PathLike[str],
    data: np.ndarray,
    sample_rate: int,
    bit_depth: str = "32f",
    dither: bool = True,
    seed: int | None = None,
) -> int:
    """Write planar float32 ``data`` ``(channels, frames)`` in one go; returns the clipped count.

    Parameters are those of :class:`AudioWriter`.
    """
    data = checked_float32(data, "data", (None, None))
    with AudioWriter(path, sample_rate, data.shape[0], bit_depth, dither, seed,
                     frames=data.shape[1]) as writer:
        writer.write(data)
    return writer.clipped
