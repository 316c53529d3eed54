"""The developer dashboard at /developer: its committed bundle built from the current
sources, served to signed-in people only, and in real headless Chromium against
``dawserver serve``: a key's requests and errors charted with Chart.js as the usage
route reports them, with no console errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from accounts_helpers import Person, accounts_server
from loopback import free_port
from pagebrowser import CHROMIUM, CHROMIUM_FLAGS, REPO, PageLog, ServerProcess, browser_missing
from smtp_server import SmtpServer
from test_page import WEB, sources_hash

from dawserver.core_plugin import DEVELOPER_STATIC
from dawserver.plugin_pages import bundle_version

FILES = ("developer.js", "developer.css", "developer.html", "build-info.json")
EMAIL, PASSWORD = "ada@example.org", "correct horse battery"
HASHING = {"DAW_PASSWORD_HASHING": "1,1024,1"}


def test_committed_developer_bundle_was_built_from_the_current_sources() -> None:
    info = json.loads((DEVELOPER_STATIC / "build-info.json").read_text())
    assert info["sources_sha256"] == sources_hash(), \
        "dawserver/public_api/static/ is stale: run 'npm run build' in web/ and commit it"
    assert info["chartjs"].startswith("4.")
    for name in FILES:
        assert (DEVELOPER_STATIC / name).is_file(), name


@pytest.mark.skipif(shutil.which("node") is None or not (WEB / "node_modules" / "esbuild").is_dir(),
                    reason="web/node_modules is missing: scripts/setup.sh runs 'npm ci' in web/")
def test_npm_build_reproduces_the_committed_developer_bundle_byte_for_byte(
        tmp_path: Path) -> None:
    subprocess.run(["node", "build.mjs", "--outdir", str(tmp_path)], cwd=WEB, check=True,
                   capture_output=True, timeout=120)
    for name in FILES:
        assert (tmp_path / "developer" / name).read_bytes() == \
            (DEVELOPER_STATIC / name).read_bytes(), name


@pytest.mark.asyncio
@pytest.mark.timeout(120)
async def test_the_dashboard_is_served_to_signed_in_people_only(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    version = bundle_version(DEVELOPER_STATIC)
    async with accounts_server(tmp_path, smtp_server) as (_, config):
        base = config.base_url
        ada = Person(base, smtp_server, "ada@example.com")
        try:
            async with aiohttp.ClientSession() as visitor:
                async with visitor.get(f"{base}/developer?days=7",
                                       allow_redirects=False) as answer:
                    assert answer.status == 302
                    assert answer.headers["Location"] == (
                        "/account/sign-in?next=/developer%3Fdays%3D7")
                async with visitor.get(f"{base}/api/v1/usage") as answer:
                    assert answer.status == 401
            await ada.sign_up_and_in("Ada")
            async with ada.http.get(f"{base}/developer", allow_redirects=False) as answer:
                assert answer.status == 200 and answer.content_type == "text/html"
                html = await answer.text()
            assert "<title>Developer · Max Booster Studio</title>" in html
            assert f'src="/plugins/core/static/developer.js?v={version}"' in html
            async with ada.http.get(f"{base}/plugins/core/static/developer.js?v={version}"
                                    ) as answer:
                assert answer.status == 200
                assert await answer.read() == (DEVELOPER_STATIC / "developer.js").read_bytes()
        finally:
            await ada.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, object]]:
    if browser_missing() is not None:
        pytest.skip(str(browser_missing()))
    from playwright.sync_api import sync_playwright

    data = tmp_path_factory.mktemp("developer-page") / "data"
    data.mkdir()
    subprocess.run([sys.executable, "-m", "dawserver", "users", "create", EMAIL,
                    "--name", "Ada", "--password-stdin", "--data", str(data)],
                   input=PASSWORD + "\n", text=True, check=True, capture_output=True,
                   cwd=REPO, env={**os.environ, **HASHING}, timeout=60)
    with ServerProcess(data, free_port(), HASHING) as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield server, browser
        finally:
            browser.close()


@pytest.mark.alone  # drives Chromium: see pagebrowser.BROWSER_TEST
@pytest.mark.timeout(180)
def test_the_page_charts_each_key_s_usage_as_the_route_reports_it(served: tuple) -> None:
    server, browser = served
    context = browser.new_context(viewport={"width": 1300, "height": 1000}, locale="en-GB")
    try:
        answer = context.request.post(server.url + "/auth/sign-in",
                                      data={"email": EMAIL, "password": PASSWORD})
        assert answer.ok, answer.text()
        csrf, me = answer.json()["csrf_token"], answer.json()["person"]["id"]
        made = context.request.post(f"{server.url}/accounts/{me}/keys",
                                    data={"name": "ci", "scopes": ["account.read"]},
                                    headers={"X-CSRF-Token": csrf}).json()
        for path in ["/api/v1/projects"] * 4 + ["/api/v1/projects/none-00000000"]:
            context.request.get(server.url + path,
                                headers={"Authorization": f"Bearer {made['key']}"})
        report = context.request.get(server.url + "/api/v1/usage?days=7").json()
        [key] = report["keys"]
        assert key["total"]["requests"] == 5 and key["total"]["errors"] == 1

        page = context.new_page()
        log = PageLog()
        page.on("console", lambda m: log.messages.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: log.messages.append(f"pageerror: {e}"))
        page.goto(f"{server.url}/developer?days=7")
        page.wait_for_selector("body[data-ready=true]", timeout=15000)
        card = page.locator(f"section.key[data-key='{made['id']}']")
        assert card.locator(".requests").text_content() == "5"
        assert card.locator(".errors").text_content() == "1"
        drawn = page.evaluate("""(id) => window.developerCharts[id].map(c => ({
            labels: c.data.labels,
            sets: Object.fromEntries(c.data.datasets.map(d => [d.label, d.data]))}))""",
                              made["id"])
        assert len(drawn[0]["labels"]) == 7 and drawn[0]["labels"][-1] == report["until"]
        assert drawn[0]["sets"]["Requests"][-1] == 5 and drawn[0]["sets"]["Errors"][-1] == 1
        assert sum(drawn[0]["sets"]["Requests"]) == 5
        today = key["days"][-1]
        assert drawn[1]["sets"]["p50 (ms)"][-1] == pytest.approx(today["p50_ms"])
        assert drawn[1]["sets"]["p99 (ms)"][-1] == pytest.approx(today["p99_ms"])
        assert log.errors() == []
    finally:
        context.close()
