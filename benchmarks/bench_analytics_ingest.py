"""Analytics ingestion: points parsed and validated per second on one core.

Each source's connector turns raw answer pages into points: the pydantic schema check
(``Connector.validate``, every field and every count) and ``Connector.read``. The
baseline is the least any ingestion must do: ``json.loads`` over the same bytes. The
pages are a 13-month back-fill of the fakes (Spotify: 7 tracks × 3 metrics a day; Shazam:
7 tracks × 3 countries; YouTube: a channel's 4 metrics), fetched once over loopback
before timing, so only the parsing is timed; one thread, so the figure is per core.

Run: ``python -m pytest benchmarks/bench_analytics_ingest.py --benchmark-enable -s``.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime

import aiohttp
import pytest

from benchmarks.conftest import SMOKE, median_ratio, record, rounds_of
from business.analytics.fakes import FAKES, FakeSources
from business.analytics.sources import connector_for
from business.analytics.sources.base import Credentials
from business.analytics.sources.records import Entity, Fetched
from business.analytics.sources.spec import RateLimit

START = date(2024, 6, 1) if SMOKE else date(2023, 6, 1)
END = date(2024, 6, 30)
CREDS = Credentials("client-id", "client-secret", "api-key", "refresh-token")


async def _pages(name: str) -> tuple[list[bytes], object, Entity]:
    """The raw pages of a back-fill of ``name`` and a connector to parse them."""
    fake = FAKES[name]()
    async with FakeSources([fake]) as server, aiohttp.ClientSession() as session:
        connector = connector_for(name, server.base_url(name), CREDS, session,
                                  rate_limit=RateLimit(100_000, 1),
                                  clock=lambda: datetime(2024, 7, 1, tzinfo=UTC))
        pages: list[bytes] = []
        validate = connector.validate

        def keep(raw: bytes, model=None):  # noqa: ANN001, ANN202 - the page model
            if model is None:  # the timeline's pages (not Spotify's playlist pages)
                pages.append(raw)
            return validate(raw, model)

        connector.validate = keep  # type: ignore[method-assign]
        entity = Entity("artist", fake.artist_id)
        fetched = await connector.fetch(entity, START, END)
        connector.validate = validate  # type: ignore[method-assign]
        assert len(fetched.points) == len(fake.truth(START, END))
    return pages, connector, entity


@pytest.mark.parametrize("name", ["spotify", "shazam", "youtube"])
def test_points_parsed_per_second_against_json_loads(benchmark, name: str) -> None:  # noqa: ANN001
    pages, connector, entity = asyncio.run(_pages(name))

    def ours() -> int:
        out = Fetched()
        for raw in pages:
            page = connector.validate(raw)
            connector.check(page)
            connector.read(page, entity, out)
        return len(out.points)

    points = ours()
    times = rounds_of({"json.loads": lambda: [json.loads(raw) for raw in pages],
                       "connector": ours}, rounds=5)
    best = min(times["connector"])
    record(benchmark, source=name, pages=len(pages), points=points,
           megabytes=round(sum(map(len, pages)) / 1e6, 2),
           points_per_s_per_core=points / best,
           json_loads_points_per_s=points / min(times["json.loads"]),
           # how many times json.loads' time the whole parse and check takes
           times_json_loads=1 / median_ratio(times, "json.loads", "connector"))
