"""The analytics page's audience map and benchmark in real headless Debian Chromium, against
``dawserver serve`` and fake Shazam and Boomplay: the world map draws each country filled with
the colour of its figure (read back from the canvas's pixels), per platform as the API
answers; the benchmark section's empty state; no console errors."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from loopback import free_port
from pagebrowser import BROWSER_TEST, plugin_site, served_in_a_thread, wait_for
from test_analytics_dashboard_browser import TODAY, Person, Site

from business.analytics.fakes import FAKES, FakeSources

pytestmark = [*BROWSER_TEST, pytest.mark.timeout(240)]
NAMES = ("shazam", "boomplay")

#: Per country with a figure: its value, the fill the chart gave it, and the canvas pixel at
#: its centroid (RGB).
DRAWN = """() => {
    const chart = window.analyticsMap
    const ctx = chart.canvas.getContext('2d')
    const ratio = chart.currentDevicePixelRatio
    const meta = chart.getDatasetMeta(0)
    return meta.data.map((el, i) => {
        const row = chart.data.datasets[0].data[i]
        const c = el.getCenterPoint()
        const px = ctx.getImageData(Math.round(c.x * ratio), Math.round(c.y * ratio), 1, 1).data
        return {id: String(row.feature.id), value: row.value, fill: el.options.backgroundColor,
                pixel: [px[0], px[1], px[2]]}
    })
}"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    data = tmp_path_factory.mktemp("analytics-audience") / "data"
    data.mkdir()
    fakes = FakeSources([FAKES[name](today=TODAY) for name in NAMES])
    with served_in_a_thread(fakes), plugin_site(data, free_port(), {"analytics": {
            "schedule_check_s": 3600,
            "sources": {name: {"base_url": fakes.base_url(name)} for name in NAMES}}}
            ) as (server, browser):
        yield Site(server, fakes, browser)


@pytest.fixture
def ada(site: Site) -> Iterator[Person]:
    person = Person(site)
    try:
        yield person
    finally:
        person.close()


def rgb(colour: str) -> list[int]:
    """'rgb(1, 2, 3)' or '#010203' as [1, 2, 3]."""
    if colour.startswith("#"):
        return [int(colour[i:i + 2], 16) for i in (1, 3, 5)]
    return [int(float(v)) for v in colour[colour.index("(") + 1:-1].split(",")[:3]]


def check_map(page: Any, entry: dict[str, Any]) -> None:
    drawn = {d["id"]: d for d in page.evaluate(DRAWN)}
    figures = {c["numeric"]: c["value"] for c in entry["countries"]}
    assert figures and set(figures) <= set(drawn)
    for numeric, value in figures.items():
        country = drawn[numeric]
        assert country["value"] == value
        assert country["pixel"] == rgb(country["fill"]), numeric   # filled as coloured
    # more listeners, a darker blue; countries without figures share the lightest colour
    ranked = sorted(figures, key=figures.get)
    shade = [sum(drawn[n]["pixel"]) for n in ranked]
    assert shade == sorted(shade, reverse=True) and shade[0] > shade[-1]
    empty = {d["fill"] for n, d in drawn.items() if n not in figures}
    assert len(empty) == 1 and empty != {drawn[ranked[-1]]["fill"]}


def test_the_map_draws_countries_coloured_by_the_data(ada: Person) -> None:
    ada.sign_in_by_api()
    start = (TODAY - timedelta(days=27)).isoformat()
    for name in NAMES:
        fake = ada.site.fakes[name]
        source = ada.call("POST", "/api/analytics/sources", {
            "source": name, "entity_id": fake.artist_id, "entity_name": "Ada",
            "api_key": "api-key"})
        run = ada.call("POST", f"/api/analytics/sources/{source['source_id']}/backfill",
                       {"from": start, "to": TODAY.isoformat()})
        wait_for(lambda run=run: ada.call(
            "GET", f"/api/analytics/runs/{run['run_id']}")["job_state"] == "done", timeout=90)
    answer = ada.call("GET", f"/api/analytics/audience?from={start}&to={TODAY.isoformat()}")
    assert [a["source"] for a in answer] == ["boomplay", "boomplay", "shazam"]

    # the dates the answer was read for: the page's own default ends on the browser's
    # today, a day later if the test crossed midnight
    page = ada.open(f"?from={start}&to={TODAY.isoformat()}")
    page.locator("#audience-map").wait_for()
    check_map(page, answer[0])
    rows = page.locator("#audience-countries tbody tr")
    assert [rows.nth(i).get_attribute("data-key") for i in range(rows.count())] == [
        c["key"] for c in answer[0]["countries"]]
    page.get_by_label("Platform and figure").select_option(index=2)
    check_map(page, answer[2])
    assert {c["key"] for c in answer[2]["countries"]} == {"BR", "DE", "US"}

    # the benchmark section: these sources report tracks only, so no artist to compare yet
    assert ada.call("GET", "/api/analytics/catalog?kind=artist") == []
    assert "No artist in the catalogue yet" in page.locator("#no-benchmark").text_content()
    assert page.locator("#benchmark-chart").is_hidden()
    assert ada.log.errors() == []
