"""The browser pages: ``/`` serves the DAW page, ``/account/...`` the account pages (sign-up,
sign-in, team, sessions, keys, two-factor, security log, project access), ``/static/``
their bundle (built from ``web/``).

The bundle in ``dawserver/static/`` is committed build output of ``npm run build``
in ``web/``, so serving the page needs neither Node nor the network.
``/page/features`` tells the page which optional endpoints this server has (live
mix, uploads, waveform peaks, transcript edits, exports, renaming), so it can hide
what is missing instead of failing against routes that are not there, and how long
the live mix holds a microphone's audio before recording it, whether accounts are
served and which "Sign in with ..." providers are configured.

Mail links to ``{public_url}/account/{verify,reset,invite}?token=...``
(:meth:`accounts.service.AccountService.link`): those paths serve the account page,
which finishes the action.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aiohttp import web

from .file_answer import FileAnswer
from .keys import CONFIG
from .plugin_api import PUBLIC, Media, Model, NotFound, Request, Route, Unavailable

STATIC_DIR = Path(__file__).parent / "static"
NO_CACHE = {"Cache-Control": "no-cache"}
#: The account pages take passwords and carry link tokens in their URLs: no other site may
#: frame them (clickjacking), and no Referer carries a token away.
ACCOUNT_HEADERS = {"Cache-Control": "no-store", "X-Frame-Options": "DENY",
                   "Content-Security-Policy": "frame-ancestors 'none'",
                   "Referrer-Policy": "no-referrer"}
TRANSCRIBE = "/projects/{project_id}/clips/{clip_id}/transcribe"
TRANSCRIPT_EDIT = "/projects/{project_id}/clips/{clip_id}/transcript/edit"
#: How long the server holds incoming microphone audio before recording it: aiortc's
#: audio receiver releases a 20 ms packet once four more have arrived
#: (``JitterBuffer(capacity=16, prefetch=4)``).  The page adds it to the round trip it
#: declares (``latency_ms``) when it records; ``tests/test_page.py`` checks it against aiortc.
RTC_RECEIVE_MS = 80
#: The account pages under ``/account/``; ``/account`` alone is the overview. The page's
#: router (``web/src/account/main.js``) draws each; mail links name verify, reset, invite.
ACCOUNT_PAGES = ("sign-in", "sign-up", "verify", "reset", "invite", "team", "sessions",
                 "keys", "two-factor", "security", "access")


class Features(Model):
    """Optional server features the page may use (paths of the routes it calls)."""

    rtc: bool
    upload: str | None
    peaks: str | None
    transcribe: str | None
    transcript_edit: str | None
    bounce: str | None
    rename: bool
    rtc_receive_ms: int | None
    accounts: bool
    sign_in_providers: list[str] = []


async def index(request: Request) -> Any:
    """The page shell (project list, or the project in ``?project=ID&token=T``); on a host
    a plug-in serves (``host_page``: a seller's custom domain), that plug-in's page."""
    context = request.context
    manager = getattr(context, "manager", None)
    if manager is not None:
        for handler in manager.hook.host_page(context=context):
            if handler is not None and (answer := await handler(request)) is not None:
                return answer
    return _shell("index.html", NO_CACHE)


async def account_page(request: Request) -> web.StreamResponse:
    """The account pages' shell (the script draws the page the path names)."""
    name = request.params.get("page", "")
    if name and name not in ACCOUNT_PAGES:
        raise NotFound(f"no account page {name!r}; there are {', '.join(ACCOUNT_PAGES)}")
    return _shell("account.html", ACCOUNT_HEADERS)


def _shell(name: str, headers: dict[str, str] = NO_CACHE) -> web.StreamResponse:
    """A page of the bundle with its scripts' and styles' URLs versioned."""
    page, info = STATIC_DIR / name, STATIC_DIR / "build-info.json"
    if not page.is_file() or not info.is_file():
        raise Unavailable("the page bundle is missing: run 'npm ci && npm run build' in web/")
    # The bundle's version in its URLs, so a browser never mixes an old app.js with a new page.
    version = json.loads(info.read_text())["sources_sha256"][:12]
    html = page.read_text().replace('.js"', f'.js?v={version}"').replace('.css"',
                                                                         f'.css?v={version}"')
    return web.Response(text=html, content_type="text/html", headers=headers)


async def features(request: Request) -> Features:
    """Optional server features the page may use, read from the app's routes and config."""
    providers = sorted(request.app[CONFIG].sign_in_providers) if CONFIG in request.app else []
    return Features.model_validate({**route_features(request.app),
                                    "sign_in_providers": providers})


def route_features(app: web.Application) -> dict[str, object]:
    """``{"rtc": bool, "upload", "peaks", "transcribe", "transcript_edit", "bounce": path or
    None, "rename": bool, "rtc_receive_ms": number or None, "accounts": bool}``."""
    found: dict[str, object] = {"rtc": False, "upload": None, "peaks": None, "transcribe": None,
                                "transcript_edit": None, "bounce": None, "rename": False,
                                "rtc_receive_ms": None, "accounts": False}
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
        elif method == "POST" and path == "/auth/sign-in":
            found["accounts"] = True
    return found


async def static_file(request: Request) -> web.StreamResponse:
    """A file of the page bundle (scripts, styles, the API reference's Redoc)."""
    root = STATIC_DIR.resolve()
    target = (root / request.params["path"]).resolve()
    if root not in target.parents or not target.is_file():
        raise NotFound(f"no file {request.params['path']!r} in the page bundle")
    return FileAnswer(target)


ROUTES = [
    Route(method="GET", path="/", handler=index, permission=PUBLIC,
          response=Media("text/html")),
    Route(method="GET", path="/account", handler=account_page, permission=PUBLIC,
          response=Media("text/html")),
    Route(method="GET", path="/account/{page}", handler=account_page, permission=PUBLIC,
          response=Media("text/html")),
    Route(method="GET", path="/page/features", handler=features, permission=PUBLIC,
          response=Features),
    Route(method="GET", path=r"/static/{path:[\s\S]+}", handler=static_file, permission=PUBLIC,
          response=Media("text/javascript", "application/javascript", "text/css", "text/html",
                         "application/json", "text/plain")),
]
