"""A recording take's two files in an asset store's ``tmp/``: their names.

Apart from :mod:`.take_journal` so that what only needs the names (the leftover sweep,
which every store runs as it opens) does not load the document model with it.
"""

from __future__ import annotations

from pathlib import Path

#: The journal's file name ends so; the audio's in ``.take.wav``.
JOURNAL_SUFFIX = ".take.json"
AUDIO_SUFFIX = ".take.wav"


def journal_path(audio: Path) -> Path:
    """The journal beside the take audio ``audio`` (``x.take.wav`` → ``x.take.json``)."""
    return audio.with_name(audio.name.removesuffix(AUDIO_SUFFIX) + JOURNAL_SUFFIX)


def audio_path(journal: Path) -> Path:
    """The take audio that the journal ``journal`` describes."""
    return journal.with_name(journal.name.removesuffix(JOURNAL_SUFFIX) + AUDIO_SUFFIX)
