"""The analytics dashboard (/analytics) in real headless Debian Chromium, against ``dawserver
serve`` and fake Spotify and TIDAL: empty states, a source connected in the page and
back-filled through the ingestion job, the KPI figures the API answers for the same range,
the Chart.js chart's data following the date range, and an organisation's dashboard chosen
in the page; no console errors."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from loopback import free_port
from pagebrowser import (
    BROWSER_TEST,
    BrowserPerson,
    ServerProcess,
    plugin_site,
    screenshot,
    served_in_a_thread,
    wait_for,
)

from business.analytics.fakes import FAKES, FakeSources

pytestmark = [*BROWSER_TEST, pytest.mark.timeout(240)]

TODAY = datetime.now(UTC).date()
NAMES = ("spotify", "tidal")


@dataclass
class Site:
    server: ServerProcess
    fakes: FakeSources
    browser: Any

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """Fake Spotify and TIDAL (their series end today), a server reading them, Chromium."""
    data = tmp_path_factory.mktemp("analytics-dashboard") / "data"
    data.mkdir()
    fakes = FakeSources([FAKES[name](today=TODAY) for name in NAMES])
    with served_in_a_thread(fakes), plugin_site(data, free_port(), {"analytics": {
            "schedule_check_s": 3600,
            "sources": {name: {"base_url": fakes.base_url(name)} for name in NAMES}}}
            ) as (server, browser):
        yield Site(server, fakes, browser)


class Person(BrowserPerson):
    """Ada in a browser context of her own: the page, and the API as her."""

    def __init__(self, site: Site) -> None:
        super().__init__(site.browser, site.url, viewport={"width": 1400, "height": 1100},
                         locale="en-GB")
        self.site = site

    def open(self, query: str = "") -> Any:
        self.page.goto(f"{self.site.url}/analytics{query}")
        self.page.wait_for_selector("body[data-ready=true]", timeout=15000)
        return self.page



@pytest.fixture
def ada(site: Site) -> Iterator[Person]:
    person = Person(site)
    try:
        yield person
    finally:
        person.close()


def chart_data(page: Any) -> dict[str, Any]:
    """What the Chart.js instance draws: its day labels and each platform's values."""
    return page.evaluate("""() => {
        const chart = window.analyticsChart
        return {labels: chart.data.labels,
                sets: Object.fromEntries(chart.data.datasets.map(d => [d.source, d.data]))}
    }""")


def by_day(points: list[list[float]]) -> dict[str, float]:
    return {datetime.fromtimestamp(at, UTC).date().isoformat(): v for at, v in points}


def shown_values(page: Any, entity: str) -> dict[str, float | None]:
    cells = page.locator(f"#kpi-table tr[data-entity='{entity}'] td[data-kpi]")
    return {cells.nth(i).get_attribute("data-kpi"):
            (float(v) if (v := cells.nth(i).get_attribute("data-value")) else None)
            for i in range(cells.count())}


def test_connect_backfill_and_read_the_dashboard(ada: Person) -> None:
    ada.sign_in_by_api()
    page = ada.open()
    page.locator("#no-sources").wait_for()
    assert "Connect one below" in page.locator("#no-sources").text_content()
    assert "connect a source" in page.locator("#no-figures").text_content()
    assert page.title() == "Analytics · Max Booster Studio"

    # connect fake Spotify in the page, then back-fill the default range (the last 28 days)
    spotify = ada.site.fakes["spotify"]
    page.locator("#connect-source").select_option(label="Spotify for Artists")
    page.get_by_label("Your id on the platform").fill(spotify.artist_id)
    page.get_by_label("Name in the catalogue").fill("Ada")
    page.get_by_label("Client id").fill("client-id")
    page.get_by_label("Client secret").fill("client-secret")
    assert page.get_by_label("API key").is_hidden()
    page.get_by_role("button", name="Connect", exact=True).click()
    page.get_by_role("status").filter(has_text="Spotify for Artists connected").wait_for()
    row = page.locator("tr[data-source='spotify']")
    row.wait_for()
    assert row.get_attribute("data-state") == "active" and "never" in row.text_content()
    row.get_by_role("button", name="Back-fill Spotify for Artists for the chosen range").click()
    page.get_by_role("status").filter(has_text="Back-fill of Spotify for Artists done").wait_for(
        timeout=90000)
    page.locator("#kpi-table").wait_for()
    assert "never" not in page.locator("tr[data-source='spotify']").text_content()

    start, end = (TODAY - timedelta(days=27)).isoformat(), TODAY.isoformat()
    tracks = ada.call("GET", "/api/analytics/catalog?kind=recording")
    assert len(tracks) == len(spotify.tracks)
    checked = 0
    for track in tracks:
        answer = ada.call("GET", f"/api/analytics/kpis?entity={track['entity_id']}"
                                 f"&from={start}&to={end}")
        shown = shown_values(page, track["entity_id"])
        expected = {k: v["value"] for k, v in answer["kpis"].items()}
        assert shown == pytest.approx(expected)
        assert expected["streams"] > 0 and expected["listeners"] > 0
        checked += 1
    assert checked == len(spotify.tracks)

    # the chosen track's cards and chart: the API's figures, one line for Spotify
    chosen = page.locator("#kpi-table tr.chosen").get_attribute("data-entity")
    answer = ada.call("GET", f"/api/analytics/kpis?entity={chosen}&from={start}&to={end}")
    streams = page.locator(".kpi-card[data-kpi='streams']")
    assert float(streams.get_attribute("data-value")) == pytest.approx(
        answer["kpis"]["streams"]["value"])
    for window in ("7d", "28d"):
        change = answer["kpis"]["streams"]["growth"][window]["change"]
        shown = streams.locator(f"dd[data-window='{window}']").get_attribute("data-change")
        assert (float(shown) if shown else None) == pytest.approx(change)
    page.get_by_label("Chart of").select_option("streams")
    data = chart_data(page)
    assert data["labels"][0] == start and data["labels"][-1] == end and len(data["labels"]) == 28
    expected_days = by_day(answer["kpis"]["streams"]["sources"]["spotify"])
    assert dict(zip(data["labels"], data["sets"]["spotify"], strict=True)) == pytest.approx(
        expected_days)
    canvas = page.locator("#trend-canvas")
    assert canvas.get_attribute("role") == "img"
    assert "Streams of" in canvas.get_attribute("aria-label")
    assert page.locator("#trend-table tbody tr").count() == 28
    screenshot(page, "analytics-dashboard")
    page.locator("section.sources").scroll_into_view_if_needed()
    screenshot(page, "analytics-sources")

    # a shorter range: new KPI values and new chart data, as the API answers them
    loads, updates = ada.loads(), int(canvas.get_attribute("data-updates"))
    first = (TODAY - timedelta(days=13)).isoformat()
    last = (TODAY - timedelta(days=7)).isoformat()
    page.get_by_label("From").fill(first)
    page.get_by_label("To", exact=True).fill(last)
    page.get_by_role("button", name="Show range").click()
    wait_for(lambda: ada.loads() > loads and int(canvas.get_attribute("data-updates")) > updates)
    after = chart_data(page)
    assert after["labels"] == [(date.fromisoformat(first) + timedelta(days=n)).isoformat()
                               for n in range(7)]
    narrow = ada.call("GET", f"/api/analytics/kpis?entity={chosen}&from={first}&to={last}")
    assert dict(zip(after["labels"], after["sets"]["spotify"], strict=True)) == pytest.approx(
        by_day(narrow["kpis"]["streams"]["sources"]["spotify"]))
    assert after["sets"]["spotify"] != data["sets"]["spotify"][:7]
    assert shown_values(page, chosen)["streams"] == pytest.approx(
        narrow["kpis"]["streams"]["value"])
    assert f"from={first}" in page.url and f"to={last}" in page.url
    assert ada.log.errors() == []


def test_an_organisations_dashboard_is_chosen_in_the_page(ada: Person) -> None:
    """Night Owls' tracks on Spotify and TIDAL: one catalogue recording per ISRC, its
    streams charted as two lines, each the API's series for that platform."""
    ada.sign_in_by_api()
    org = ada.call("POST", "/accounts", {"name": "Night Owls"})["id"]
    start = (TODAY - timedelta(days=27)).isoformat()
    for name in NAMES:
        fake = ada.site.fakes[name]
        source = ada.call("POST", f"/api/analytics/sources?account={org}", {
            "source": name, "entity_id": fake.artist_id, "entity_name": "Night Owls",
            "client_id": "client-id", "client_secret": "client-secret"})
        run = ada.call("POST", f"/api/analytics/sources/{source['source_id']}/backfill"
                               f"?account={org}", {"from": start, "to": TODAY.isoformat()})
        wait_for(lambda run=run: ada.call(
            "GET", f"/api/analytics/runs/{run['run_id']}?account={org}")["job_state"] == "done",
            timeout=90)

    page = ada.open(f"?from={start}&to={TODAY.isoformat()}")  # the range read below
    loads = ada.loads()
    page.get_by_label("Analytics of").select_option(label="Night Owls")
    wait_for(lambda: ada.loads() > loads)
    page.locator("tr[data-source='tidal']").wait_for()
    page.locator("tr[data-source='spotify']").wait_for()
    assert f"account={org}" in page.url
    tracks = ada.call("GET", f"/api/analytics/catalog?kind=recording&account={org}")
    assert len(tracks) == len(ada.site.fakes["tidal"].tracks)
    track = tracks[0]["entity_id"]
    answer = ada.call("GET", f"/api/analytics/kpis?entity={track}&from={start}"
                             f"&to={TODAY.isoformat()}&account={org}")
    assert shown_values(page, track)["streams"] == pytest.approx(
        answer["kpis"]["streams"]["value"])
    page.locator(f"#kpi-table tr[data-entity='{track}'] button").click()
    page.get_by_label("Chart of").select_option("streams")
    data = chart_data(page)
    assert set(data["sets"]) == {"spotify", "tidal"}
    for name in NAMES:
        assert dict(zip(data["labels"], data["sets"][name], strict=True)) == pytest.approx(
            by_day(answer["kpis"]["streams"]["sources"][name]))
    assert ada.log.errors() == []


def test_milestones_playlists_and_saved_dashboards_in_the_page(ada: Person) -> None:
    """A label's milestones (a threshold of its own crossed), its tracks' playlists and a
    dashboard saved, drawn, exported and shared in the page, each as the API answers."""
    ada.sign_in_by_api()
    org = ada.call("POST", "/accounts", {"name": "Label Three"})["id"]
    spotify = ada.site.fakes["spotify"]
    start = TODAY - timedelta(days=59)
    track = spotify.track_id(0)
    values = [(d, spotify.value(("track", track, "streams", ()), d))
              for d in spotify.days(start, TODAY)]
    top_day, top = max(values[1:], key=lambda dv: dv[1])
    ada.call("POST", f"/api/analytics/thresholds?account={org}",
             {"metric": "streams", "value": top})
    source = ada.call("POST", f"/api/analytics/sources?account={org}", {
        "source": "spotify", "entity_id": spotify.artist_id, "entity_name": "Label Three",
        "client_id": "client-id", "client_secret": "client-secret"})
    run = ada.call("POST", f"/api/analytics/sources/{source['source_id']}/backfill"
                           f"?account={org}", {"from": start.isoformat(),
                                               "to": TODAY.isoformat()})
    wait_for(lambda: ada.call("GET", f"/api/analytics/runs/{run['run_id']}?account={org}"
                              )["job_state"] == "done", timeout=90)
    found = ada.call("GET", f"/api/analytics/milestones?account={org}&limit=20")
    mine = [m for m in found if m["threshold"] == top and m["platform_id"] == track]
    assert len(mine) == 1 and mine[0]["day"] <= top_day.isoformat()

    page = ada.open(f"?account={org}&from={start.isoformat()}&to={TODAY.isoformat()}")
    items = page.locator("#milestone-list li[data-milestone]")
    assert items.count() == len(found)
    assert mine[0]["text"] in page.locator(
        f"#milestone-list li[data-milestone='{mine[0]['milestone_id']}']").text_content()
    placed = ada.call("GET", f"/api/analytics/playlists?account={org}&from={start}&to={TODAY}")
    assert placed and page.locator("#playlist-table tbody tr").count() == len(placed)
    first = placed[0]
    row = page.locator(f"#playlist-table tr[data-playlist='{first['playlist_id']}']"
                       f"[data-track='{first['track_id']}']")
    assert first["playlist_name"] in row.text_content()

    # alert preferences saved in the page are the API's
    page.get_by_text("Alert mail").click()
    page.locator("#alert-unusual_growth").uncheck()
    page.locator("#alert-cooldown").fill("12")
    page.get_by_role("button", name="Save preferences").click()
    page.get_by_role("status").filter(has_text="Alert preferences saved").wait_for()
    assert ada.call("GET", f"/api/analytics/alerts/preferences?account={org}") == {
        "email": True, "kinds": ["threshold"], "cooldown_s": 43200.0}

    # save the chosen track's view as a dashboard; its widget drawn, exported, then shared
    page.get_by_text("Save the chosen entity and range as a dashboard").click()
    page.locator("#new-dashboard-name").fill("Weekly streams")
    page.locator("#new-dashboard-kind").select_option("bar")
    page.get_by_role("button", name="Save as dashboard").click()
    page.get_by_role("status").filter(has_text="Weekly streams").wait_for()
    boards = ada.call("GET", f"/api/analytics/dashboards?account={org}")
    assert [b["name"] for b in boards] == ["Weekly streams"]
    board = boards[0]
    data = ada.call("GET", f"/api/analytics/dashboards/{board['dashboard_id']}/widgets/w1/"
                           f"data?account={org}")
    widget = page.locator(".widget[data-widget='w1']")
    widget.locator("canvas").wait_for()
    assert widget.locator("tbody tr").count() == len(data["rows"]) > 0
    csv_link = widget.get_by_role("link", name="CSV").get_attribute("href")
    assert ada.page.request.get(f"{ada.site.url}{csv_link}").text().count("\n") == \
        len(data["rows"]) + 1
    page.get_by_role("button", name="Share with the team").click()
    page.get_by_role("status").filter(has_text="shared with the team").wait_for()
    assert ada.call("GET", f"/api/analytics/dashboards/{board['dashboard_id']}"
                           f"?account={org}")["shared"] is True
    screenshot(page, "analytics-saved-dashboard")
    assert ada.log.errors() == []
