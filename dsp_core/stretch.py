"""Time-stretch and pitch-shift of a clip's source with Rubber Band.

One module renders every stretch: clips (``stretch``, ``semitones``, warp markers,
``follow_tempo``) and the sample library's previews (``samples/preview.py``). Rubber
Band runs as the ``rubberband`` command (Debian ``rubberband-cli``, R3 engine),
in one pass: a time map (pairs of source frame -> output frame) and a pitch shift.

A rendered source is a derived asset: :meth:`StretchSpec.key` names it by the source's
asset id (or path), the render rate and the spec, so it is rendered once and reused
(:class:`StretchCache` in memory here; the server keeps them beside its assets).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .errors import DspError

#: Stretch factors beyond these are refused (Rubber Band's quality falls off).
MIN_STRETCH, MAX_STRETCH = 0.25, 4.0
MAX_SEMITONES = 24.0

WarpMarker = tuple[int, int]


class StretchError(DspError):
    """A stretch cannot be rendered (bad factor, bad warp markers, no Rubber Band)."""


def rubberband_available() -> bool:
    """Whether the ``rubberband`` command is installed."""
    return shutil.which("rubberband") is not None


@dataclass(frozen=True)
class StretchSpec:
    """How a source is rendered: ``stretch`` (output length / source length, used when
    there are no warp markers), ``semitones`` of pitch shift, and ``warp`` markers
    ``(source frame, output frame)`` in the render rate's frames, increasing."""

    stretch: float = 1.0
    semitones: float = 0.0
    warp: tuple[WarpMarker, ...] = ()

    @property
    def is_identity(self) -> bool:
        """Whether the source plays as it is."""
        return self.semitones == 0 and not self.warp and self.stretch == 1.0

    def validate(self, where: str = "clip") -> None:
        """Raise :class:`StretchError` naming ``where`` for a factor or marker out of range."""
        if not MIN_STRETCH <= self.stretch <= MAX_STRETCH:
            raise StretchError(f"{where}: stretch must be in [{MIN_STRETCH:g}, "
                               f"{MAX_STRETCH:g}], got {self.stretch!r}")
        if not -MAX_SEMITONES <= self.semitones <= MAX_SEMITONES:
            raise StretchError(f"{where}: semitones must be in [-{MAX_SEMITONES:g}, "
                               f"{MAX_SEMITONES:g}], got {self.semitones!r}")
        check_warp(self.warp, where)

    def key(self, source: str, sample_rate: int) -> str:
        """The derived asset's name: SHA-256 of (source, rate, ratio, semitones, warp)."""
        text = json.dumps([source, sample_rate, self.stretch, self.semitones,
                           [list(m) for m in self.warp]])
        return hashlib.sha256(text.encode()).hexdigest()

    def time_map(self, frames: int) -> list[WarpMarker]:
        """The full time map for a source of ``frames`` frames, ending at its last frame:
        the warp markers (the last segment's slope carried on to the end), or the
        straight line of ``stretch``."""
        if not self.warp:
            return [(0, 0), (frames, round(frames * self.stretch))]
        points = [(x, y) for x, y in self.warp if x <= frames]
        if not points or points[0][0] > 0:
            first = points[0] if points else (0, 0)
            points.insert(0, (0, max(0, first[1] - first[0])) if points else (0, 0))
        if len(points) >= 2:
            (x0, y0), (x1, y1) = points[-2], points[-1]
            slope = (y1 - y0) / (x1 - x0)
        else:
            slope = 1.0
        x, y = points[-1]
        if x < frames:
            points.append((frames, y + max(1, round((frames - x) * slope))))
        return points

    def rendered_frames(self, frames: int) -> int:
        """How long the render of a source of ``frames`` frames is (its time map's end)."""
        if self.is_identity or frames == 0:
            return frames
        return self.time_map(frames)[-1][1]

    def map_frame(self, frame: float, frames: int) -> int:
        """Where source ``frame`` lands in the rendered audio (a source of ``frames``)."""
        points = self.time_map(frames)
        for (x0, y0), (x1, y1) in zip(points, points[1:], strict=False):
            if frame <= x1:
                return round(y0 + (frame - x0) * (y1 - y0) / (x1 - x0))
        return points[-1][1]


def check_warp(warp: Sequence[WarpMarker], where: str = "clip") -> None:
    """Warp markers must increase strictly in both frames (no fold-back, no freeze)."""
    for i, (x, y) in enumerate(warp):
        if x < 0 or y < 0:
            raise StretchError(f"{where}: warp[{i}] must have frames >= 0, got {[x, y]}")
        if i:
            px, py = warp[i - 1]
            if x <= px or y <= py:
                raise StretchError(f"{where}: warp[{i}] {[x, y]} must come after warp[{i - 1}] "
                                   f"{[px, py]} in both source and timeline frames")
            ratio = (y - py) / (x - px)
            if not MIN_STRETCH <= ratio <= MAX_STRETCH:
                raise StretchError(f"{where}: warp[{i - 1}]..warp[{i}] stretches by "
                                   f"{ratio:.3g}; keep each segment within "
                                   f"[{MIN_STRETCH:g}, {MAX_STRETCH:g}]")


def render_stretch(audio: np.ndarray, sample_rate: int, spec: StretchSpec) -> np.ndarray:
    """Planar float32 ``audio`` (channels, frames) stretched and shifted by ``spec``.

    Blocking (it runs the ``rubberband`` command): call it off the event loop.
    """
    if spec.is_identity:
        return audio
    spec.validate()
    if not rubberband_available():
        raise StretchError("time-stretch needs Rubber Band: install the rubberband-cli "
                           "package (apt-get install rubberband-cli)")
    frames = audio.shape[1]
    if frames == 0:
        return audio
    time_map = spec.time_map(frames)
    out = _run_rubberband(audio, sample_rate, time_map, spec.semitones)
    want = spec.rendered_frames(frames)
    if out.shape[1] < want:  # Rubber Band may end a few frames short
        out = np.pad(out, ((0, 0), (0, want - out.shape[1])))
    return np.ascontiguousarray(out[:, :want])


def _run_rubberband(audio: np.ndarray, sample_rate: int, time_map: list[WarpMarker],
                    semitones: float) -> np.ndarray:
    """One pass of the ``rubberband`` command (R3 engine) over ``audio``: the time map
    and the pitch shift; returns planar float32."""
    import soundfile

    with tempfile.TemporaryDirectory(prefix="stretch-") as folder:
        source, target, mapping = (os.path.join(folder, n) for n in ("in.wav", "out.wav",
                                                                    "map.txt"))
        soundfile.write(source, audio.T, sample_rate, subtype="FLOAT")
        command = ["rubberband", "--quiet", "--time", repr(time_map[-1][1] / time_map[-1][0]),
                   "--pitch", repr(float(semitones))]
        if len(time_map) > 2:
            # a time map runs on R2: R3 (Rubber Band 3.1) answers a map with NaN ratios
            with open(mapping, "w", encoding="ascii") as f:
                f.writelines(f"{x} {y}\n" for x, y in time_map)
            command += ["--crisp", "6", "--timemap", mapping]
        else:
            # R3 ("fine"): R2 misplaces low partials by over 1 % (300 Hz came out at 296.5)
            command.append("--fine")
        command += [source, target]
        run = subprocess.run(command, capture_output=True, text=True, check=False)
        if run.returncode != 0:
            raise StretchError(f"rubberband failed ({run.returncode}): "
                               f"{run.stderr.strip()[-300:]}")
        out, _ = soundfile.read(target, dtype="float32", always_2d=True)
    return np.ascontiguousarray(out.T)


class StretchCache:
    """Rendered sources by :meth:`StretchSpec.key`, least recently used dropped first
    once they hold more than ``max_bytes``."""

    def __init__(self, max_bytes: int = 512 * 2**20) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, np.ndarray] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        #: Renders a live mix plays (key -> audio, holders): never dropped while held.
        self._pins: dict[str, tuple[np.ndarray, int]] = {}

    def get(self, key: str) -> np.ndarray | None:
        """The rendered audio under ``key``, or None."""
        with self._lock:
            audio = self._items.get(key)
            if audio is not None:
                self._items.move_to_end(key)
                return audio
            pinned = self._pins.get(key)
            return None if pinned is None else pinned[0]

    def pin(self, key: str, audio: np.ndarray) -> None:
        """Hold ``audio`` under ``key`` until as many :meth:`unpin` calls (a live mix's
        engine must never find its render evicted and render it in the audio thread)."""
        with self._lock:
            held, count = self._pins.get(key, (audio, 0))
            self._pins[key] = (held, count + 1)

    def unpin(self, key: str) -> None:
        """Release one :meth:`pin` of ``key``."""
        with self._lock:
            held = self._pins.get(key)
            if held is None:
                return
            if held[1] <= 1:
                del self._pins[key]
            else:
                self._pins[key] = (held[0], held[1] - 1)

    def put(self, key: str, audio: np.ndarray) -> None:
        """Keep ``audio`` under ``key``."""
        with self._lock:
            if key in self._items:
                return
            self._items[key] = audio
            self._bytes += audio.nbytes
            while self._bytes > self.max_bytes and len(self._items) > 1:
                _, old = self._items.popitem(last=False)
                self._bytes -= old.nbytes

    def rendered(self, key: str, audio: np.ndarray, sample_rate: int,
                 spec: StretchSpec) -> np.ndarray:
        """The cached render under ``key``, rendering ``audio`` on a miss."""
        hit = self.get(key)
        if hit is None:
            hit = render_stretch(audio, sample_rate, spec)
            self.put(key, hit)
        return hit


#: The process's cache of rendered sources (renders and bounces share it).
CACHE = StretchCache()
