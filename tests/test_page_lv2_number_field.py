"""An LV2 port without bounds is a number field (web/src/lv2.js portControls): what it
writes while a value is typed, in headless Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from page_modules import module_page
from pagebrowser import BROWSER_TEST, CHROMIUM, CHROMIUM_FLAGS

pytestmark = [*BROWSER_TEST, pytest.mark.timeout(120)]

UNBOUNDED = {"symbol": "offset", "name": "Offset", "minimum": None, "maximum": None,
             "default": 5, "per_sample_rate": False, "toggled": False, "integer": False,
             "enumeration": False, "scale_points": []}


@pytest.fixture
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()


def test_a_half_typed_number_writes_nothing_until_it_reads_as_one(browser: Any) -> None:
    page = module_page(browser)
    page.evaluate("""async (port) => {
      const { portControls } = await import('/src/lv2.js')
      window.writes = []
      const write = (symbol, value) => window.writes.push([symbol, value])
      const options = { rate: 48000, editable: true, write }
      const { rows, show } = portControls({ controls: [port] }, options)
      document.body.append(...rows)
      show({})
    }""", UNBOUNDED)
    field = page.locator("input[type=number][data-param=offset]")
    assert field.input_value() == "5"
    field.fill("")  # cleared to type anew: no value, nothing written
    field.press_sequentially("-12")  # "-" reads as nothing; "-1" and "-12" are numbers
    field.press("Tab")
    assert page.evaluate("window.writes") == [["offset", -1], ["offset", -12]]
