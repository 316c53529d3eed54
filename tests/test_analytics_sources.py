"""The analytics source connectors against their fakes: sign-in, a back-fill with
pagination that matches the fakes' seeded truth exactly, and every way a source fails
mapped to the errors the ingestion jobs act on (no database)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from business.analytics.errors import (
    DuplicatePage,
    NoHistory,
    QuotaExhausted,
    SchemaChanged,
    ServerError,
    SourceError,
    TokenRevoked,
)
from business.analytics.fakes import FAKES, FakeSource, FakeSources, Series
from business.analytics.sources import NOT_YET_BUILT, SOURCES, connector_for
from business.analytics.sources.base import Connector, Credentials
from business.analytics.sources.records import (
    ENTITY_KINDS,
    SPARSE_METRICS,
    Entity,
    Fetched,
    Gap,
)
from business.analytics.sources.spec import AUTH_KINDS, PAGINATION_KINDS, RateLimit

NAMES = sorted(SOURCES)
HISTORY = [n for n in NAMES if SOURCES[n].spec.history]
SNAPSHOT = [n for n in NAMES if not SOURCES[n].spec.history]
SIGNED = [n for n in NAMES if SOURCES[n].spec.auth != "none"]
RENEWING = [n for n in NAMES if SOURCES[n].spec.auth in ("oauth_client_credentials",
                                                            "refresh_token")]
QUOTAS = [n for n in NAMES if "quota" in FAKES[n].kinds]
#: The wait each source's throttle answer asks for when the fake is told 7 s (None: the
#: source says nothing, so the connector backs off). Instagram and Facebook speak whole
#: minutes; X and Twitch give a Unix time (whole seconds) to wait until.
SAID_WAIT = {"spotify": 7.0, "apple_music": 7.0, "youtube": 7.0, "shazam": 7.0,
             "soundcloud": 7.0, "audiomack": 7.0, "instagram": 60.0, "deezer": 5.0,
             "tiktok": None, "lastfm": None, "discogs": None, "musicbrainz": None,
             "facebook": 60.0, "x": 7.0, "amazon_music": None, "tidal": 7.0, "pandora": 7.0,
             "boomplay": None, "anghami": 7.0, "jiosaavn": 7.0, "beatport": 7.0,
             "bandcamp": None, "twitch": 7.0, "genius": None, "radio_airplay": 7.0}
#: Sources whose answers name no recordings (account or post figures only).
NO_RECORDINGS = ("youtube", "tiktok", "instagram", "facebook", "x", "twitch")
CREDS = Credentials("client-id", "client-secret", "api-key", "refresh-token")
NOW = datetime(2024, 6, 30, 12, tzinfo=UTC)
TODAY = NOW.date()
#: A rate limit no test reaches (the pacing test sets its own).
UNPACED = RateLimit(10_000, 1)
START, END = date(2024, 4, 1), date(2024, 6, 29)   # 90 days, with each fake's spike in it


def run(coro, timeout: float = 20.0):  # noqa: ANN001, ANN201 - a coroutine and its result
    async def bounded():  # noqa: ANN202
        async with asyncio.timeout(timeout):
            return await coro
    return asyncio.run(bounded())


@dataclass
class Src:
    """One running fake source and a connector pointed at it."""

    fake: FakeSource
    connector: Connector
    session: aiohttp.ClientSession
    base_url: str

    @property
    def entity(self) -> Entity:
        return Entity("artist", self.fake.artist_id)

    def span(self) -> tuple[date, date]:
        """The range a complete back-fill asks for (today only where there is no history)."""
        return (START, END) if self.connector.spec.history else (TODAY, TODAY)

    async def fetch(self) -> Fetched:
        return await self.connector.fetch(self.entity, *self.span())

    def truth(self) -> dict[tuple, int]:
        return self.fake.truth(*self.span())


@contextlib.asynccontextmanager
async def source(name: str, credentials: Credentials = CREDS, *,
                 rate_limit: RateLimit | None = UNPACED,
                 **fake_options: Any) -> AsyncIterator[Src]:
    """Start the fake ``name`` and a connector on it: waits recorded instead of slept, a
    fixed clock, a seeded jitter and small pages where a listing is short."""
    fake = FAKES[name](**fake_options)

    async def sleep(seconds: float) -> None:
        await asyncio.sleep(0)

    async with FakeSources([fake]) as server, aiohttp.ClientSession() as session:
        connector = connector_for(
            name, server.base_url(name), credentials, session, rate_limit=rate_limit,
            sleep=sleep, rng=random.Random(1), clock=lambda: NOW, timeout_s=5.0,
            page_size=None if SOURCES[name].spec.history else 3)
        yield Src(fake, connector, session, server.base_url(name))


def table(fetched: Fetched) -> dict[tuple, int | float]:
    """Points as the fakes' truth is keyed: (kind, id, metric, day, dimensions) -> value."""
    return {(p.entity_kind, p.entity_id, p.metric, p.at.date(), p.dimensions): p.value
            for p in fetched.points}


def assert_true_subset(fetched: Fetched, truth: dict[tuple, int]) -> None:
    got = table(fetched)
    assert len(got) == len(fetched.points), "a point came twice"
    assert got.items() <= truth.items()


# -- the registry ------------------------------------------------------------------------

def test_every_source_has_a_connector_a_fake_and_a_sound_spec() -> None:
    assert set(SOURCES) == set(FAKES) and len(SOURCES) >= 25
    assert not set(SOURCES) & set(NOT_YET_BUILT)
    for name, cls in SOURCES.items():
        spec = cls.spec
        assert spec.name == name and spec.auth in AUTH_KINDS
        assert spec.pagination in PAGINATION_KINDS
        assert set(spec.entity_kinds) <= set(ENTITY_KINDS) and spec.metrics
        assert FAKES[name].auth == spec.auth and FAKES[name].pagination == spec.pagination
        assert FAKES[name].history == spec.history
        doc = (Path(__file__).parents[1] / "business/analytics/sources" / f"{name}.py"
               ).read_text()
        if spec.shape == "modelled":
            assert "*modelled*" in doc, f"{name}: say what is modelled in the docstring"


def test_an_unknown_source_is_refused_with_the_known_ones_named() -> None:
    async def go() -> None:
        async with aiohttp.ClientSession() as session:
            with pytest.raises(ValueError, match="apple_music, audiomack"):
                connector_for("myspace", None, CREDS, session)
    run(go())


def test_product_modules_never_import_the_fakes() -> None:
    root = Path(__file__).resolve().parents[1] / "business" / "analytics"
    for path in root.rglob("*.py"):
        if "fakes" in path.relative_to(root).parts:
            continue
        text = path.read_text()
        assert "business.analytics.fakes" not in text.replace(
            ":mod:`business.analytics.fakes`", ""), path


def test_the_same_seed_gives_the_same_series_and_another_seed_another() -> None:
    days = [START + timedelta(days=i) for i in range(120)]
    one = [Series(3).value("spotify", "t1", "streams", d) for d in days]
    assert one == [Series(3).value("spotify", "t1", "streams", d) for d in reversed(days)][::-1]
    assert one != [Series(4).value("spotify", "t1", "streams", d) for d in days]
    assert min(one) >= 0


def test_the_series_has_a_trend_a_weekly_shape_and_a_spike() -> None:
    series = Series(11)
    days = [date(2024, 1, 1) + timedelta(days=i) for i in range(364)]
    values = [series.value("youtube", "c", "views", d) for d in days]
    peak = max(range(len(values)), key=values.__getitem__)
    assert values[peak] > 2.5 * sorted(values)[len(values) // 2]   # a spike stands out
    quiet = [v for i, v in enumerate(values) if abs(i - peak) > 10]
    first, last = sum(quiet[:60]) / 60, sum(quiet[-60:]) / 60
    assert last > first * 1.3                                       # it grows
    by_day = [0.0] * 7
    for d, v in zip(days, values, strict=True):
        if abs((d - days[peak]).days) > 10:
            by_day[d.weekday()] += v
    assert max(range(7), key=by_day.__getitem__) == 4               # Friday peaks


# -- sign-in and a full back-fill ----------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_a_backfill_pages_through_and_matches_the_seeded_truth_exactly(name: str) -> None:
    async def go() -> None:
        async with source(name) as src:
            fetched = await src.fetch()
            assert table(fetched) == src.truth()
            assert len(fetched.points) == len(src.truth())
            assert fetched.pages >= 3 and fetched.gaps == []
            for identity in fetched.identities.values():
                assert identity.source == name and identity.name
            if name not in NO_RECORDINGS:
                recordings = [i for i in fetched.identities.values()
                              if i.entity_kind != "playlist"]
                assert len(recordings) == len(src.fake.tracks)
            if src.connector.spec.auth in RENEWING_AUTH:
                assert src.fake.stats.token_requests == 1     # one token for the run
    run(go())


RENEWING_AUTH = ("oauth_client_credentials", "refresh_token")


def test_isrcs_and_durations_reach_the_identities() -> None:
    async def go() -> None:
        async with source("spotify") as src:
            fetched = await src.fetch()
        by_isrc = {i.isrc: i for i in fetched.identities.values()}
        for track in src.fake.tracks:
            assert by_isrc[track.isrc].duration_ms == track.duration_ms
            assert by_isrc[track.isrc].name == track.name
    run(go())


@pytest.mark.parametrize("name", SIGNED)
def test_wrong_credentials_are_refused_as_revoked(name: str) -> None:
    wrong = Credentials("client-id", "wrong-secret", "wrong-key", "wrong-refresh")

    async def go() -> None:
        async with source(name, wrong) as src:
            with pytest.raises(TokenRevoked) as caught:
                await src.fetch()
            assert caught.value.progress is not None and caught.value.progress.points == 0
    run(go())


def test_musicbrainz_is_asked_with_a_meaningful_user_agent() -> None:
    async def go() -> None:
        async with source("musicbrainz") as src:
            async with src.session.get(f"{src.base_url}/ws/2/recording",
                                       params={"artist": src.fake.artist_id},
                                       headers={"User-Agent": "curl"}) as response:
                assert response.status == 403
            assert table(await src.fetch()) == src.truth()
    run(go())


@pytest.mark.parametrize("name", RENEWING)
def test_an_access_token_expiring_mid_backfill_is_renewed_and_the_run_goes_on(
        name: str) -> None:
    async def go() -> None:
        async with source(name) as src:
            src.fake.fail("expired", after=1)
            fetched = await src.fetch()
            assert table(fetched) == src.truth()
            assert src.fake.stats.token_requests == 2
    run(go())


@pytest.mark.parametrize("name", SIGNED)
def test_a_token_revoked_mid_backfill_says_how_far_it_got(name: str) -> None:
    async def go() -> None:
        async with source(name) as src:
            src.fake.fail("revoked", after=2)
            with pytest.raises(TokenRevoked) as caught:
                await src.fetch()
            progress = caught.value.progress
            assert progress is not None and progress.pages == 2
            assert progress.fetched is not None
            assert 0 < progress.points == len(progress.fetched.points)
            assert_true_subset(progress.fetched, src.truth())
            assert len(progress.fetched.points) < len(src.truth())
    run(go())


def test_a_windowed_backfill_reports_the_last_complete_window() -> None:
    async def go() -> None:
        async with source("tiktok") as src:
            src.fake.fail("revoked", after=2)
            with pytest.raises(TokenRevoked) as caught:
                await src.fetch()
            assert caught.value.progress.complete_through == START + timedelta(days=59)
    run(go())


# -- throttles, quotas, server errors ----------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_a_throttle_is_waited_out_as_the_source_asks_then_the_run_goes_on(name: str) -> None:
    async def go() -> None:
        async with source(name) as src:
            src.fake.fail("rate_limited", retry_after=7, after=1)
            fetched = await src.fetch()
            assert table(fetched) == src.truth()
            assert len(src.connector.waits) == 1
            said = SAID_WAIT[name]
            if said is not None:   # X's and Twitch's resets are whole Unix seconds
                assert src.connector.waits == [pytest.approx(said, abs=1.0)]
            else:
                assert 0 <= src.connector.waits[0] <= src.connector.spec.backoff.base_s
    run(go())


@pytest.mark.parametrize("name", QUOTAS)
def test_a_spent_quota_stops_the_run_until_it_resets(name: str) -> None:
    async def go() -> None:
        async with source(name) as src:
            src.fake.fail("quota", after=1)
            with pytest.raises(QuotaExhausted) as caught:
                await src.fetch()
            assert caught.value.resets_at > NOW and not caught.value.retryable
            assert caught.value.progress.pages == 1
            assert src.connector.waits == []
    run(go())


def test_youtube_daily_units_are_counted_here_and_reset_at_pacific_midnight() -> None:
    async def go() -> None:
        async with source("youtube", rate_limit=RateLimit(100, 100, units=2,
                                                          quota_reset_tz="America/Los_Angeles"
                                                          )) as src:
            with pytest.raises(QuotaExhausted) as caught:
                await src.fetch()
            assert caught.value.progress.pages == 2
            assert src.fake.stats.api_answers == 2             # the third was never sent
            assert caught.value.resets_at == datetime(2024, 7, 1, 7, tzinfo=UTC)  # PDT
    run(go())


@pytest.mark.parametrize("name", NAMES)
def test_server_errors_are_retried_with_jittered_backoff_then_succeed(name: str) -> None:
    async def go() -> None:
        async with source(name) as src:
            src.fake.fail("server", times=2, after=1)
            fetched = await src.fetch()
            assert table(fetched) == src.truth()
            base = src.connector.spec.backoff.base_s
            first, second = src.connector.waits
            assert 0 <= first <= base and 0 <= second <= 2 * base and first != second
    run(go())


def test_a_source_that_keeps_failing_is_given_up_after_its_attempts() -> None:
    async def go() -> None:
        async with source("spotify") as src:
            src.fake.fail("server", times=50)
            with pytest.raises(ServerError):
                await src.fetch()
            assert len(src.connector.waits) == src.connector.spec.backoff.attempts - 1
    run(go())


@pytest.mark.parametrize("name", NAMES)
def test_a_page_cut_short_is_fetched_again(name: str) -> None:
    async def go() -> None:
        async with source(name) as src:
            src.fake.fail("partial", after=1)
            assert table(await src.fetch()) == src.truth()
            assert len(src.connector.waits) == 1
    run(go())


def test_random_failures_are_reproducible_by_seed_and_survived() -> None:
    async def once() -> tuple[list[str], dict]:
        async with source("shazam", fail_rate=0.25, fail_seed=5) as src:
            fetched = await src.fetch()
            assert table(fetched) == src.truth()
            return src.fake.stats.injected, table(fetched)

    first, second = run(once()), run(once())
    assert first == second and len(first[0]) >= 3
    assert {"random:rate_limited", "random:server", "random:partial"} <= set(first[0])


def test_the_rolling_window_paces_requests() -> None:
    async def go() -> None:
        async with source("apple_music", rate_limit=RateLimit(5, 1)) as src:
            began = time.monotonic()
            fetched = await src.fetch()
            elapsed = time.monotonic() - began
            assert fetched.requests == fetched.pages == 29   # 13 of plays, 16 of playlists
            # five a second: the 29th request cannot leave before (29 - 5) / 5 s; how much
            # of that the pacer waited depends on how slow each request was (load)
            assert elapsed >= (29 - 5) / 5, elapsed
            assert src.connector.pacer.waited_s > 0
    run(go(), timeout=30)


# -- bad answers ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_a_renamed_field_raises_schema_changed_naming_it(name: str) -> None:
    async def go() -> None:
        async with source(name) as src:
            src.fake.fail("renamed", after=1)
            with pytest.raises(SchemaChanged) as caught:
                await src.fetch()
            old = src.fake.rename[0]
            assert old in caught.value.field.split("."), caught.value.field
            assert old in str(caught.value)
            progress = caught.value.progress
            assert progress.pages == 1
            assert_true_subset(progress.fetched, src.truth())  # the bad page kept nothing
    run(go())


@pytest.mark.parametrize("name", NAMES)
def test_a_negative_count_is_refused(name: str) -> None:
    async def go() -> None:
        async with source(name) as src:
            src.fake.fail("negative", after=1)
            with pytest.raises(SchemaChanged) as caught:
                await src.fetch()
            assert src.fake.count_field in caught.value.field.split("."), caught.value.field
            assert ">= 0" in caught.value.detail or "greater than or equal to 0" in \
                caught.value.detail
            assert_true_subset(caught.value.progress.fetched, src.truth())
    run(go())


@pytest.mark.parametrize("name", NAMES)
def test_an_empty_page_ends_the_pagination_cleanly(name: str) -> None:
    async def go() -> None:
        async with source(name) as src:
            src.fake.fail("empty", after=1)
            fetched = await src.fetch()
            assert_true_subset(fetched, src.truth())
            assert 0 < len(fetched.points) < len(src.truth())
            if src.connector.spec.history:
                assert fetched.gaps                             # what is missing is told
    run(go())


@pytest.mark.parametrize("name", NAMES)
def test_a_duplicated_page_is_detected_instead_of_looping(name: str) -> None:
    async def go() -> None:
        async with source(name) as src:
            src.fake.fail("duplicate", after=1)
            with pytest.raises(DuplicatePage, match="repeats the page before"):
                await src.fetch()
    run(go())


def test_a_cursor_served_twice_is_detected() -> None:
    async def go() -> None:
        async with source("shazam") as src:
            cursor = base64.urlsafe_b64encode(b"o:100").decode()   # the fake's second page
            src.connector.next_cursor = lambda page: cursor  # type: ignore[method-assign]
            with pytest.raises(DuplicatePage, match="cursor"):
                await src.fetch()
    run(go())


@pytest.mark.parametrize("name", HISTORY)
def test_a_gap_in_the_series_is_reported_not_invented(name: str) -> None:
    async def go() -> None:
        async with source(name) as src:
            missing = [date(2024, 5, 10), date(2024, 5, 11), date(2024, 6, 2)]
            src.fake.drop_days(*missing)
            fetched = await src.fetch()
            assert table(fetched) == src.truth()                # nothing filled in
            assert not {p.at.date() for p in fetched.points} & set(missing)
            series = {p.series for p in fetched.points if p.metric not in SPARSE_METRICS}
            assert len(fetched.gaps) == 2 * len(series)   # a track off a playlist: no gap
            runs = {(g.first.date(), g.last.date()) for g in fetched.gaps}
            assert runs == {(missing[0], missing[1]), (missing[2], missing[2])}
            assert all(isinstance(g, Gap) and g.source == name for g in fetched.gaps)
    run(go())


@pytest.mark.parametrize("name", SNAPSHOT)
def test_a_source_without_history_refuses_a_backfill_and_says_so(name: str) -> None:
    async def go() -> None:
        async with source(name) as src:
            with pytest.raises(NoHistory, match="cannot be back-filled"):
                await src.connector.fetch(src.entity, START, END)
            assert src.fake.stats.requests == 0
    run(go())


def test_a_reversed_range_is_refused() -> None:
    async def go() -> None:
        async with source("spotify") as src:
            with pytest.raises(ValueError, match="swap them"):
                await src.connector.fetch(src.entity, END, START)
    run(go())


def test_a_failure_kind_a_source_does_not_have_is_refused() -> None:
    with pytest.raises(ValueError, match="no failure 'quota'"):
        FAKES["spotify"]().fail("quota")


def test_failures_can_be_queued_over_http() -> None:
    async def go() -> None:
        async with source("discogs") as src:
            async with src.session.post(f"{src.base_url}/_fake/fail",
                                        json={"kind": "server", "times": 1}) as response:
                assert response.status == 200
            async with src.session.post(f"{src.base_url}/_fake/fail",
                                        json={"kind": "bogus"}) as response:
                assert response.status == 400
            assert table(await src.fetch()) == src.truth()
            assert src.fake.stats.injected == ["server"]
    run(go())


def test_every_error_is_a_source_error_naming_its_source() -> None:
    async def go() -> None:
        async with source("lastfm", Credentials(api_key="nope")) as src:
            with pytest.raises(SourceError, match=r"^lastfm: error 10"):
                await src.fetch()
    run(go())
