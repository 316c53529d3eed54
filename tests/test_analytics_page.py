"""The analytics dashboard at /analytics, served by the plug-in page mechanism: signed out
sent to sign in, signed in the page with its versioned bundle; and the bundle committed in
business/analytics/static being built from the current sources (Chart.js 4 locked)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import aiohttp
import pytest
from accounts_helpers import Person, accounts_server
from smtp_server import SmtpServer
from test_page import WEB, sources_hash

from business.analytics.plugin import STATIC_DIR
from dawserver.plugin_pages import bundle_version

FILES = ("dashboard.js", "dashboard.css", "dashboard.html", "build-info.json")


def test_committed_analytics_bundle_was_built_from_the_current_sources() -> None:
    info = json.loads((STATIC_DIR / "build-info.json").read_text())
    assert info["sources_sha256"] == sources_hash(), \
        "business/analytics/static/ is stale: run 'npm ci && npm run build' in web/ and commit it"
    assert info["chartjs"].startswith("4.")
    for name in FILES:
        assert (STATIC_DIR / name).is_file(), name
    lock = json.loads((WEB / "package-lock.json").read_text())["packages"]
    assert lock["node_modules/chart.js"]["version"].startswith("4.")
    assert lock["node_modules/chart.js"]["license"] == "MIT"


@pytest.mark.skipif(shutil.which("node") is None or not (WEB / "node_modules" / "esbuild").is_dir(),
                    reason="web/node_modules is missing: scripts/setup.sh runs 'npm ci' in web/")
def test_npm_build_reproduces_the_committed_analytics_bundle_byte_for_byte(
        tmp_path: Path) -> None:
    subprocess.run(["node", "build.mjs", "--outdir", str(tmp_path)], cwd=WEB, check=True,
                   capture_output=True, timeout=120)
    for name in FILES:
        assert (tmp_path / "analytics" / name).read_bytes() == (STATIC_DIR / name).read_bytes(), \
            name


@pytest.mark.asyncio
@pytest.mark.timeout(120)
async def test_the_dashboard_is_served_to_signed_in_people_only(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    version = bundle_version(STATIC_DIR)
    async with accounts_server(tmp_path, smtp_server) as (_, config):
        base = config.base_url
        ada = Person(base, smtp_server, "ada@example.com")
        try:
            async with aiohttp.ClientSession() as visitor:
                async with visitor.get(f"{base}/analytics?from=2024-06-01&to=2024-06-28",
                                       allow_redirects=False) as answer:
                    assert answer.status == 302
                    assert answer.headers["Location"] == (
                        "/account/sign-in?next=/analytics%3Ffrom%3D2024-06-01%26to%3D2024-06-28")
                async with visitor.get(f"{base}/api/analytics/platforms") as answer:
                    assert answer.status == 401
            await ada.sign_up_and_in("Ada")
            http = ada.http
            async with http.get(f"{base}/analytics", allow_redirects=False) as answer:
                assert answer.status == 200 and answer.content_type == "text/html"
                assert answer.headers["Cache-Control"] == "no-store"
                html = await answer.text()
            assert "<title>Analytics · Max Booster Studio</title>" in html
            assert f'src="/plugins/analytics/static/dashboard.js?v={version}"' in html
            assert f'href="/plugins/analytics/static/dashboard.css?v={version}"' in html
            async with http.get(f"{base}/plugins/analytics/static/dashboard.js?v={version}"
                                ) as answer:
                assert answer.status == 200 and "javascript" in answer.content_type
                assert await answer.read() == (STATIC_DIR / "dashboard.js").read_bytes()
            async with http.get(f"{base}/plugins/analytics/static/calendar.js") as answer:
                assert answer.status == 404   # the social page's files are its own
            async with http.get(f"{base}/api/analytics/platforms") as answer:
                assert answer.status == 200 and len(await answer.json()) >= 25
        finally:
            await ada.close()
