"""Serving the browser pages plug-ins ship (their ``pages`` hook, :class:`Page`).

For each plug-in with pages the core serves:

- ``GET {page.path}``: the page's HTML to a signed-in person; anyone else is sent
  (302) to ``/account/sign-in?next={path and query}``. The HTML's relative
  ``src="x.js"`` and ``href="x.css"`` are rewritten to
  ``/plugins/{plug-in}/static/x.js?v={version}``, so a browser never mixes an old
  script with a new page;
- ``GET /plugins/{plug-in}/static/{file}``: a file of the plug-in's ``static_dir``.
  Asked with the current ``?v=`` it may be kept a year (``immutable``); otherwise the
  browser must check again (``no-cache``, with ``ETag``/``Last-Modified``).

The version is the first 12 hex digits of ``sources_sha256`` in the folder's
``build-info.json`` (what ``web/build.mjs`` writes), or, without one, of a SHA-256
over the folder's files. A plug-in imports only :mod:`dawserver.plugin_api`; this
module is the core's and never imports a plug-in.
"""

from __future__ import annotations

import hashlib
import json
import re
import urllib.parse
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from .declarations import PUBLIC, Media, Page, Reply, Request, Route
from .errors import NotFound, PluginError, Unavailable
from .file_answer import FileAnswer
from .identity import signed_in_session

#: A page path: one lower-case segment, e.g. "/social".
PAGE_PATH = re.compile(r"^/[a-z0-9][a-z0-9-]{0,62}$")
#: First path segments the core serves itself: a page may not take them.
RESERVED = frozenset({"account", "accounts", "api", "auth", "collab", "healthz", "invitations",
                      "me", "metrics", "page", "plugins", "privacy", "projects", "static"})
SIGN_IN = "/account/sign-in"
#: The page is made for its signed-in person: never kept by a shared cache, never framed.
PAGE_HEADERS = {"Cache-Control": "no-store", "X-Frame-Options": "DENY",
                "Content-Security-Policy": "frame-ancestors 'none'",
                "Referrer-Policy": "same-origin"}
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
#: Relative references in a page that point into its bundle.
BUNDLE_REFERENCE = re.compile(r'\b(src|href)="(?![a-z][a-z0-9+.-]*:|/|#|\?)([^"?#]+)"')
STATIC_TYPES = Media("text/javascript", "application/javascript", "text/css", "text/html",
                     "application/json", "text/plain", "image/svg+xml", "image/png",
                     "font/woff2", "application/octet-stream")


def static_prefix(plugin: str) -> str:
    """Where a plug-in's built files are served: ``/plugins/{plugin}/static``."""
    return f"/plugins/{urllib.parse.quote(plugin, safe='')}/static"


def bundle_version(static_dir: Path) -> str:
    """The bundle's version: ``build-info.json``'s ``sources_sha256``, else its files' hash."""
    info = static_dir / "build-info.json"
    if info.is_file():
        return str(json.loads(info.read_text())["sources_sha256"])[:12]
    digest = hashlib.sha256()
    for file in sorted(p for p in static_dir.rglob("*") if p.is_file()):
        digest.update(file.relative_to(static_dir).as_posix().encode() + b"\0")
        digest.update(file.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def versioned_html(html: str, prefix: str, version: str) -> str:
    """``html`` with its relative ``src``/``href`` pointing at ``prefix`` with ``?v=``."""
    return BUNDLE_REFERENCE.sub(
        lambda m: f'{m.group(1)}="{prefix}/{m.group(2)}?v={version}"', html)


def check_page(plugin: str, page: Page) -> None:
    """A PluginError naming ``plugin`` when ``page`` cannot be served."""
    if not isinstance(page, Page):
        raise PluginError(f"plug-in {plugin!r} returned {page!r} from its pages hook; "
                          "return plugin_api.Page declarations")
    where = f"plug-in {plugin!r}, page {page.path!r}"
    if not PAGE_PATH.match(page.path) or page.path[1:] in RESERVED:
        raise PluginError(f"{where}: a page path is one lower-case segment such as '/social', "
                          f"not one the server uses itself ({', '.join(sorted(RESERVED))})")
    if not page.title.strip():
        raise PluginError(f"{where}: give the page a title (links to it show it)")
    if not Path(page.static_dir).is_dir():
        raise PluginError(f"{where}: static_dir {str(page.static_dir)!r} is not a folder; "
                          "build the page's bundle into a folder of the plug-in's package")


def page_routes(plugin: str, pages: list[Page]) -> list[Route]:
    """The routes that serve ``plugin``'s ``pages`` and their one bundle folder."""
    for page in pages:
        check_page(plugin, page)
    folders = {Path(page.static_dir).resolve() for page in pages}
    if len(folders) > 1:
        raise PluginError(f"plug-in {plugin!r}: its pages name {len(folders)} static_dir "
                          "folders; build every page into one folder")
    prefix = static_prefix(plugin)
    routes = [Route(method="GET", path=page.path, handler=_page_handler(page, prefix),
                    permission=PUBLIC, response=Media("text/html"), statuses=(302,),
                    name=f"{plugin} page {page.title}")
              for page in pages]
    if folders:
        routes.append(Route(method="GET", path=prefix + r"/{path:[\s\S]+}",
                            handler=_static_handler(folders.pop()), permission=PUBLIC,
                            response=STATIC_TYPES, name=f"{plugin} page files"))
    return routes


def _page_handler(page: Page, prefix: str) -> Callable:
    async def serve_page(request: Request) -> Reply:
        """A plug-in's page for the signed-in person (others: 302 to sign in)."""
        native = request.native
        if await signed_in_session(native) is None:
            target = f"{SIGN_IN}?next={urllib.parse.quote(native.path_qs, safe='/')}"
            return Reply("", status=302, headers={"Location": target,
                                                  "Cache-Control": "no-store"})
        folder = Path(page.static_dir)
        source = folder / page.html
        if not source.is_file():
            raise Unavailable(f"the page {page.path} has no {page.html} in {folder}: build "
                              "its bundle ('npm ci && npm run build' in web/)")
        html = versioned_html(source.read_text(), prefix, bundle_version(folder))
        return Reply(html, headers=PAGE_HEADERS, media_type="text/html")

    return serve_page


def _static_handler(folder: Path) -> Callable:
    async def serve_file(request: Request) -> web.StreamResponse:
        """A file of a plug-in page's bundle (versioned URLs may be kept a year)."""
        root = folder.resolve()
        asked = request.params["path"]
        target = (root / asked).resolve()
        if root not in target.parents or not target.is_file():
            raise NotFound(f"no file {asked!r} in this page's bundle")
        current = request.native.query.get("v") == bundle_version(root)
        return FileAnswer(target, headers={
            "Cache-Control": IMMUTABLE if current else REVALIDATE,
            "X-Content-Type-Options": "nosniff"})

    return serve_file
