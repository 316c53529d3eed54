"""The developer docs portal at /developer/docs, against ``dawserver serve``: every operation
of the v1 OpenAPI document listed and linked, each guide served, and headless Chromium
finding an operation in the Redoc reference (bundled, no network)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.error import HTTPError
from urllib.request import urlopen

import pytest
from loopback import free_port
from pagebrowser import CHROMIUM, CHROMIUM_FLAGS, REPO, PageLog, ServerProcess, browser_missing

from dawserver.public_api.openapi_v1 import VERSION
from dawserver.public_api.portal import guides
from dawserver.public_api.portal.pages import operations


def _get(url: str) -> tuple[int, str, str]:
    try:
        with urlopen(url, timeout=30) as answer:  # noqa: S310 - loopback test server
            return answer.status, answer.headers["Content-Type"], answer.read().decode()
    except HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read().decode()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("developer-docs") / "data"
    data.mkdir()
    with ServerProcess(data, free_port()) as served:
        yield served


def _index_operations(html: str) -> set[tuple[str, str, str]]:
    rows = re.findall(r'<tr class="operation" data-operation="([^"]+)"><td class="method">'
                      r'([a-z]+)</td><td><a href="([^"]+)"><code>([^<]+)</code>', html)
    for operation_id, _, href, _ in rows:
        assert href == f"/developer/docs/reference#tag/v1/operation/{operation_id}"
    return {(method, path, operation_id) for operation_id, method, _, path in rows}


@pytest.mark.timeout(120)
def test_the_index_lists_every_operation_of_the_v1_document(server: ServerProcess) -> None:
    status, kind, html = _get(server.url + "/developer/docs")
    assert status == 200 and kind.startswith("text/html")
    listed = _index_operations(html)
    _, _, served = _get(server.url + "/api/v1/openapi.json")
    document = json.loads(served)
    wanted = {(method, path, operation["operationId"])
              for path, item in document["paths"].items()
              for method, operation in item.items()}
    assert len(wanted) >= 25
    assert listed == wanted
    snapshot = json.loads((REPO / "docs" / "openapi-v1.json").read_text())
    assert {(op.method, op.path, op.operation_id) for op in operations(snapshot)} <= listed
    assert f"Version {VERSION}" in html
    for guide in guides.GUIDES:
        assert f'href="/developer/docs/{guide.slug}"' in html


@pytest.mark.timeout(120)
def test_each_guide_is_served_and_an_unknown_one_answers_404(server: ServerProcess) -> None:
    for guide in guides.GUIDES:
        status, kind, html = _get(f"{server.url}/developer/docs/{guide.slug}")
        assert status == 200 and kind.startswith("text/html"), guide.slug
        assert f"<title>{guide.title} · Max Booster Studio developers</title>" in html
        assert "<h1>" in html
    _, _, webhooks = _get(server.url + "/developer/docs/webhooks")
    assert "<code>Webhook-Signature</code>" in webhooks and "<table>" in webhooks
    _, _, changelog = _get(server.url + "/developer/docs/changelog")
    assert f"<h2>{VERSION} (" in changelog, "the changelog lacks the current version"
    assert ".md" not in re.sub(r"<pre>.*?</pre>", "", changelog, flags=re.S).replace(
        "public-api.md", "")  # repository links rewritten (public-api.md is named in text)
    status, _, body = _get(server.url + "/developer/docs/no-such-guide")
    assert status == 404 and "pagination" in body


def test_guides_render_raw_html_as_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "authentication.md").write_text("# Hi\n\n<script>alert(1)</script>\n")
    monkeypatch.setattr(guides, "GUIDES_DIR", tmp_path)
    guides.render.cache_clear()
    try:
        html = guides.render("authentication")
    finally:
        guides.render.cache_clear()
    assert "<script>" not in html and "&lt;script&gt;" in html
    with pytest.raises(KeyError):
        guides.render("../../secret")


@pytest.mark.alone  # drives Chromium: see pagebrowser.BROWSER_TEST
@pytest.mark.timeout(180)
def test_chromium_finds_an_operation_in_the_reference(server: ServerProcess) -> None:
    if browser_missing() is not None:
        pytest.skip(str(browser_missing()))
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 1000})
            log = PageLog()
            page.on("console", lambda m: log.messages.append(f"{m.type}: {m.text}"))
            page.on("pageerror", lambda e: log.messages.append(f"pageerror: {e}"))
            remote: list[str] = []
            page.on("requestfinished", lambda r: remote.append(r.url)
                    if not r.url.startswith((server.url, "data:", "blob:")) else None)
            page.goto(server.url + "/developer/docs")
            assert page.title() == "Docs · Max Booster Studio developers"
            page.click("tr[data-operation=v1_create_webhook] a")
            page.wait_for_url(re.compile(r"/developer/docs/reference#"), timeout=15000)
            section = page.locator(
                "[data-section-id='tag/v1/operation/v1_create_webhook']")
            section.wait_for(timeout=30000)
            assert "/api/v1/webhooks" in section.inner_text()
            page.get_by_role("heading", name=re.compile("Subscribe an https endpoint")).first \
                .wait_for(timeout=10000)
            assert remote == [], "the reference fetched from another origin"
            blocked = [m for m in log.errors() if "cdn.redoc.ly" in m and "Content Security" in m]
            assert [m for m in log.errors() if m not in blocked] == []
        finally:
            browser.close()
