"""Release dates are UTC days: the gate and the release-day check follow UTC's date
whatever the server's local time zone."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from distribution_helpers import migrate, release_dict

from business.distribution.compliance import check_release
from business.distribution.models import release_from_dict
from business.distribution.presave import PreSaves
from database import open_database


@pytest.fixture
def far_from_utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[dt.date]:
    """The process's local time zone set to one whose date differs from UTC's now
    (12 hours behind before noon UTC, 14 ahead after); UTC's date. Restored after."""
    utc = dt.datetime.now(dt.UTC)
    monkeypatch.setenv("TZ", "Etc/GMT+12" if utc.hour < 12 else "Etc/GMT-14")
    time.tzset()
    try:
        assert dt.date.today() != utc.date()
        yield utc.date()
    finally:
        monkeypatch.undo()
        time.tzset()


def test_release_day_fires_on_the_utc_date_in_any_local_time_zone(
        tmp_path: Path, far_from_utc: dt.date) -> None:
    async def go() -> None:
        async with open_database(f"sqlite://{tmp_path / 'p.sqlite3'}") as db:
            await migrate(db)

            async def publish(*_: Any, **__: Any) -> str:
                return "event"

            presaves = PreSaves(db, publish)
            days = {when: (await presaves.create(
                "acc", f"rel-{when}", "Night Drive", "Ada",
                (far_from_utc + dt.timedelta(days=when)).isoformat()))["slug"]
                for when in (-1, 0, 1)}
            assert sorted(await presaves.fire_due()) == sorted([days[-1], days[0]])

    asyncio.run(go())


def test_the_gate_dates_a_release_in_utc_in_any_local_time_zone(
        tmp_path: Path, far_from_utc: dt.date) -> None:
    raw = release_dict(tmp_path, art=tmp_path / "cover.jpg", audio=[tmp_path / "a.wav"])

    def past(when: int) -> bool:
        date = (far_from_utc + dt.timedelta(days=when)).isoformat()
        report = check_release(release_from_dict({**raw, "release_date": date}),
                               files=False)
        return "release_date_past" in {issue.code for issue in report.errors}

    assert (past(-1), past(0), past(1)) == (True, False, False)
