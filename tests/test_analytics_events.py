"""Our own modules as analytics sources: the platform events consumed (store statements,
social post metrics, pre-saves), their payload contracts, idempotent storing, and bad
payloads dropped with the field named instead of stored or retried for ever."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from analytics_helpers import migrated, plugin_context

from business.analytics.audience import AudienceBook
from business.analytics.events import (
    POST_METRICS_EVENT,
    STATEMENT_EVENT,
    BadEvent,
    consume,
)
from business.analytics.services import services, store_event
from business.analytics.store import decode_dimensions, epoch

STATEMENT: dict[str, Any] = {
    "event_id": "ev-1", "account_id": "acct", "statement_id": "st-2024-05",
    "period_start": "2024-05-01", "period_end": "2024-05-31", "lines": [
        {"store": "spotify", "territory": "DE", "isrc": "QZES62400701", "units": 1200,
         "amount_minor": 480, "currency": "EUR", "title": "Night Drive"},
        {"store": "spotify", "territory": "DE", "isrc": "QZES62400701", "units": 300,
         "amount_minor": 120, "currency": "EUR", "title": "Night Drive"},
        {"store": "apple_music", "territory": "US", "isrc": "QZES62400701", "units": 90,
         "amount_minor": 81, "currency": "USD", "title": "Night Drive"},
        {"store": "spotify", "territory": "DE", "isrc": "QZES62400702", "units": 5,
         "amount_minor": 2, "currency": "EUR"}]}
POST: dict[str, Any] = {
    "event_id": "ev-2", "account_id": "acct", "network": "instagram", "channel_id": "ch-9",
    "post_id": "post-1", "day": "2024-06-02",
    "metrics": {"impressions": 5400, "likes": 310, "comments": 12}}
MAY = datetime(2024, 5, 1, tzinfo=UTC)


def run(coro, timeout: float = 30.0):  # noqa: ANN001, ANN201
    async def bounded():  # noqa: ANN202
        async with asyncio.timeout(timeout):
            return await coro
    return asyncio.run(bounded())


def test_a_statement_sums_its_lines_per_isrc_store_territory_and_currency() -> None:
    consumed = consume(STATEMENT_EVENT, STATEMENT)
    got = {(p.entity_id, p.metric, dict(p.dimensions)["store"],
            dict(p.dimensions)["currency"]): p.value for p in consumed.points}
    assert got == {
        ("QZES62400701", "statement_units", "spotify", "EUR"): 1500,
        ("QZES62400701", "statement_revenue_minor", "spotify", "EUR"): 600,
        ("QZES62400701", "statement_units", "apple_music", "USD"): 90,
        ("QZES62400701", "statement_revenue_minor", "apple_music", "USD"): 81,
        ("QZES62400702", "statement_units", "spotify", "EUR"): 5,
        ("QZES62400702", "statement_revenue_minor", "spotify", "EUR"): 2}
    assert {p.at for p in consumed.points} == {MAY}
    assert {p.source for p in consumed.points} == {"distribution"}
    names = {i.isrc: i.name for i in consumed.identities}
    assert names == {"QZES62400701": "Night Drive", "QZES62400702": "QZES62400702"}


def test_post_metrics_become_points_of_the_channel_with_the_post_as_dimension() -> None:
    consumed = consume(POST_METRICS_EVENT, POST)
    assert sorted((p.entity_id, p.metric, p.value, p.dimensions) for p in consumed.points) == [
        ("instagram:ch-9", "comments", 12, (("post", "post-1"),)),
        ("instagram:ch-9", "impressions", 5400, (("post", "post-1"),)),
        ("instagram:ch-9", "likes", 310, (("post", "post-1"),))]
    assert all(p.at.date() == date(2024, 6, 2) for p in consumed.points)


@pytest.mark.parametrize(("event", "change", "field"), [
    (STATEMENT_EVENT, {"lines": [{**STATEMENT["lines"][0], "units": -3}]}, "lines.0.units"),
    (STATEMENT_EVENT, {"lines": [{**STATEMENT["lines"][0], "isrc": "not-an-isrc"}]},
     "lines.0.isrc"),
    (STATEMENT_EVENT, {"period_end": "2024-04-01"}, "period_end"),
    (STATEMENT_EVENT, {"account_id": ""}, "account_id"),
    (POST_METRICS_EVENT, {"metrics": {"likes": -1}}, "metrics.likes"),
    (POST_METRICS_EVENT, {"metrics": {}}, "metrics"),
    (POST_METRICS_EVENT, {"day": "yesterday"}, "day"),
])
def test_a_payload_that_breaks_the_contract_names_the_field(event: str, change: dict,
                                                             field: str) -> None:
    payload = {**(STATEMENT if event == STATEMENT_EVENT else POST), **change}
    with pytest.raises(BadEvent, match="fix the producer") as caught:
        consume(event, payload)
    assert caught.value.field == field


def test_events_analytics_does_not_consume_are_ignored() -> None:
    assert consume("social.post_approved", {"account_id": "acct"}) is None


def test_consumed_events_are_stored_once_and_bad_ones_dropped(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async def go() -> None:
        async with migrated(f"sqlite://{tmp_path / 'ev.sqlite3'}") as db:
            context = await plugin_context(db, tmp_path)
            module = services(context)
            try:
                for _ in range(2):                  # at least once: heard twice
                    await store_event(context, STATEMENT_EVENT, STATEMENT)
                    await store_event(context, POST_METRICS_EVENT, POST)
                bad = {**POST, "account_id": "other", "metrics": {"likes": -5}}
                with caplog.at_level(logging.WARNING, "business.analytics.services"):
                    await store_event(context, POST_METRICS_EVENT, bad)   # never raises
                assert "metrics.likes" in caplog.text and "ev-2" in caplog.text
                assert await module.store.count("acct", "distribution") == 6
                assert await module.store.count("acct", "social") == 3
                assert await module.store.count("other") == 0
                rows = await module.store.rows("acct")
                units = {r["value"] for r in rows if r["metric"] == "statement_units"}
                assert units == {1500, 90, 5}
                recordings = await module.catalog.entities("acct", "recording")
                assert {e.isrc for e in recordings} == {"QZES62400701", "QZES62400702"}
            finally:
                await module.close()

    run(go())


def test_statements_starting_on_one_day_add_up_and_a_redelivery_overwrites(
        db_url: str, tmp_path: Path) -> None:
    """A supplementary statement starting on the main one's first day adds to it (the
    statement is a dimension of its points); the main one delivered again does not."""
    extra = {**STATEMENT, "event_id": "ev-3", "statement_id": "st-2024-05-extra",
             "period_end": "2024-05-15",
             "lines": [{**STATEMENT["lines"][0], "units": 40, "amount_minor": 16}]}

    async def go() -> None:
        async with migrated(db_url) as db:
            context = await plugin_context(db, tmp_path)
            module = services(context)
            try:
                for event in (STATEMENT, extra, STATEMENT):
                    await store_event(context, STATEMENT_EVENT, event)
                sums: dict[tuple[str, str, str], float] = {}
                for r in await module.store.rows("acct", source="distribution"):
                    key = (r["entity_id"], r["metric"],
                           dict(decode_dimensions(r["dimensions"]))["store"])
                    sums[key] = sums.get(key, 0) + r["value"]
                assert sums == {
                    ("QZES62400701", "statement_units", "spotify"): 1500 + 40,
                    ("QZES62400701", "statement_revenue_minor", "spotify"): 600 + 16,
                    ("QZES62400701", "statement_units", "apple_music"): 90,
                    ("QZES62400701", "statement_revenue_minor", "apple_music"): 81,
                    ("QZES62400702", "statement_units", "spotify"): 5,
                    ("QZES62400702", "statement_revenue_minor", "spotify"): 2}
                # the readers of these points add the statements up too
                [track] = [e for e in await module.catalog.entities("acct", "recording")
                           if e.isrc == "QZES62400701"]
                series = await module.store.series("acct", metric="statement_units",
                                                   entity_id=track.entity_id)
                assert [(p.at, p.value) for p in series["total"]] == [
                    (epoch(MAY), 1500 + 40 + 90)]
                [units] = [a for a in await AudienceBook(db).audience(
                    "acct", date(2024, 5, 1), date(2024, 5, 31))
                    if a["metric"] == "statement_units"]
                assert {c["key"]: c["value"] for c in units["countries"]} == {
                    "DE": 1500 + 40 + 5, "US": 90}
            finally:
                await module.close()

    run(go())
