"""Writing a file whole or not at all."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def write_atomic(path: Path, data: bytes, scratch: Path | None = None) -> None:
    """Replace ``path`` with ``data`` at once: readers see the old file or the new one,
    never a part.  The bytes go to a temporary file in ``scratch`` (``path``'s folder if
    none; it must be on the same file system), renamed over ``path``; a failed write
    removes it."""
    handle, tmp = tempfile.mkstemp(dir=scratch or path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
