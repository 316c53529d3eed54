"""Real audio files, cover art and release metadata for the distribution tests."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from PIL import Image

from business.distribution.identifiers import make_upc

TODAY = dt.date(2026, 11, 25)


def make_audio(path: Path, *, seconds: float = 3.0, rate: int = 44_100,
               subtype: str = "PCM_24", amplitude: float = 0.25, lead_s: float = 0.0,
               tail_s: float = 0.0, clip: bool = False, freq: float = 997.0,
               channels: int = 2) -> Path:
    """A tone (optionally with silence at the edges, or clipped) written with soundfile."""
    t = np.arange(int(seconds * rate)) / rate
    tone = amplitude * np.sin(2 * np.pi * freq * t)
    if clip:
        tone = np.clip(tone * 8, -1.0, 1.0)
    signal = np.concatenate([np.zeros(int(lead_s * rate)), tone, np.zeros(int(tail_s * rate))])
    data = np.repeat(signal[:, None], channels, axis=1).astype(np.float32)
    sf.write(str(path), data, rate, subtype=subtype)
    return path


def pink_image(size: int, seed: int = 0) -> Image.Image:
    """A detailed RGB image with natural-image (1/f) statistics."""
    rng = np.random.default_rng(seed)
    f = np.fft.fftfreq(size)
    radius = np.sqrt(f[:, None] ** 2 + f[None, :] ** 2)
    radius[0, 0] = 1.0
    spectrum = (rng.normal(size=(size, size)) + 1j * rng.normal(size=(size, size))) / radius
    plane = np.real(np.fft.ifft2(spectrum))
    plane = (plane - plane.min()) / (plane.max() - plane.min()) * 255
    return Image.fromarray(np.stack([plane, plane[::-1], plane[:, ::-1]], -1).astype(np.uint8))


def make_art(path: Path, *, size: int = 3000, mode: str = "RGB", fmt: str = "JPEG",
             upscaled_from: int | None = None, width: int | None = None) -> Path:
    """Cover art: detailed by default, or enlarged from a smaller image."""
    image = pink_image(size)
    if upscaled_from:
        image = image.resize((upscaled_from, upscaled_from), Image.LANCZOS).resize(
            (size, size), Image.BICUBIC)
    if width:
        image = image.crop((0, 0, width, size))
    if mode != "RGB":
        image = image.convert(mode)
    image.save(path, format=fmt, quality=90)
    return path


def release_dict(root: Path, *, tracks: int = 1, release_id: str = "rel-1",
                 upc: str | None = None, isrc_base: int = 1, art: Path | None = None,
                 audio: list[Path] | None = None) -> dict[str, Any]:
    """A release that passes the gate (files are created under ``root`` when missing)."""
    root.mkdir(parents=True, exist_ok=True)
    if art is None:
        art = root / "cover.jpg"
        if not art.exists():
            make_art(art)
    if audio is None:
        audio = []
        for i in range(tracks):
            path = root / f"track{i + 1}.wav"
            if not path.exists():
                make_audio(path, freq=440.0 + 110 * i)
            audio.append(path)
    return {
        "release_id": release_id,
        "title": "Night Drive",
        "artists": [{"name": "Ada Lovelace", "role": "primary"}],
        "upc": upc or make_upc(f"{12345678900 + isrc_base:011d}"),
        "release_type": "single" if tracks <= 3 else "album",
        "label": "Booster Records",
        "genre": "Electronic",
        "language": "en",
        "p_line": "2026 Booster Records",
        "c_line": "2026 Booster Records",
        "release_date": (TODAY + dt.timedelta(days=21)).isoformat(),
        "territories": ["Worldwide"],
        "artwork_path": str(art),
        "tracks": [
            {"title": f"Night Drive {i + 1}" if tracks > 1 else "Night Drive",
             "audio_path": str(audio[i]),
             "isrc": f"QZABC26{isrc_base * 100 + i:05d}",
             "contributors": [{"name": "Ada Lovelace", "role": "composer"}]}
            for i in range(tracks)
        ],
    }


async def migrate(db: Any) -> None:
    """The plug-in's tables, after the job queue's and the event bus's (as the server does)."""
    from business.distribution.plugin import MIGRATIONS
    from events import MIGRATIONS as EVENTS
    from jobs import MIGRATIONS as JOBS

    await db.migrate([*JOBS, *EVENTS])
    await db.migrate(MIGRATIONS)


class _Checked:
    """Queries of ``target`` (a database or one of its transactions), each checked first."""

    def __init__(self, target: Any, owner: FlakyDatabase) -> None:
        self.target = target
        self.owner = owner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.target, name)

    async def execute(self, sql: str, *args: Any) -> int:
        self.owner.check(sql)
        return await self.target.execute(sql, *args)

    async def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        self.owner.check(sql)
        rows = await self.target.fetch(sql, *args)
        self.owner.fetched(sql, rows)
        return rows

    async def fetchrow(self, sql: str, *args: Any) -> dict[str, Any] | None:
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None

    async def fetchval(self, sql: str, *args: Any) -> Any:
        row = await self.fetchrow(sql, *args)
        return None if row is None else next(iter(row.values()))


class FlakyDatabase(_Checked):
    """A real database whose chosen statements fail a set number of times (fault injection).

    ``failures`` maps the start of an SQL statement to how many times it fails before
    it runs normally; :attr:`injected` counts the failures raised so far per prefix.
    Statements run inside a transaction fail too (the transaction rolls back).
    """

    def __init__(self, db: Any, failures: dict[str, int]) -> None:
        super().__init__(db, self)
        self.left = dict(failures)
        self.injected = dict.fromkeys(failures, 0)

    def fetched(self, sql: str, rows: list[dict[str, Any]]) -> None:
        """Called with the rows each query gave (a subclass watches for something)."""

    def check(self, sql: str) -> None:
        """Raise DatabaseError when ``sql`` is due to fail."""
        from database import DatabaseError

        for prefix, left in self.left.items():
            if sql.startswith(prefix) and left > 0:
                self.left[prefix] -= 1
                self.injected[prefix] += 1
                raise DatabaseError(f"injected failure of: {sql[:60]}")

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Any]:
        async with self.target.transaction() as tx:
            yield _Checked(tx, self)
