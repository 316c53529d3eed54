"""One indexed sample as the library stores and serves it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .music import key_name


@dataclass(frozen=True)
class Sample:
    """An indexed sample of an account: where it is, what its name says, what was measured."""

    account_id: str
    id: str
    folder: str
    path: str
    name: str
    content_hash: str
    size: int
    mtime_ns: int
    words: tuple[str, ...]
    duration: float
    loudness_lufs: float | None
    peak_db: float
    bpm: float | None
    bpm_confidence: float
    key: tuple[int, str] | None
    key_confidence: float
    kind: str
    instrument: str
    instrument_confidence: float
    analysis: dict[str, Any]
    indexed_at: float

    def row(self) -> tuple:
        """The values of the ``samples`` table's columns, in order."""
        return (self.account_id, self.id, self.folder, self.path, self.name,
                self.content_hash, self.size, self.mtime_ns, " ".join(self.words),
                self.duration, self.loudness_lufs, self.peak_db, self.bpm,
                self.bpm_confidence, self.key[0] if self.key else None,
                self.key[1] if self.key else None, self.key_confidence, self.kind,
                self.instrument, self.instrument_confidence, json.dumps(self.analysis),
                self.indexed_at)

    @classmethod
    def from_row(cls, row: Any) -> Sample:
        """A sample from a ``samples`` row."""
        key = (int(row["key_tonic"]), row["key_mode"]) if row["key_tonic"] is not None else None
        return cls(account_id=row["account_id"], id=row["id"], folder=row["folder"],
                   path=row["path"], name=row["name"], content_hash=row["content_hash"],
                   size=int(row["size"]), mtime_ns=int(row["mtime_ns"]),
                   words=tuple(row["words"].split()), duration=float(row["duration"]),
                   loudness_lufs=row["loudness_lufs"], peak_db=float(row["peak_db"]),
                   bpm=row["bpm"], bpm_confidence=float(row["bpm_confidence"]), key=key,
                   key_confidence=float(row["key_confidence"]), kind=row["kind"],
                   instrument=row["instrument"],
                   instrument_confidence=float(row["instrument_confidence"]),
                   analysis=json.loads(row["analysis"]), indexed_at=float(row["indexed_at"]))

    def to_json(self) -> dict[str, Any]:
        """The sample as the HTTP API answers it (no server path)."""
        return {"id": self.id, "name": self.name, "words": list(self.words),
                "duration": self.duration, "loudness_lufs": self.loudness_lufs,
                "peak_db": self.peak_db, "bpm": self.bpm, "bpm_confidence": self.bpm_confidence,
                "key": key_name(*self.key) if self.key else None,
                "key_confidence": self.key_confidence, "type": self.kind,
                "class": self.instrument, "class_confidence": self.instrument_confidence,
                "sample_rate": self.analysis.get("sample_rate"),
                "channels": self.analysis.get("channels")}


COLUMNS = ("account_id", "id", "folder", "path", "name", "content_hash", "size", "mtime_ns",
           "words", "duration", "loudness_lufs", "peak_db", "bpm", "bpm_confidence",
           "key_tonic", "key_mode", "key_confidence", "kind", "instrument",
           "instrument_confidence", "analysis", "indexed_at")
