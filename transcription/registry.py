"""The model registry: which transcription model heard what, and how well it hears.

A model is registered under a name; each distinct ``model.bin`` (by SHA-256) registered
under that name is a new version (1, 2, ...), recorded with who registered it and when,
so a changed model file can never pass for the old one.  Each version keeps the
per-language error table measured for it (:func:`transcription.evaluation.evaluate`),
and every decode on the server's path is logged under the account whose audio it was:
model and version, language, duration, mean word confidence, time.

The tables are ``transcription/migrations/0003_model_registry.sql``: the models and
their scores are reference tables (small, global), the inference log is distributed by
``account_id``.  Apply them with :func:`transcription.jobs.migrate`.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from database import Database

from .errors import ModelError
from .evaluation import Score
from .languages import LANGUAGES, normalize_language
from .models import check_model_dir, file_sha256
from .transcript import Transcript

_COLUMNS = "name, version, sha256, size_bytes, languages, path, registered_by, registered_at"
_hashes: dict[tuple[str, int, int], str] = {}
_hashes_lock = threading.Lock()


@dataclass(frozen=True)
class ModelVersion:
    """One registered version of a model."""

    name: str
    version: int
    sha256: str
    size_bytes: int
    languages: tuple[str, ...]
    path: str
    registered_by: str
    registered_at: float

    @classmethod
    def from_row(cls, row: dict) -> ModelVersion:
        """The version a ``transcription_models`` row holds."""
        return cls(name=row["name"], version=int(row["version"]), sha256=row["sha256"],
                   size_bytes=int(row["size_bytes"]),
                   languages=tuple(json.loads(row["languages"])), path=row["path"],
                   registered_by=row["registered_by"],
                   registered_at=float(row["registered_at"]))


@dataclass(frozen=True)
class Inference:
    """One logged decode."""

    account_id: str
    id: str
    model_name: str
    model_version: int
    language: str
    duration_s: float
    confidence: float | None
    created_at: float

    def shown(self) -> dict[str, Any]:
        """The decode as its project's viewers and an export see it: every field but the
        account it is filed under."""
        fields = asdict(self)
        del fields["account_id"]
        return fields


def model_sha256(model_dir: str | os.PathLike[str]) -> str:
    """SHA-256 of a model directory's ``model.bin``, hashed once per file size and mtime."""
    path = Path(model_dir) / "model.bin"
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    with _hashes_lock:
        known = _hashes.get(key)
    if known is None:
        known = file_sha256(path)
        with _hashes_lock:
            _hashes[key] = known
    return known


def model_languages(model_dir: str | os.PathLike[str]) -> tuple[str, ...]:
    """What a model can be asked for: every Whisper language, or English for ``*.en``."""
    return tuple(LANGUAGES) if check_model_dir(model_dir).multilingual else ("en",)


def confidence_of(transcript: Transcript) -> float | None:
    """Mean word probability of a transcript (None when it has no words)."""
    words = [w.probability for s in transcript.segments for w in s.words]
    return sum(words) / len(words) if words else None


class ModelRegistry:
    """Registered models, their measured error tables and the inference log, in ``db``."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def register(self, name: str, model_dir: str | os.PathLike[str], *,
                       registered_by: str, languages: Iterable[str] | None = None,
                       sha256: str | None = None) -> tuple[ModelVersion, bool]:
        """Register ``model_dir`` under ``name``: ``(version, created)``.

        The same file as the latest version of ``name`` returns that version
        (``created`` False); a different file becomes the next version.
        ``sha256`` skips hashing when the caller already knows it.
        """
        if not name.strip():
            raise ModelError("a model needs a name, e.g. 'whisper-base'")
        info = check_model_dir(model_dir)
        codes = tuple(sorted({normalize_language(code) or "" for code in languages}
                             - {""})) if languages else model_languages(info.path)
        digest = sha256 or model_sha256(info.path)
        async with self.db.transaction() as tx:
            latest = await tx.fetchrow(
                f"SELECT {_COLUMNS} FROM transcription_models WHERE name = ? "
                "ORDER BY version DESC LIMIT 1", name)
            if latest is not None and latest["sha256"] == digest:
                return ModelVersion.from_row(latest), False
            version = ModelVersion(
                name=name, version=1 if latest is None else int(latest["version"]) + 1,
                sha256=digest, size_bytes=info.size, languages=codes, path=str(info.path),
                registered_by=registered_by, registered_at=time.time())
            inserted = await tx.execute(
                f"INSERT INTO transcription_models ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (name, version) DO NOTHING",
                version.name, version.version, version.sha256, version.size_bytes,
                json.dumps(list(version.languages)), version.path, version.registered_by,
                version.registered_at)
        if inserted:
            return version, True
        # Another process registered this version first (two jobs' first use at once).
        row = await self.db.fetchrow(
            f"SELECT {_COLUMNS} FROM transcription_models WHERE name = ? AND version = ?",
            name, version.version)
        if row is not None and row["sha256"] == digest:
            return ModelVersion.from_row(row), False
        raise ModelError(f"model {name!r} version {version.version} was just registered "
                         "with another file; register again to make the next version")

    async def identify(self, model_dir: str | os.PathLike[str], *,
                       sha256: str | None = None) -> ModelVersion:
        """The version whose file ``model_dir`` holds, registered now under the directory's
        name (by ``"server"``) if no name has it yet."""
        digest = sha256 or model_sha256(model_dir)
        row = await self.db.fetchrow(
            f"SELECT {_COLUMNS} FROM transcription_models WHERE sha256 = ? "
            "ORDER BY registered_at DESC LIMIT 1", digest)
        if row is not None:
            return ModelVersion.from_row(row)
        version, _ = await self.register(Path(model_dir).name, model_dir,
                                         registered_by="server", sha256=digest)
        return version

    async def latest(self) -> list[ModelVersion]:
        """The latest version of every registered name, by name."""
        rows = await self.db.fetch(
            f"SELECT {_COLUMNS} FROM transcription_models m WHERE version = "
            "(SELECT MAX(version) FROM transcription_models o WHERE o.name = m.name) "
            "ORDER BY name")
        return [ModelVersion.from_row(row) for row in rows]

    async def history(self, name: str) -> list[ModelVersion]:
        """Every version of ``name``, oldest first (:class:`ModelError` if none)."""
        rows = await self.db.fetch(
            f"SELECT {_COLUMNS} FROM transcription_models WHERE name = ? ORDER BY version",
            name)
        if not rows:
            raise ModelError(f"no model named {name!r} is registered: see `dawserver models "
                             "list`, or register one with `dawserver models register`")
        return [ModelVersion.from_row(row) for row in rows]

    async def store_scores(self, version: ModelVersion, scores: Sequence[Score], *,
                           measured_by: str) -> None:
        """Keep ``scores`` as the error table of ``version`` (replacing those languages')."""
        now = time.time()
        async with self.db.transaction() as tx:
            for score in scores:
                await tx.execute(
                    "DELETE FROM transcription_model_scores WHERE name = ? AND version = ? "
                    "AND language = ?", version.name, version.version, score.language)
                await tx.execute(
                    "INSERT INTO transcription_model_scores (name, version, language, "
                    "detected, probability, wer, cer, measured_by, measured_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", version.name, version.version,
                    score.language, score.detected, score.probability, score.wer, score.cer,
                    measured_by, now)

    async def scores(self, version: ModelVersion) -> list[Score]:
        """The error table measured for ``version``, by language."""
        rows = await self.db.fetch(
            "SELECT language, detected, probability, wer, cer FROM transcription_model_scores "
            "WHERE name = ? AND version = ? ORDER BY language", version.name, version.version)
        return [Score(r["language"], r["detected"], float(r["probability"]), float(r["wer"]),
                      float(r["cer"])) for r in rows]

    async def record_inference(self, account_id: str, version: ModelVersion,
                               transcript: Transcript) -> Inference:
        """Log one decode of ``account_id``'s audio by ``version``."""
        entry = Inference(account_id=account_id, id=uuid.uuid4().hex,
                          model_name=version.name, model_version=version.version,
                          language=transcript.language, duration_s=float(transcript.duration),
                          confidence=confidence_of(transcript), created_at=time.time())
        await self.db.execute(
            "INSERT INTO transcription_inferences (account_id, id, model_name, model_version, "
            "language, duration_s, confidence, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            entry.account_id, entry.id, entry.model_name, entry.model_version, entry.language,
            entry.duration_s, entry.confidence, entry.created_at)
        return entry

    async def forget(self, account_id: str) -> int:
        """Delete ``account_id``'s logged decodes (its project is deleted); how many."""
        return await self.db.execute(
            "DELETE FROM transcription_inferences WHERE account_id = ?", account_id)

    async def inferences(self, account_id: str) -> list[Inference]:
        """An account's logged decodes, oldest first."""
        rows = await self.db.fetch(
            "SELECT account_id, id, model_name, model_version, language, duration_s, "
            "confidence, created_at FROM transcription_inferences WHERE account_id = ? "
            "ORDER BY created_at", account_id)
        return [Inference(r["account_id"], r["id"], r["model_name"], int(r["model_version"]),
                          r["language"], float(r["duration_s"]),
                          None if r["confidence"] is None else float(r["confidence"]),
                          float(r["created_at"])) for r in rows]
