"""The sellers' sales reports page at /sales-reports, served by the plug-in page
mechanism: signed out sent to sign in, signed in the page with its versioned Chart.js
bundle; and the bundle committed in business/marketplace/static built from the current
sources."""

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

from business.marketplace.plugin import STATIC_DIR
from dawserver.plugin_pages import bundle_version

FILES = ("reports.js", "reports.css", "reports.html", "build-info.json")


def test_committed_reports_bundle_was_built_from_the_current_sources() -> None:
    info = json.loads((STATIC_DIR / "build-info.json").read_text())
    assert info["sources_sha256"] == sources_hash(), \
        "business/marketplace/static/ is stale: run 'npm run build' in web/ and commit it"
    assert info["chartjs"].startswith("4.")
    for name in FILES:
        assert (STATIC_DIR / name).is_file(), name
    # the bundle carries Chart.js and asks for the report and the CSV
    script = (STATIC_DIR / "reports.js").read_text()
    assert "/api/marketplace/reports/sales" in script and "customers.csv" in script


@pytest.mark.skipif(shutil.which("node") is None or not (WEB / "node_modules" / "esbuild").is_dir(),
                    reason="web/node_modules is missing: scripts/setup.sh runs 'npm ci' in web/")
def test_npm_build_reproduces_the_committed_reports_bundle_byte_for_byte(
        tmp_path: Path) -> None:
    subprocess.run(["node", "build.mjs", "--outdir", str(tmp_path)], cwd=WEB, check=True,
                   capture_output=True, timeout=120)
    for name in FILES:
        assert (tmp_path / "marketplace" / name).read_bytes() == \
            (STATIC_DIR / name).read_bytes(), name


@pytest.mark.asyncio
@pytest.mark.timeout(120)
async def test_the_reports_page_is_served_to_signed_in_people_only(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    version = bundle_version(STATIC_DIR)
    async with accounts_server(tmp_path, smtp_server) as (_, config):
        base = config.base_url
        ada = Person(base, smtp_server, "ada@example.com")
        try:
            async with aiohttp.ClientSession() as visitor, visitor.get(
                    f"{base}/sales-reports", allow_redirects=False) as answer:
                assert answer.status == 302
                assert answer.headers["Location"].startswith(
                    "/account/sign-in?next=/sales-reports")
            await ada.sign_up_and_in("Ada")
            async with ada.http.get(f"{base}/sales-reports", allow_redirects=False) as answer:
                assert answer.status == 200 and answer.content_type == "text/html"
                html = await answer.text()
            assert "<title>Sales reports · Max Booster Studio</title>" in html
            assert f'src="/plugins/marketplace/static/reports.js?v={version}"' in html
            async with ada.http.get(f"{base}/plugins/marketplace/static/reports.js?v={version}"
                                    ) as answer:
                assert answer.status == 200 and "javascript" in answer.content_type
                assert await answer.read() == (STATIC_DIR / "reports.js").read_bytes()
            async with ada.http.get(f"{base}/api/marketplace/reports/sales") as answer:
                assert answer.status == 200
                assert (await answer.json())["total"] == []
        finally:
            await ada.close()
