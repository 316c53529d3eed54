"""Test helpers for the browser page: a real ``dawserver serve`` process and headless Chromium.

The server runs in its own process, as users run it, so the browsers' timings do
not compete with the test's own Python thread for the interpreter.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("DAW_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run",
                  "--autoplay-policy=no-user-gesture-required",
                  "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]
REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "artifacts" / "page"


def browser_missing() -> str | None:
    """Why the browser tests cannot run (None when they can)."""
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        return "Debian chromium is not installed (scripts/setup.sh installs it)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[test]')"
    return None


#: A browser test module's marks: skipped, saying why, where Chromium or Playwright is
#: missing; and ``alone`` under pytest-xdist, as a Chromium page beside another worker's
#: test on two busy cores misses its timeouts.
BROWSER_TEST = [pytest.mark.skipif(browser_missing() is not None, reason=str(browser_missing())),
                pytest.mark.alone]


class ServerProcess:
    """``python -m dawserver serve`` in a subprocess, on a free port, until the block ends."""

    def __init__(self, data_dir: Path, port: int, env: dict[str, str] | None = None) -> None:
        self.data_dir, self.port, self.env = data_dir, port, env or {}
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> ServerProcess:
        log = open(self.data_dir / "server.log", "wb")  # noqa: SIM115 - lives with the process
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dawserver", "serve", "--data", str(self.data_dir),
             "--port", str(self.port)], stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
            env={**os.environ, **self.env})
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2):
                    return self
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("dawserver serve did not start: "
                                       + (self.data_dir / "server.log").read_text()) from None
                time.sleep(0.1)

    def __exit__(self, *exc_info: object) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

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


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.02) -> Any:
    """Poll ``predicate`` until it returns something truthy (then return that); 30 s by
    default: a round trip through the browser and the server can take seconds on a
    loaded machine."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {predicate}")
        time.sleep(interval)


def ride(page: Any, control: Any, start: float, step: float, steps: int,
         midway: Callable[[], None] | None = None) -> None:
    """Play, then drag the slider ``control`` (a locator) during playback as an engineer
    rides it: press at ``start`` of its width, move ``step`` of it ``steps`` times, 50 ms
    apart (calling ``midway`` after half of them), release; pause (the automation pass
    ends) and wait for the page's writer to have sent every batch."""
    control.scroll_into_view_if_needed()
    box = control.bounding_box()
    page.click(".transport .play")
    page.wait_for_timeout(300)
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * start, y)
    page.mouse.down()
    for at in range(steps):
        page.mouse.move(box["x"] + box["width"] * (start + at * step), y)
        page.wait_for_timeout(50)
        if midway is not None and at == steps // 2:
            midway()
    page.mouse.up()
    page.wait_for_timeout(300)
    page.click(".transport .play")  # pause: the pass ends
    page.evaluate("window.daw.writer.settled()")


def screenshot(page: Any, name: str) -> Path:
    """Save a screenshot under artifacts/page/ and return its path."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


# -- a plug-in page's site: fakes in a thread, a person, the server, one Chromium --------------

#: The person the plug-in pages' browser tests sign in as.
EMAIL, PASSWORD = "ada@example.org", "correct horse battery"
#: Fast password hashing for the test server (argon2: time, memory KiB, parallelism).
HASHING = {"DAW_PASSWORD_HASHING": "1,1024,1"}


@contextlib.contextmanager
def served_in_a_thread(service: Any) -> Iterator[Any]:
    """``async with service`` entered in an event loop of its own thread (the fakes a
    server process talks to), left when the block ends."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(service.__aenter__(), loop).result(30)
        yield service
    finally:
        asyncio.run_coroutine_threadsafe(service.__aexit__(None, None, None), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@contextlib.contextmanager
def plugin_site(data: Path, port: int, plugins: dict[str, Any]) -> Iterator[tuple[Any, Any]]:
    """A ``dawserver serve`` with ``plugins`` (its ``plugins.json``) and the person
    :data:`EMAIL` created, and one headless Chromium: ``(server, browser)``."""
    from playwright.sync_api import sync_playwright

    (data / "plugins.json").write_text(json.dumps(plugins))
    subprocess.run([sys.executable, "-m", "dawserver", "users", "create", EMAIL,
                    "--name", "Ada", "--password-stdin", "--data", str(data)],
                   input=PASSWORD + "\n", text=True, check=True, capture_output=True,
                   cwd=REPO, env={**os.environ, **HASHING}, timeout=60)
    with ServerProcess(data, port, HASHING) as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield server, browser
        finally:
            browser.close()


class BrowserPerson:
    """:data:`EMAIL` in a browser context of her own: the page (its console kept in
    ``log``), and the API as her once signed in."""

    def __init__(self, browser: Any, url: str, **context: Any) -> None:
        self.url = url
        self.context = browser.new_context(**context)
        self.page = self.context.new_page()
        self.log = PageLog()
        self.page.on("console", lambda m: self.log.messages.append(f"{m.type}: {m.text}"))
        self.page.on("pageerror", lambda e: self.log.messages.append(f"pageerror: {e}"))
        self.csrf = ""

    def sign_in_by_api(self) -> None:
        """Sign in through ``/auth/sign-in`` (the page shares the session cookie)."""
        answer = self.context.request.post(self.url + "/auth/sign-in",
                                           data={"email": EMAIL, "password": PASSWORD})
        assert answer.ok, answer.text()
        self.csrf = answer.json()["csrf_token"]

    def call(self, method: str, path: str, body: Any = None) -> Any:
        """An API call as her; the answer's JSON (a failure is an AssertionError)."""
        answer = self.context.request.fetch(self.url + path, method=method, data=body,
                                            headers={"X-CSRF-Token": self.csrf},
                                            max_redirects=0)
        assert answer.ok, f"{method} {path}: {answer.status} {answer.text()}"
        return answer.json()

    def loads(self) -> int:
        """How many times the page has loaded its data (``body[data-loads]``)."""
        return int(self.page.evaluate("document.body.dataset.loads || 0"))

    def close(self) -> None:
        self.context.close()
