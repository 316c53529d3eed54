"""Cover-art checks: format, colour mode, size, squareness, and signs of upscaling.

An image enlarged from a smaller one is rebuilt almost exactly from a copy at half
its size. :func:`detail_ratio` is the RMS difference (in 8-bit levels) between a
central crop and that half-size round trip: natural photos and sharp graphics at
native resolution measure 3-6, 2x-4x enlargements about 1 or less. Art that is
smooth everywhere (a bare gradient) cannot be told from an enlargement and is
reported too.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from business.distribution.errors import DistributionError

MIN_SIZE = 3000
ACCEPTED_FORMATS = ("JPEG", "PNG")
#: Below this much fine detail (8-bit RMS levels) the art is reported as upscaled.
UPSCALE_RATIO = 1.5
_CROP = 1024


class ArtworkError(DistributionError):
    """An artwork file cannot be read."""


@dataclass
class ArtworkReport:
    """What the gate needs to know about one image."""

    path: str
    format: str
    mode: str
    width: int
    height: int
    detail_ratio: float
    sha256: str  # of the bytes measured

    @property
    def looks_upscaled(self) -> bool:
        """Whether the image lacks the fine detail of a native-resolution image."""
        return self.detail_ratio < UPSCALE_RATIO

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict."""
        return {**asdict(self), "looks_upscaled": self.looks_upscaled}


def detail_ratio(image: Image.Image) -> float:
    """RMS difference (8-bit levels) between a central crop and its 2x down-up copy."""
    gray = image.convert("L")
    size = min(_CROP, gray.width, gray.height) // 2 * 2
    left, top = (gray.width - size) // 2, (gray.height - size) // 2
    crop = gray.crop((left, top, left + size, top + size))
    back = crop.resize((size // 2, size // 2), Image.BOX).resize((size, size), Image.BICUBIC)
    diff = np.asarray(crop, dtype=np.float64) - np.asarray(back, dtype=np.float64)
    return float(np.sqrt(np.mean(diff**2))) if size else 0.0


def analyze_artwork(path: str | Path) -> ArtworkReport:
    """Read ``path`` once and measure it; ArtworkError when it is missing or not an image.

    The report's ``sha256`` is that of the very bytes measured.
    """
    try:
        data = Path(path).read_bytes()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                image.load()
                return ArtworkReport(
                    path=str(path), format=str(image.format), mode=image.mode,
                    width=image.width, height=image.height, detail_ratio=detail_ratio(image),
                    sha256=hashlib.sha256(data).hexdigest(),
                )
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise ArtworkError(f"cannot read artwork {str(path)!r}: {exc}") from exc
