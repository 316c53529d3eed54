"""What a recording take needs to be placed, written beside its audio while it records.

A take's audio goes to ``tmp/NAME.take.wav`` as it arrives; where it belongs (project,
armed tracks, the playhead's segments, rates, latency) lives only in the recorder's
memory until the take ends. :class:`TakeJournal` writes that beside the audio, as
``tmp/NAME.take.json`` (atomically: a temporary file renamed over it), when the take
begins, each time the playhead jumps or a latency is declared, and with the asset its
audio became once stored, so a take a crash cut short can be placed as
it would have been (:mod:`dawserver.take_recovery`).

While it records, the recorder holds an exclusive ``flock`` on the audio file
(:class:`TakeLock`); the kernel drops it when the process dies, which is how recovery
tells a take cut short from one still recording in another process on this disk.
"""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from collab.takes import TakeSegment

from .atomic_files import write_atomic
from .take_files import journal_path


@dataclass
class TakeJournal:
    """A take's placement: its project and armed tracks, its segments as heard (offsets
    in frames of its audio, positions in session frames), its audio's and the session's
    rates, the latency the musician declared last, and once its audio is stored, the
    asset (so a take placed before a crash is known again: a float WAV's bytes, hence
    its id, change with the second it was written, libsndfile's PEAK chunk); whether a
    recovery began placing it, and once one placed it, its length in frames (it is
    then only to be announced). Those two are written only once set, so a journal of
    a take that never needed recovery reads as before them."""

    project_id: str
    user: str
    tracks: list[str]
    sample_rate: int
    session_rate: int
    segments: list[TakeSegment] = field(default_factory=list)
    latency_frames: int = 0
    asset_id: str = ""
    recovering: bool = False
    recovered_frames: int = 0

    def write(self, audio: Path) -> None:
        """Write this journal beside ``audio``, replacing the one there at once."""
        path = journal_path(audio)
        data = asdict(self)
        data["segments"] = [[s.offset, s.position, list(s.loop) if s.loop else None]
                            for s in self.segments]
        for name in ("recovering", "recovered_frames"):
            if not data[name]:
                del data[name]
        write_atomic(path, json.dumps(data).encode())

    @classmethod
    def read(cls, path: Path) -> TakeJournal:
        """The journal at ``path`` (``ValueError``, ``KeyError`` or ``TypeError`` if it
        is not one)."""
        data: dict[str, Any] = json.loads(path.read_text())
        segments = [TakeSegment(int(offset), int(position),
                                (int(loop[0]), int(loop[1])) if loop else None)
                    for offset, position, loop in data.pop("segments")]
        journal = cls(**data, segments=segments)
        if not journal.segments or not isinstance(journal.project_id, str):
            raise ValueError(f"{path.name} names no project or no segment")
        return journal


class TakeLock:
    """An exclusive ``flock`` on a take's audio file, held while it records (or while
    it is recovered)."""

    def __init__(self, audio: Path) -> None:
        self.fd = os.open(audio, os.O_RDONLY)

    def take(self) -> bool:
        """Lock the file; False if another open file holds it (a live take)."""
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def still_at(self, audio: Path) -> bool:
        """Whether ``audio`` is still the file locked (not removed, nor replaced, by
        whoever held it before)."""
        try:
            return os.stat(audio).st_ino == os.fstat(self.fd).st_ino
        except FileNotFoundError:
            return False

    def release(self) -> None:
        """Unlock and close."""
        os.close(self.fd)
