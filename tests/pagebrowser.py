"""Test helpers for the browser page: a server on its own thread and headless Chromium.

The server (``create_app``) runs on a private event loop in a thread so that the
synchronous Playwright API can drive real Debian Chromium from the test thread.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import threading
import urllib.request
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from dawserver.app import create_app
from dawserver.config import ServerConfig

CHROMIUM = os.environ.get("DAW_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run",
                  "--autoplay-policy=no-user-gesture-required",
                  "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts" / "page"


def browser_missing() -> str | None:
    """Why the browser tests cannot run (None when they can)."""
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        return "Debian chromium is not installed (scripts/setup.sh installs it)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[test]')"
    return None


class ServerThread:
    """``create_app(config)`` served on ``config.port`` from a background event loop."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.loop = asyncio.new_event_loop()
        self.app: web.Application | None = None
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self.loop.run_forever, name="page-server",
                                        daemon=True)

    def __enter__(self) -> ServerThread:
        self._thread.start()
        self.call(self._start())
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.call(self._runner.cleanup())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()

    async def _start(self) -> None:
        self.app = create_app(self.config)
        self._runner = web.AppRunner(self.app, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.config.host, self.config.port).start()

    def call(self, coro: Coroutine[Any, Any, Any], timeout: float = 30) -> Any:
        """Run ``coro`` on the server's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    @property
    def url(self) -> str:
        return self.config.base_url

    def get(self, path: str, token: str) -> bytes:
        """GET ``path`` with a Bearer token; the body."""
        request = urllib.request.Request(self.url + path,
                                         headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.read()

    def document(self, project_id: str, token: str) -> dict[str, Any]:
        """The server's current document of a project (``GET /projects/ID``)."""
        return json.loads(self.get(f"/projects/{project_id}", token))["document"]


@dataclass
class PageLog:
    """Console messages and uncaught errors of one page."""

    messages: list[str] = field(default_factory=list)

    def errors(self) -> list[str]:
        return [m for m in self.messages if m.startswith(("error:", "pageerror:"))]


def open_page(browser: Any, url: str, *, viewport: tuple[int, int] = (1400, 900)
              ) -> tuple[Any, PageLog]:
    """A new browser context (one user) showing ``url``, ready; and its console log."""
    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]},
                                  permissions=["microphone"])
    page = context.new_page()
    log = PageLog()
    page.on("console", lambda m: log.messages.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: log.messages.append(f"pageerror: {e}"))
    page.goto(url)
    page.wait_for_selector("body[data-ready=true]", timeout=15000)
    return page, log


def screenshot(page: Any, name: str) -> Path:
    """Save a screenshot under artifacts/page/ and return its path."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path
