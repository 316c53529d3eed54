"""A person on the social plug-in's page in a browser (the calendar and composer tests):
connecting a channel through a fake network's OAuth page, opening /social, and the
console errors besides the refusals a test provoked."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from pagebrowser import BrowserPerson

#: How Chromium logs a 4xx answer to the page (a refusal a test may provoke on purpose).
REFUSED = "error: Failed to load resource: the server responded with a status of 4"


class SocialPerson(BrowserPerson):
    """Ada in a browser context of her own, on the social page and its routes."""

    def connect(self, network: str, account: str = "") -> str:
        """Connect a channel on ``network`` of Ada's (or her organisation ``account``'s)
        through the routes and the fake's OAuth page; its id."""
        request, url = self.context.request, self.url
        named = f"?account={account}" if account else ""
        start = request.get(f"{url}/api/social/channels/connect/{network}{named}",
                            max_redirects=0)
        assert start.status == 302, start.text()
        granted = request.get(start.headers["location"], max_redirects=0)
        assert granted.status == 302, granted.text()
        back = urlsplit(granted.headers["location"])
        done = request.get(f"{url}{back.path}?{back.query}", max_redirects=0)
        assert done.status == 302, done.text()
        return done.headers["location"].split("social_channel=")[1]

    def open(self, query: str = "") -> Any:
        """/social (with ``query``), once the page says it is ready."""
        self.page.goto(f"{self.url}/social{query}")
        self.page.wait_for_selector("body[data-ready=true]", timeout=15000)
        return self.page

    def errors(self, refusals: int) -> list[str]:
        """Console errors other than the ``refusals`` 4xx answers a test provoked."""
        errors = self.log.errors()
        refused = [e for e in errors if e.startswith(REFUSED)]
        assert len(refused) == refusals, errors
        return [e for e in errors if not e.startswith(REFUSED)]
