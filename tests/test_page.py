"""dawserver.page: the page routes, feature discovery and the committed bundle being current."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from loopback import free_port
from nodepeer import running_server

from dawserver import page
from dawserver.config import ServerConfig

ROOT = Path(__file__).resolve().parent.parent
WEB = ROOT / "web"
BUNDLE_FILES = ("app.js", "app.css", "index.html", "account.js", "account.css", "account.html",
                "build-info.json", "redoc.standalone.js")


def sources_hash() -> str:
    """The hash web/build.mjs records: sha256 over "path NUL content NUL" of each source."""
    files = ["build.mjs", "package.json", "package-lock.json"]
    files += [p.relative_to(WEB).as_posix() for p in (WEB / "src").rglob("*")
              if p.suffix in (".js", ".css", ".html")]
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + (WEB / name).read_bytes() + b"\0")
    return digest.hexdigest()


def test_committed_bundle_was_built_from_the_current_sources() -> None:
    info = json.loads((page.STATIC_DIR / "build-info.json").read_text())
    assert info["sources_sha256"] == sources_hash(), \
        "dawserver/static/ is stale: run 'npm ci && npm run build' in web/ and commit it"
    for name in BUNDLE_FILES:
        assert (page.STATIC_DIR / name).is_file()


@pytest.mark.skipif(shutil.which("node") is None or not (WEB / "node_modules" / "esbuild").is_dir(),
                    reason="web/node_modules is missing: scripts/setup.sh runs 'npm ci' in web/")
def test_npm_build_reproduces_the_committed_bundle_byte_for_byte(tmp_path: Path) -> None:
    subprocess.run(["node", "build.mjs", "--outdir", str(tmp_path)], cwd=WEB, check=True,
                   capture_output=True, timeout=120)
    for name in BUNDLE_FILES:
        assert (tmp_path / name).read_bytes() == (page.STATIC_DIR / name).read_bytes(), name


def test_bundle_contains_yjs_and_y_websocket() -> None:
    bundle = (page.STATIC_DIR / "app.js").read_text()
    assert "Yjs was already imported" in bundle  # yjs's own duplicate-import guard
    assert "WebsocketProvider" in bundle or "websocket" in bundle.lower()
    lock = json.loads((WEB / "package-lock.json").read_text())
    assert {"node_modules/yjs", "node_modules/y-websocket", "node_modules/esbuild"} \
        <= set(lock["packages"])


@pytest.mark.asyncio
async def test_page_and_assets_are_served_with_the_server_features(tmp_path: Path) -> None:
    config = ServerConfig(port=free_port(), data_dir=tmp_path, engine=False)
    async with running_server(config), aiohttp.ClientSession(config.base_url) as http:
        async with http.get("/?project=p&token=t") as response:
            assert response.status == 200
            html = await response.text()
            version = json.loads((page.STATIC_DIR / "build-info.json").read_text())
            assert f'src="/static/app.js?v={version["sources_sha256"][:12]}"' in html
        async with http.get("/static/app.js") as response:
            assert response.status == 200
            assert "javascript" in response.content_type
        async with http.get("/static/app.css") as response:
            assert response.content_type == "text/css"
        async with http.get("/static/../page.py") as response:
            assert response.status in (403, 404)
        async with http.get("/page/features") as response:
            features = await response.json()
    assert features["peaks"] == "/projects/{project_id}/peaks"
    assert features["upload"] == "/projects/{project_id}/assets"
    assert features["transcript_edit"] == "/projects/{project_id}/clips/{clip_id}/transcript/edit"
    assert features["bounce"] == "/projects/{project_id}/bounces"
    assert features["transcribe"] == "/projects/{project_id}/clips/{clip_id}/transcribe"
    assert isinstance(features["rtc"], bool) and isinstance(features["rename"], bool)


def test_features_are_absent_on_an_app_without_those_routes() -> None:
    app = web.Application()
    app.router.add_get("/", page.features)
    assert page.route_features(app) == {"rtc": False, "upload": None, "peaks": None,
                                        "transcribe": None, "transcript_edit": None,
                                        "bounce": None, "rename": False,
                                        "rtc_receive_ms": None, "accounts": False}
    app.router.add_post("/projects/{project_id}/rtc", page.features)
    assert page.route_features(app)["rtc"] is True
    assert page.route_features(app)["rtc_receive_ms"] == page.RTC_RECEIVE_MS


@pytest.mark.asyncio
async def test_the_declared_receive_delay_is_what_aiortcs_audio_receiver_holds() -> None:
    """A 20 ms packet leaves aiortc's audio jitter buffer RTC_RECEIVE_MS after it arrived."""
    from aiortc import RTCPeerConnection
    from aiortc.rtp import RtpPacket

    pc = RTCPeerConnection()
    try:
        receiver = pc.addTransceiver("audio").receiver
        buffer = receiver._RTCRtpReceiver__jitter_buffer  # the one recv() reads from
        arrived = 0
        while True:
            packet = RtpPacket(payload_type=111, sequence_number=arrived,
                               timestamp=arrived * 960, payload=b"x")
            packet._data = packet.payload  # what the receiver sets before buffering
            _, frame = buffer.add(packet)
            if frame is not None:
                break
            arrived += 1
        assert frame.timestamp == 0
        assert arrived * 20 == page.RTC_RECEIVE_MS  # packets that came after it, 20 ms each
    finally:
        await pc.close()


@pytest.mark.asyncio
async def test_a_missing_bundle_gives_a_clear_error(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(page, "STATIC_DIR", tmp_path / "nothing")
    config = ServerConfig(port=free_port(), data_dir=tmp_path, engine=False)
    async with running_server(config), aiohttp.ClientSession(config.base_url) as http, \
            http.get("/") as response:
        assert response.status == 503
        assert "npm run build" in await response.text()


@pytest.mark.asyncio
async def test_account_pages_are_served_at_every_path_mail_links_name(tmp_path: Path) -> None:
    config = ServerConfig(port=free_port(), data_dir=tmp_path, engine=False,
                          sign_in_providers={"google": {"client_id": "x", "client_secret": "y"}})
    version = json.loads((page.STATIC_DIR / "build-info.json").read_text())["sources_sha256"]
    async with running_server(config), aiohttp.ClientSession(config.base_url) as http:
        for path in ["/account", *(f"/account/{name}" for name in page.ACCOUNT_PAGES),
                     "/account/verify?token=abc", "/account/reset?token=abc",
                     "/account/invite?token=abc"]:
            async with http.get(path) as response:
                assert response.status == 200, path
                assert response.content_type == "text/html"
                html = await response.text()
                assert f'src="/static/account.js?v={version[:12]}"' in html, path
                assert f'href="/static/account.css?v={version[:12]}"' in html, path
                assert response.headers["X-Frame-Options"] == "DENY"
                assert response.headers["Referrer-Policy"] == "no-referrer"
        async with http.get("/account/nonsense") as response:
            assert response.status == 404
            assert "sign-in" in (await response.json())["error"]
        async with http.get("/static/account.js") as response:
            assert response.status == 200 and "javascript" in response.content_type
        async with http.get("/page/features") as response:
            features = await response.json()
    assert features["accounts"] is True
    assert features["sign_in_providers"] == ["google"]


def test_every_page_the_server_serves_is_one_the_account_script_draws() -> None:
    router = (WEB / "src" / "account" / "main.js").read_text()
    for name in page.ACCOUNT_PAGES:
        assert f"'{name}':" in router or f"  {name}:" in router, name
    # mail links: accounts/service.py links to /account/{verify,reset,invite}
    assert {"verify", "reset", "invite"} <= set(page.ACCOUNT_PAGES)
