"""An uploaded sample's file, put into the account's upload folder whole and checked,
never over another file.

The bytes go to a hidden temporary file beside the target first (``.upload-*.part``,
which no folder index reads) and are decoded there; only a file that reads as audio
takes a name, by a hard link that fails rather than replace an existing file. A name
another file holds already gets the next free ``name (2).wav``; the same bytes under
it are that file. So a corrupt, cut-short or concurrent upload of ``Kick.wav`` never
destroys or changes the ``Kick.wav`` the library already indexed.
"""

from __future__ import annotations

import errno
import filecmp
import os
import tempfile
from pathlib import Path

from dsp_core.audio_io import AudioTooLong, read_audio
from dsp_core.errors import AudioFileError

#: The most ``name (n)`` variants tried before an upload is refused.
MOST_VARIANTS = 1000


class UploadRefused(Exception):
    """The upload is not audio the server reads, or no name is free for it."""


class UploadTooLarge(UploadRefused):
    """The upload decodes to more audio than the server decodes
    (:data:`dsp_core.audio_io.MAX_DECODED_BYTES`)."""


def store_upload(folder: Path, name: str, body: bytes) -> Path:
    """Write ``body`` into ``folder`` as ``name`` (or its next free variant) once it
    decodes as audio; the file's path. :class:`UploadRefused` (saying ``name``, not the
    server's path) otherwise, :class:`UploadTooLarge` past the decoded-audio limit, with
    nothing left behind."""
    handle, temp_name = tempfile.mkstemp(dir=folder, prefix=".upload-", suffix=".part")
    temp = Path(temp_name)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(body)
        try:
            read_audio(temp)
        except AudioTooLong as exc:
            raise UploadTooLarge(str(exc).replace(str(temp), name)) from None
        except AudioFileError as exc:
            raise UploadRefused(str(exc).replace(str(temp), name)) from None
        return _place(temp, folder / name)
    finally:
        temp.unlink(missing_ok=True)


def _place(temp: Path, target: Path) -> Path:
    for n in range(1, MOST_VARIANTS + 1):
        candidate = target if n == 1 else target.with_name(
            f"{target.stem} ({n}){target.suffix}")
        try:
            os.link(temp, candidate)  # never over an existing file
            return candidate
        except FileExistsError:
            if filecmp.cmp(temp, candidate, shallow=False):
                return candidate  # the same bytes: that file
        except OSError as exc:
            if exc.errno != errno.ENAMETOOLONG:
                raise
            raise UploadRefused(f"{target.name[:40]!r}...: the name is too long for a file; "
                                "upload it under a shorter name") from None
    raise UploadRefused(f"{target.name!r} and its first {MOST_VARIANTS} numbered variants "
                        "are taken by other files; upload it under another name")
