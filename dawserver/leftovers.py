"""Sweeping what a crash leaves in an asset store's ``tmp/`` folder.

Uploads, atomic rewrites, collections and pending-mark rewrites each write a temporary
file or folder in ``tmp/`` and remove it when they finish, fail or are cancelled; a
process killed meanwhile leaves it for good. :func:`sweep_leftovers` removes those
untouched for :data:`LEFTOVER_AGE_S` (a day: longer than any upload or rewrite runs,
so another process's work in progress is never taken) when a store opens. A recording
take (``*.take.wav``, with its ``*.take.json`` journal) is kept: it is the audio a
musician played, cut short, which :mod:`dawserver.take_recovery` places.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

from .take_files import AUDIO_SUFFIX, JOURNAL_SUFFIX

log = logging.getLogger(__name__)

#: Seconds a temporary file or folder stays untouched before it is a crash's leftover.
LEFTOVER_AGE_S = 86_400.0
#: Names kept whatever their age.
KEPT_SUFFIXES = (AUDIO_SUFFIX, JOURNAL_SUFFIX)


def sweep_leftovers(folder: Path, *, now: float | None = None,
                    age_s: float = LEFTOVER_AGE_S) -> int:
    """Remove the files and folders in ``folder`` untouched for ``age_s`` (recording
    takes kept); how many went."""
    now = time.time() if now is None else now
    removed = 0
    try:
        entries = list(folder.iterdir())
    except FileNotFoundError:
        return 0
    for entry in entries:
        if entry.name.endswith(KEPT_SUFFIXES):
            continue
        try:
            if now - entry.lstat().st_mtime < age_s:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        except FileNotFoundError:  # its own process finished it meanwhile
            continue
        except OSError as exc:  # not ours to delete (permissions, busy): the store opens
            log.warning("could not remove the leftover %s: %s", entry, exc)
            continue
        removed += 1
    if removed:
        log.info("removed %d leftovers of interrupted writes from %s", removed, folder)
    return removed
