"""The page's source modules (``web/src``) loaded one by one in headless Chromium, with
no server: a test imports a module and drives its DOM directly.

Chromium will not import ES modules from ``file://``, so every request to the made-up
origin :data:`ORIGIN` is answered by Playwright from the repository: ``/src/...`` from
``web/src``, anything else with an empty page.
"""

from __future__ import annotations

from typing import Any

from pagebrowser import REPO

ORIGIN = "http://modules.test"
SOURCES = REPO / "web" / "src"


def module_page(browser: Any) -> Any:
    """A new page at :data:`ORIGIN` whose ``import('/src/x.js')`` loads ``web/src/x.js``."""
    context = browser.new_context()
    page = context.new_page()

    def answer(route: Any) -> None:
        path = route.request.url.removeprefix(ORIGIN).split("?")[0]
        if path.startswith("/src/"):
            source = (SOURCES / path.removeprefix("/src/")).resolve()
            if SOURCES in source.parents and source.is_file():
                route.fulfill(body=source.read_text(), content_type="text/javascript")
                return
            route.fulfill(status=404, body=f"no {path} in web/src")
            return
        route.fulfill(body="<!doctype html><html><body></body></html>",
                      content_type="text/html")

    page.route(f"{ORIGIN}/**", answer)
    page.goto(f"{ORIGIN}/")
    return page

