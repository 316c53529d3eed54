"""The browser page: ``/`` serves the DAW page, ``/static/`` its bundle (built from ``web/``).

The bundle in ``dawserver/static/`` is committed build output of ``npm run build``
in ``web/``, so serving the page needs neither Node nor the network.
``/page/features`` tells the page which optional endpoints this server has (live
mix, uploads, waveform peaks, transcript edits, exports, renaming), so it can hide
what is missing instead of failing against routes that are not there, and how long
the live mix holds a microphone's audio before recording it.
"""

from __future__ import annotations

import json
from pathlib import Path

from aiohttp import web

STATIC_DIR = Path(__file__).parent / "static"
NO_CACHE = {"Cache-Control": "no-cache"}
TRANSCRIBE = "/projects/{project_id}/clips/{clip_id}/transcribe"
TRANSCRIPT_EDIT = "/projects/{project_id}/clips/{clip_id}/transcript/edit"
#: How long the server holds incoming microphone audio before recording it: aiortc's
#: audio receiver releases a 20 ms packet once four more have arrived
#: (``JitterBuffer(capacity=16, prefetch=4)``).  The page adds it to the round trip it
#: declares (``latency_ms``) when it records; ``tests/test_page.py`` checks it against aiortc.
RTC_RECEIVE_MS = 80

routes = web.RouteTableDef()


@routes.get("/")
async def index(request: web.Request) -> web.StreamResponse:
    """The page shell (project list, or the project in ``?project=ID&token=T``)."""
    page, info = STATIC_DIR / "index.html", STATIC_DIR / "build-info.json"
    if not page.is_file() or not info.is_file():
        raise web.HTTPServiceUnavailable(
            text="the page bundle is missing: run 'npm ci && npm run build' in web/")
    # The bundle's version in its URLs, so a browser never mixes an old app.js with a new page.
    version = json.loads(info.read_text())["sources_sha256"][:12]
    html = page.read_text().replace('.js"', f'.js?v={version}"').replace('.css"',
                                                                         f'.css?v={version}"')
    return web.Response(text=html, content_type="text/html", headers=NO_CACHE)


@routes.get("/page/features")
async def features(request: web.Request) -> web.Response:
    """Optional server features the page may use, read from the app's routes."""
    return web.json_response(route_features(request.app))


def route_features(app: web.Application) -> dict[str, object]:
    """``{"rtc": bool, "upload", "peaks", "transcribe", "transcript_edit", "bounce": path or
    None, "rename": bool, "rtc_receive_ms": number or None}``."""
    found: dict[str, object] = {"rtc": False, "upload": None, "peaks": None, "transcribe": None,
                                "transcript_edit": None, "bounce": None, "rename": False,
                                "rtc_receive_ms": None}
    for route in app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        method = route.method
        if method == "POST" and path == "/projects/{project_id}/rtc":
            found["rtc"], found["rtc_receive_ms"] = True, RTC_RECEIVE_MS
        elif method == "POST" and path == "/projects/{project_id}/assets":
            found["upload"] = path
        elif method == "GET" and path == "/projects/{project_id}/peaks":
            found["peaks"] = path
        elif method == "POST" and path == TRANSCRIBE:
            found["transcribe"] = path
        elif method == "POST" and path == TRANSCRIPT_EDIT:
            found["transcript_edit"] = path
        elif method == "POST" and path == "/projects/{project_id}/bounces":
            found["bounce"] = path
        elif method == "PATCH" and path == "/projects/{project_id}":
            found["rename"] = True
    return found


routes.static("/static", STATIC_DIR, append_version=False)
