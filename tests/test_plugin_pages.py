"""Pages plug-ins ship (dawserver.plugin_pages): the social calendar at /social and a third-party
plug-in's page, served to signed-in people with their bundles' files under /plugins/NAME/static;
and the social bundle committed in business/social/static being built from current sources."""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
import textwrap
from pathlib import Path

import aiohttp
import pytest
from accounts_helpers import Person, accounts_server
from aiohttp import web
from smtp_server import SmtpServer
from test_page import WEB, sources_hash

from business.social.plugin import STATIC_DIR as SOCIAL_STATIC
from dawserver.plugin_api import Page, hookimpl
from dawserver.plugin_pages import bundle_version, page_routes, versioned_html
from dawserver.plugins import PluginError, install, load_plugins

SOCIAL_FILES = ("calendar.js", "calendar.css", "calendar.html", "build-info.json")
ZINE = textwrap.dedent('''
    from pathlib import Path
    from dawserver.plugin_api import Page, hookimpl

    STATIC = Path(__file__).with_name("zine_static")

    @hookimpl
    def plugin_info():
        return {"name": "zine", "version": "0.1", "description": "a page of its own"}

    @hookimpl
    def pages(context):
        return [Page(path="/zine", title="Zine", static_dir=STATIC)]
''')


@pytest.fixture
def zine_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A third-party plug-in with a page, installed the real way (an entry point)."""
    site = tmp_path / "site"
    static = site / "zine_static"
    static.mkdir(parents=True)
    (site / "zine_plugin.py").write_text(ZINE)
    (static / "index.html").write_text('<!doctype html><title>Zine</title>'
                                       '<link rel="icon" href="data:,">'
                                       '<script type="module" src="zine.js"></script>'
                                       '<a href="/social">calendar</a>')
    (static / "zine.js").write_text("document.body.dataset.ready = 'true'\n")
    info = site / "zine_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: zine-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[maxbooster.plugins]\nzine = zine_plugin\n")
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    return static


def test_committed_social_bundle_was_built_from_the_current_sources() -> None:
    info = json.loads((SOCIAL_STATIC / "build-info.json").read_text())
    assert info["sources_sha256"] == sources_hash(), \
        "business/social/static/ is stale: run 'npm ci && npm run build' in web/ and commit it"
    assert info["fullcalendar"].startswith("6.1.")
    for name in SOCIAL_FILES:
        assert (SOCIAL_STATIC / name).is_file(), name
    lock = json.loads((WEB / "package-lock.json").read_text())["packages"]
    for package in ("core", "daygrid", "timegrid", "interaction"):
        assert lock[f"node_modules/@fullcalendar/{package}"]["version"].startswith("6.1.")


@pytest.mark.skipif(shutil.which("node") is None or not (WEB / "node_modules" / "esbuild").is_dir(),
                    reason="web/node_modules is missing: scripts/setup.sh runs 'npm ci' in web/")
def test_npm_build_reproduces_the_committed_social_bundle_byte_for_byte(tmp_path: Path) -> None:
    subprocess.run(["node", "build.mjs", "--outdir", str(tmp_path)], cwd=WEB, check=True,
                   capture_output=True, timeout=120)
    for name in SOCIAL_FILES:
        assert (tmp_path / "social" / name).read_bytes() == (SOCIAL_STATIC / name).read_bytes(), \
            name


def test_relative_references_point_into_the_bundle_with_its_version() -> None:
    html = ('<link rel="icon" href="data:,"><link rel="stylesheet" href="a.css">'
            '<script src="js/b.js"></script><a href="/account">x</a><a href="#top">y</a>'
            '<a href="https://example.org/c.js">z</a>')
    assert versioned_html(html, "/plugins/p/static", "v1") == (
        '<link rel="icon" href="data:,"><link rel="stylesheet" '
        'href="/plugins/p/static/a.css?v=v1"><script src="/plugins/p/static/js/b.js?v=v1">'
        '</script><a href="/account">x</a><a href="#top">y</a>'
        '<a href="https://example.org/c.js">z</a>')


def test_a_page_declaration_is_checked(tmp_path: Path) -> None:
    def page(path: str = "/zine", static: Path = tmp_path, title: str = "Zine") -> Page:
        return Page(path=path, title=title, static_dir=static)

    assert [r.path for r in page_routes("zine", [page()])] == [
        "/zine", r"/plugins/zine/static/{path:[\s\S]+}"]
    for bad in ("/api", "/static", "/account", "/plugins", "/two/segments", "zine", "/Zine"):
        with pytest.raises(PluginError, match="one lower-case segment"):
            page_routes("zine", [page(bad)])
    with pytest.raises(PluginError, match="is not a folder"):
        page_routes("zine", [page(static=tmp_path / "missing")])
    with pytest.raises(PluginError, match="title"):
        page_routes("zine", [page(title=" ")])
    other = tmp_path / "other"
    other.mkdir()
    with pytest.raises(PluginError, match="one folder"):
        page_routes("zine", [page(), page("/zine-2", other)])
    with pytest.raises(PluginError, match="plugin_api.Page"):
        page_routes("zine", ["/zine"])  # type: ignore[list-item]


def test_two_plugins_cannot_serve_one_page_path(tmp_path: Path) -> None:
    class Shipping:
        def __init__(self, name: str) -> None:
            self.PLUGIN_NAME = name

        @hookimpl
        def pages(self, context: object) -> list[Page]:
            return [Page(path="/zine", title="Zine", static_dir=tmp_path)]

    config = {"data_dir": tmp_path}
    manager = load_plugins(config, defaults=[], entry_points=False,
                           extra=[Shipping("zine-a"), Shipping("zine-b")])
    with pytest.raises(PluginError, match="'zine-b' declares the page '/zine' that plug-in "
                                          "'zine-a' serves already"):
        install(web.Application(), config, manager=manager)


def test_without_build_info_the_version_follows_the_files(tmp_path: Path) -> None:
    (tmp_path / "a.js").write_text("1")
    first = bundle_version(tmp_path)
    (tmp_path / "a.js").write_text("2")
    assert bundle_version(tmp_path) != first and len(first) == 12
    assert bundle_version(SOCIAL_STATIC) == json.loads(
        (SOCIAL_STATIC / "build-info.json").read_text())["sources_sha256"][:12]


@pytest.mark.asyncio
@pytest.mark.timeout(120)
async def test_pages_are_served_to_signed_in_people_with_versioned_files(
        tmp_path: Path, smtp_server: SmtpServer, zine_plugin: Path) -> None:
    version = bundle_version(SOCIAL_STATIC)
    async with accounts_server(tmp_path, smtp_server) as (_, config):
        base = config.base_url
        ada = Person(base, smtp_server, "ada@example.com")
        try:
            # signed out: sent to sign in, and back here (query and all) afterwards
            async with aiohttp.ClientSession() as visitor:
                async with visitor.get(f"{base}/social?view=week&date=2031-05-05",
                                       allow_redirects=False) as answer:
                    assert answer.status == 302
                    assert answer.headers["Location"] == (
                        "/account/sign-in?next=/social%3Fview%3Dweek%26date%3D2031-05-05")
                async with visitor.get(f"{base}/zine", allow_redirects=False) as answer:
                    assert answer.status == 302
                    assert answer.headers["Location"] == "/account/sign-in?next=/zine"
                # a made-up cookie is no session either
                visitor.cookie_jar.update_cookies({"mbs_session": "made-up"})
                async with visitor.get(f"{base}/social", allow_redirects=False) as answer:
                    assert answer.status == 302
            await ada.sign_up_and_in("Ada")
            http = ada.http
            async with http.get(f"{base}/social", allow_redirects=False) as answer:
                assert answer.status == 200 and answer.content_type == "text/html"
                assert answer.headers["Cache-Control"] == "no-store"
                assert answer.headers["X-Frame-Options"] == "DENY"
                html = await answer.text()
            assert f'src="/plugins/social/static/calendar.js?v={version}"' in html
            assert f'href="/plugins/social/static/calendar.css?v={version}"' in html
            assert 'href="data:,"' in html
            # the files: kept a year when asked by this version, else checked each time
            script = f"{base}/plugins/social/static/calendar.js"
            async with http.get(f"{script}?v={version}") as answer:
                assert answer.status == 200 and "javascript" in answer.content_type
                assert answer.headers["Cache-Control"] == "public, max-age=31536000, immutable"
                assert answer.headers["X-Content-Type-Options"] == "nosniff"
                assert await answer.read() == (SOCIAL_STATIC / "calendar.js").read_bytes()
            async with http.get(script) as answer:
                assert answer.headers["Cache-Control"] == "no-cache" and answer.headers["ETag"]
            async with http.get(f"{script}?v=0123456789ab") as answer:
                assert answer.headers["Cache-Control"] == "no-cache"
            async with http.get(f"{base}/plugins/social/static/calendar.css") as answer:
                assert answer.content_type == "text/css"
            for missing in ("nothing.js", "../plugin.py", "%2e%2e/plugin.py"):
                async with http.get(f"{base}/plugins/social/static/{missing}") as answer:
                    assert answer.status in (403, 404), missing
            # the other plug-in's page and files are its own
            zine_version = bundle_version(zine_plugin)
            async with http.get(f"{base}/zine") as answer:
                assert answer.status == 200
                zine_html = await answer.text()
            assert f'src="/plugins/zine/static/zine.js?v={zine_version}"' in zine_html
            assert '<a href="/social">' in zine_html
            async with http.get(f"{base}/plugins/zine/static/zine.js") as answer:
                assert await answer.read() == (zine_plugin / "zine.js").read_bytes()
            async with http.get(f"{base}/plugins/zine/static/calendar.js") as answer:
                assert answer.status == 404
            async with http.get(f"{base}/plugins/social/static/zine.js") as answer:
                assert answer.status == 404
            # the core's own page and bundle are untouched
            async with http.get(f"{base}/static/app.js") as answer:
                assert answer.status == 200
            async with http.get(f"{base}/account/sign-in") as answer:
                assert answer.status == 200
        finally:
            await ada.close()
