"""Requests addressed to another host than the platform's: public reads only.

A seller's proved custom domain (the marketplace's storefronts) points at this server,
so requests arrive with that domain in ``Host``, and ``GET /`` answers with the store
there. Nothing else that signs someone in, sets a session cookie or acts for an account
may answer on such a host: a seller could send people to their domain's copy of the
sign-in page and, once they had signed in, point the domain at a server of their own and
collect the cookies. So when ``public_url`` is configured, a request whose ``Host`` is
neither its host nor a loopback name:

- must be a ``GET`` or ``HEAD`` that carries no credentials (no session cookie, no
  ``Authorization`` header, no ``?token=``);
- may not reach the core's own sign-in, account, project, collaboration or API paths
  (:data:`PLATFORM_ONLY`);

anything else answers 421 Misdirected Request, naming the platform's address. Without
``public_url`` (a server on a developer's machine) every host is the platform's.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Handler

from .keys import CONFIG

#: Path prefixes served on the platform's own host only.
PLATFORM_ONLY = ("/auth", "/account", "/me", "/api", "/projects", "/collab", "/accounts",
                 "/admin", "/invitations", "/privacy", "/samples", "/metrics")
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
SESSION_COOKIE = "mbs_session"


def _name(host: str) -> str:
    """``host`` without its port or the root's trailing dot, lower case (``[::1]:8080`` →
    ``[::1]``, ``Studio.Example.:443`` → ``studio.example``)."""
    host = host.strip().lower()
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return (host.rsplit(":", 1)[0] if host.count(":") == 1 else host).rstrip(".")


def refusal(request: web.Request, public_url: str | None) -> str | None:
    """Why ``request`` may not be served on its host (None: it may)."""
    if not public_url:
        return None
    own = _name(urlsplit(public_url).netloc)
    asked = _name(request.headers.get("Host", "") or own)
    if asked == own or asked in LOOPBACK_NAMES:
        return None
    if request.method not in ("GET", "HEAD"):
        return "only reads are served on this address"
    if (request.headers.get("Authorization") or "token" in request.query
            or SESSION_COOKIE in request.cookies):
        return "credentials are only taken on the platform's own address"
    path = request.path
    if any(path == prefix or path.startswith(prefix + "/") for prefix in PLATFORM_ONLY):
        return "this part of the platform answers on its own address only"
    return None


@web.middleware
async def host_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer 421 for what may not be served on the request's host (module docstring)."""
    config = request.app[CONFIG]
    why = refusal(request, config.public_url)
    if why is None:
        return await handler(request)
    return web.json_response(
        {"error": f"{why}: use {config.public_url}{request.path_qs}"}, status=421,
        headers={"Cache-Control": "no-store"})
