"""YouTube's audience and the benchmark within a genre in real headless Debian Chromium,
against ``dawserver serve`` and a fake YouTube: the world map draws YouTube's countries
as the API answers; the artist without a genre says so, its genres saved in the page
reach the API, and the per-genre table shows what ``/benchmark/genres`` answers; no
console errors."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from loopback import free_port
from pagebrowser import BROWSER_TEST, plugin_site, served_in_a_thread, wait_for
from test_analytics_audience_browser import check_map
from test_analytics_dashboard_browser import TODAY, Person, Site

from business.analytics.fakes import FAKES, FakeSources

pytestmark = [*BROWSER_TEST, pytest.mark.timeout(240)]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    data = tmp_path_factory.mktemp("analytics-genres") / "data"
    data.mkdir()
    fakes = FakeSources([FAKES["youtube"](today=TODAY)])
    with served_in_a_thread(fakes), plugin_site(data, free_port(), {"analytics": {
            "schedule_check_s": 3600,
            "sources": {"youtube": {"base_url": fakes.base_url("youtube")}}}}
            ) as (server, browser):
        yield Site(server, fakes, browser)


@pytest.fixture
def ada(site: Site) -> Iterator[Person]:
    person = Person(site)
    try:
        yield person
    finally:
        person.close()


def test_youtube_audience_and_genres_in_the_page(ada: Person) -> None:
    ada.sign_in_by_api()
    start = (TODAY - timedelta(days=9)).isoformat()
    fake = ada.site.fakes["youtube"]
    source = ada.call("POST", "/api/analytics/sources", {
        "source": "youtube", "entity_id": fake.artist_id, "entity_name": "Ada",
        "client_id": "client-id", "client_secret": "client-secret",
        "refresh_token": "refresh-token"})
    run = ada.call("POST", f"/api/analytics/sources/{source['source_id']}/backfill",
                   {"from": start, "to": TODAY.isoformat()})
    wait_for(lambda: ada.call("GET", f"/api/analytics/runs/{run['run_id']}")["job_state"]
             == "done", timeout=90)
    answer = ada.call("GET", f"/api/analytics/audience?from={start}&to={TODAY.isoformat()}")
    assert [a["metric"] for a in answer] == ["audience_demographic_views", "audience_views"]

    page = ada.open()
    page.locator("#audience-map").wait_for()
    page.get_by_label("Platform and figure").select_option(index=1)
    check_map(page, answer[1])

    [artist] = ada.call("GET", "/api/analytics/catalog?kind=artist")
    page.locator("#no-genre").wait_for()
    page.locator("#artist-genres").fill("Indie Pop, dream pop")
    page.locator("#save-genres").click()
    page.locator("#benchmark-genre-table").wait_for()
    assert ada.call("GET", "/api/analytics/genres") == [
        {"entity_id": artist["entity_id"], "name": artist["name"],
         "genres": ["dream pop", "indie pop"]}]
    ranks = ada.call("GET", f"/api/analytics/benchmark/genres?entity={artist['entity_id']}"
                            f"&from={start}&to={TODAY.isoformat()}")
    rows = page.locator("#benchmark-genre-table tbody tr")
    shown = {(rows.nth(i).get_attribute("data-genre"), rows.nth(i).get_attribute("data-kpi"))
             for i in range(rows.count())}
    assert shown == {(g["genre"], k) for g in ranks["genres"] for k in g["kpis"]}
    assert page.locator("#artist-genres").input_value() == "dream pop, indie pop"
    assert ada.log.errors() == []
