"""The one place that checks arrays before they cross into a kernel."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .errors import ArrayError


def checked_float32(
    array: object, name: str, shape: Sequence[int | None] | None = None, writable: bool = False
) -> np.ndarray:
    """Return ``array`` as a C-contiguous float32 ndarray or raise :class:`ArrayError`.

    ``shape`` lists the expected size of each axis; ``None`` accepts any size.
    Non-float32 input is refused rather than silently converted, because a
    silent copy of a large session would hide a 2x memory cost.  ``writable``
    arrays are written in place, so they must already be contiguous.
    """
    if not isinstance(array, np.ndarray):
        raise ArrayError(f"{name} must be a numpy array, got {type(array).__name__}")
    if array.dtype != np.float32:
        raise ArrayError(f"{name} must be float32, got {array.dtype} (use .astype(np.float32))")
    if shape is not None:
        if array.ndim != len(shape):
            raise ArrayError(f"{name} must have {len(shape)} dimensions, got shape {array.shape}")
        for axis, (want, got) in enumerate(zip(shape, array.shape, strict=True)):
            if want is not None and want != got:
                raise ArrayError(
                    f"{name} axis {axis} must have size {want}, got shape {array.shape}"
                )
    if not array.flags.c_contiguous:
        if writable:
            raise ArrayError(f"{name} must be C-contiguous to be written in place")
        array = np.ascontiguousarray(array)
    return array
