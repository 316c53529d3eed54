"""When the page counts a slider as held (web/src/dom.js ``isHeld``, ``holdTracker``):
from the press until the pointer is let go, or until the window loses focus mid-press
(another application took it, and no pointer up will come), in headless Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from page_modules import module_page
from pagebrowser import BROWSER_TEST, CHROMIUM, CHROMIUM_FLAGS

pytestmark = [*BROWSER_TEST, pytest.mark.timeout(120)]

SLIDER = """async () => {
  const { h, holdTracker, isHeld } = await import('/src/dom.js')
  window.released = []
  const hold = holdTracker((e) => window.released.push(Number(e.target.value)))
  const slider = h('input', { type: 'range', min: 0, max: 100, step: 1, value: 10,
    style: 'width:400px', ...hold.attrs })
  document.body.append(slider)
  window.state = () => ({ held: isHeld(slider), tracked: hold.held(), released: window.released })
  window.removeSlider = () => slider.remove()
}"""


@pytest.fixture
def page() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            page = module_page(browser)
            page.evaluate(SLIDER)
            yield page
        finally:
            browser.close()


def _press_and_move(page: Any) -> None:
    box = page.locator("input[type=range]").bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.1, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.5, y, steps=4)


def test_a_slider_is_held_from_press_to_release(page: Any) -> None:
    _press_and_move(page)
    assert page.evaluate("window.state()") == {"held": True, "tracked": True, "released": []}
    # an element losing focus is not the window losing it: still held
    page.evaluate("document.body.dispatchEvent(new FocusEvent('blur'))")
    assert page.evaluate("window.state()")["held"] is True
    page.mouse.up()
    state = page.evaluate("window.state()")
    assert state["held"] is False and state["tracked"] is False
    assert len(state["released"]) == 1 and 45 <= state["released"][0] <= 55


def test_the_window_losing_focus_mid_press_lets_the_slider_go(page: Any) -> None:
    _press_and_move(page)
    page.evaluate("window.dispatchEvent(new FocusEvent('blur'))")  # no pointer up comes
    state = page.evaluate("window.state()")
    assert state["held"] is False and state["tracked"] is False
    assert len(state["released"]) == 1 and 45 <= state["released"][0] <= 55  # released once
    page.mouse.up()  # the up that comes later, if any, releases nothing more
    assert len(page.evaluate("window.state()")["released"]) == 1


def test_a_slider_taken_out_of_the_page_mid_press_is_released_when_let_go(page: Any) -> None:
    """A collaborator removing the effect rebuilds its card under the held slider: its
    release (which ends an automation pass) still comes, once (Chromium ends the press
    as the slider goes; the window's pointer up covers browsers that do not)."""
    _press_and_move(page)
    page.evaluate("window.removeSlider()")
    page.mouse.up()
    state = page.evaluate("window.state()")
    assert state["tracked"] is False
    assert len(state["released"]) == 1 and 45 <= state["released"][0] <= 55


def test_the_browser_taking_the_pointer_away_releases_the_slider(page: Any) -> None:
    _press_and_move(page)
    page.evaluate("window.dispatchEvent(new PointerEvent('pointercancel'))")  # no up follows
    state = page.evaluate("window.state()")
    assert state["tracked"] is False and len(state["released"]) == 1
