"""Pre-save campaigns: public data, counts, and a release-day event that fires once."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest

from business.distribution.errors import DistributionError, NotFoundError
from business.distribution.plugin import MIGRATIONS
from business.distribution.presave import PreSaves, landing_page
from dawserver.database import Migration, open_database


def test_campaign_counts_each_fan_once_and_fires_release_day_once(tmp_path: Path) -> None:
    async def go() -> None:
        async with open_database(f"sqlite://{tmp_path / 'p.sqlite3'}") as db:
            await db.migrate([Migration(*m) for m in MIGRATIONS])
            presaves = PreSaves(db)
            data = await presaves.create("acc", "rel-1", "Night Drive", "Ada", "2026-12-01")
            slug = data["slug"]
            assert data["presaves"] == 0 and slug.startswith("ada-night-drive-")
            await presaves.presave(slug, "fan@example.com", "spotify")
            await presaves.presave(slug, "FAN@example.com ", "spotify")
            data = await presaves.presave(slug, "other@example.com", "deezer")
            assert data["presaves"] == 2
            with pytest.raises(DistributionError, match="not an e-mail"):
                await presaves.presave(slug, "nobody", "spotify")
            with pytest.raises(NotFoundError):
                await presaves.public("missing")

            events: list[tuple[str, dict]] = []

            async def announce(name: str, payload: dict) -> None:
                events.append((name, payload))

            assert await presaves.fire_due(announce, dt.date(2026, 11, 30)) == []
            results = await asyncio.gather(*(presaves.fire_due(announce, dt.date(2026, 12, 1))
                                             for _ in range(5)))
            assert sum(len(r) for r in results) == 1
            assert [e[0] for e in events] == ["presave.release_day"]
            assert events[0][1]["presaves"] == 2 and events[0][1]["account_id"] == "acc"
            assert await presaves.fire_due(announce, dt.date(2026, 12, 2)) == []
            with pytest.raises(DistributionError, match="pre-saves are closed"):
                await presaves.presave(slug, "late@example.com", "spotify")
            assert (await presaves.public(slug))["released"] is True

    asyncio.run(go())


def test_landing_page_escapes_user_text() -> None:
    page = landing_page({"title": "<script>x</script>", "artist": "A&B", "release_date":
                         "2026-12-01", "presaves": 3, "slug": "s", "services": ["spotify"]})
    assert "<script>x" not in page and "&lt;script&gt;" in page and "A&amp;B" in page
