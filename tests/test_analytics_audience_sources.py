"""Audience from YouTube (Analytics API v2 demographics and geography reports) and
Instagram (``follower_demographics`` insights) through fakes speaking those APIs: the
figures equal the fakes' seeded truth, into the audience tables and the world map's
countries (SQLite and PostgreSQL); bad data (percentages that do not sum to 100, a missing
column, an unknown breakdown) raises ``SchemaChanged`` naming it and loses nothing fetched
before it."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from pathlib import Path

import pytest
from test_analytics_milestones import CREDS, analytics, backfill
from test_analytics_milestones import run as run_for
from test_analytics_sources import TODAY, run, source, table

from business.analytics.audience import AudienceBook
from business.analytics.errors import SchemaChanged
from business.analytics.fakes import FAKES
from business.analytics.services import services

pytestmark = pytest.mark.timeout(180)
FIRST, LAST = date(2024, 6, 1), date(2024, 6, 29)
PARTS = {"country": "countries", "city": "cities", "age": "ages", "gender": "genders"}


# -- YouTube ---------------------------------------------------------------------------------

def test_youtube_demographics_are_the_days_views_shared_by_age_and_gender() -> None:
    async def go() -> None:
        async with source("youtube") as src:
            fetched = await src.connector.fetch(src.entity, FIRST, LAST)
            got = table(fetched)
            assert got == src.fake.truth(FIRST, LAST)
            for day in src.fake.days(FIRST, LAST):
                views = got[("artist", src.fake.artist_id, "views", day, ())]
                shares = [v for (_, _, m, d, _), v in got.items()
                          if m == "audience_demographic_views" and d == day]
                assert len(shares) == 21 and sum(shares) == pytest.approx(views)
                countries = {dims[0][1] for (_, _, m, d, dims) in got
                             if m == "audience_views" and d == day}
                assert countries == {"US", "IN", "BR", "DE", "GB", "MX"}
    run(go())


def test_youtube_percentages_that_do_not_sum_to_100_are_refused_and_nothing_is_lost() -> None:
    async def go() -> None:
        async with source("youtube") as src:
            bad = date(2024, 6, 10)
            src.fake.skewed_days.add(bad)
            with pytest.raises(SchemaChanged) as caught:
                await src.connector.fetch(src.entity, FIRST, LAST)
            assert caught.value.field == "rows.viewerPercentage"
            assert "sum to 90" in str(caught.value)
            kept = table(caught.value.progress.fetched)
            truth = src.fake.truth(FIRST, LAST)
            assert kept.items() <= truth.items()
            # every day's views, and the audience of the days before the bad one
            assert {k[3] for k in kept if k[2] == "views"} == set(src.fake.days(FIRST, LAST))
            assert {k[3] for k in kept if k[2] == "audience_views"} == set(
                src.fake.days(FIRST, date(2024, 6, 9)))
    run(go())


def test_youtube_audience_report_with_a_missing_column_names_it() -> None:
    async def go() -> None:
        async with source("youtube") as src:
            # the day report (its page of 29 days, then the empty one after it), the first
            # day's demographics, then its countries with ``views`` renamed
            src.fake.fail("renamed", after=3)
            with pytest.raises(SchemaChanged) as caught:
                await src.connector.fetch(src.entity, FIRST, LAST)
            assert caught.value.field == "columnHeaders.views"
            assert len(caught.value.progress.fetched.points) == 29 * 4 + 21
    run(go())


# -- Instagram ---------------------------------------------------------------------------------

def test_instagram_follower_demographics_are_todays_followers_by_breakdown() -> None:
    async def go() -> None:
        async with source("instagram") as src:
            fetched = await src.connector.fetch(src.entity, FIRST, LAST)
            assert table(fetched) == src.fake.truth(FIRST, LAST)
            demographics = [p for p in fetched.points if p.metric == "audience_followers"]
            assert {p.at.date() for p in demographics} == {TODAY}
            assert {p.dimensions[0][0] for p in demographics} == set(PARTS)
            assert {p.dimensions[0][1] for p in demographics
                    if p.dimensions[0][0] == "gender"} == {"female", "male", "unknown"}
            # a back-fill of past months has none (the figures are today's)
            older = await src.connector.fetch(src.entity, date(2024, 4, 1),
                                              date(2024, 4, 30))
            assert not any(p.metric == "audience_followers" for p in older.points)
    run(go())


def test_instagram_unknown_gender_code_is_refused_and_the_insights_are_kept() -> None:
    async def go() -> None:
        async with source("instagram") as src:
            src.fake.bad_genders = True
            with pytest.raises(SchemaChanged) as caught:
                await src.connector.fetch(src.entity, FIRST, LAST)
            assert caught.value.field == (
                "data.0.total_value.breakdowns.0.results.0.dimension_values")
            assert "unknown gender 'X'" in str(caught.value)
            kept = table(caught.value.progress.fetched)
            assert kept.items() <= src.fake.truth(FIRST, LAST).items()
            assert {k[3] for k in kept if k[2] == "reach"} == set(src.fake.days(FIRST, LAST))
            assert {k[4][0][0] for k in kept if k[2] == "audience_followers"} == {"age"}
    run(go())


# -- into the audience tables ---------------------------------------------------------------

def want_from(*fakes: object) -> dict[tuple, dict[str, float]]:
    want: dict[tuple, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for fake in fakes:
        for (_, _, metric, _, dims), value in fake.truth(FIRST, LAST).items():  # type: ignore[attr-defined]
            for name, key in dims:
                if name in PARTS:
                    want[(fake.source, metric, PARTS[name])][key] += value  # type: ignore[attr-defined]
    return want


def test_youtube_and_instagram_audience_reach_the_audience_tables(db_url: str,
                                                                  tmp_path: Path) -> None:
    now = datetime_at(TODAY)

    async def go() -> None:
        async with analytics(db_url, tmp_path, "youtube", "instagram", now=now) as (
                context, server, jobs):
            module = services(context)
            for name in ("youtube", "instagram"):
                connected = await module.connections.connect(
                    "acct", name, "artist", FAKES[name].artist_id, CREDS, "ada", "Ada")
                await backfill(context, jobs, connected.source_id, FIRST, LAST, name)
            found = await AudienceBook(context.database()).audience("acct", FIRST, TODAY)
            got = {(a["source"], a["metric"], part): {c["key"]: c["value"] for c in a[part]}
                   for a in found for part in PARTS.values() if a[part]}
            want = want_from(server["youtube"], server["instagram"])
            assert set(got) == set(want)
            for key, figures in want.items():
                assert got[key] == pytest.approx(figures), key
            youtube = next(a for a in found if a["metric"] == "audience_views")
            # the world map's ids: ISO 3166-1 numeric codes and names
            assert {c["key"]: c["numeric"] for c in youtube["countries"]}["US"] == "840"
            assert sum(c["share"] for c in youtube["countries"]) == pytest.approx(1.0)
            demographics = next(a for a in found if a["metric"] == "audience_demographic_views")
            assert {g["key"] for g in demographics["genders"]} == {
                "female", "male", "user_specified"}
            assert len(demographics["ages"]) == 7
            instagram = next(a for a in found if a["source"] == "instagram")
            assert instagram["cities"] and instagram["countries"][0]["numeric"]
            assert await AudienceBook(context.database()).audience("other", FIRST, TODAY) == []
    run_for(go())


def datetime_at(day: date):  # noqa: ANN201
    from datetime import UTC, datetime
    return datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
