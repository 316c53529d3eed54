"""The portal's pages: its index (guides and every v1 operation), the Redoc reference and
each guide, all server-rendered HTML; public, like the OpenAPI document they describe."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Any

from ...declarations import Media
from ...errors import NotFound, Unavailable
from ...plugin_api import PUBLIC, Reply, Request, Route
from ..graphql.route import GRAPHQL_PATH, SDL_PATH
from ..openapi_v1 import OPENAPI_V1_PATH, openapi_v1
from . import guides

PORTAL = "/developer/docs"
#: The reference page loads only this server's files: Redoc's bundle links a logo on its CDN,
#: which the browser then refuses to fetch (the page works offline and tells no one it ran).
REFERENCE_CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
                 "script-src 'self'; worker-src 'self' blob:; font-src 'self' data:; "
                 "connect-src 'self'")
_ICON = '<link rel="icon" href="data:,">'
METHODS = ("get", "post", "put", "patch", "delete")
_STYLE = """body{font:16px/1.5 system-ui,sans-serif;margin:0;color:#1b1b1f}
header{background:#1b1b1f;color:#fff;padding:.8rem 1.5rem}header a{color:#fff;margin-right:1rem}
main{max-width:60rem;margin:0 auto;padding:1rem 1.5rem}code,pre{font:14px ui-monospace,monospace}
pre{background:#f4f4f6;padding:.8rem;overflow:auto}table{border-collapse:collapse}
td,th{border:1px solid #ddd;padding:.3rem .6rem;text-align:left}
.method{font-weight:700;text-transform:uppercase;width:4.5rem}"""


@dataclass(frozen=True, slots=True)
class Operation:
    """One operation of the v1 document, as the index lists it."""

    method: str
    path: str
    operation_id: str
    summary: str

    @property
    def anchor(self) -> str:
        """Redoc's anchor of the operation on the reference page."""
        return f"tag/v1/operation/{self.operation_id}"


def operations(document: dict[str, Any]) -> list[Operation]:
    """Every operation of the OpenAPI ``document``, by path then method."""
    found = []
    for path, item in document["paths"].items():
        for method in METHODS:
            operation = item.get(method)
            if operation is not None:
                found.append(Operation(method, path, operation.get("operationId", ""),
                                       operation.get("summary", "")))
    return found


def _page(title: str, body: str) -> str:
    nav = "".join(f'<a href="{PORTAL}/{g.slug}">{escape(g.title)}</a>' for g in guides.GUIDES)
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">{_ICON}'
            f"<title>{escape(title)} · Max Booster Studio developers</title>"
            f"<style>{_STYLE}</style></head><body><header><a href=\"{PORTAL}\">Docs</a>"
            f'<a href="{PORTAL}/reference">API reference</a>'
            f'<a href="{SDL_PATH}">GraphQL schema</a>{nav}</header>'
            f"<main>{body}</main></body></html>")


async def index(request: Request) -> str:
    """The docs portal: the guides and every operation of the public API `/api/v1`."""
    document = await openapi_v1(request)
    rows = "".join(
        f'<tr class="operation" data-operation="{escape(op.operation_id)}">'
        f'<td class="method">{op.method}</td>'
        f'<td><a href="{PORTAL}/reference#{escape(op.anchor)}"><code>{escape(op.path)}</code>'
        f"</a></td><td>{escape(op.summary)}</td></tr>"
        for op in operations(document))
    items = "".join(f'<li><a href="{PORTAL}/{g.slug}">{escape(g.title)}</a></li>'
                    for g in guides.GUIDES)
    version = escape(document["info"]["version"])
    body = (f"<h1>Max Booster Studio public API</h1><p>Version {version}: REST under "
            f"<code>/api/v1</code>, described by <a href=\"{OPENAPI_V1_PATH}\">its OpenAPI "
            f"document</a> and the <a href=\"{PORTAL}/reference\">API reference</a>; GraphQL "
            f"at <code>{GRAPHQL_PATH}</code>, described by <a id=\"graphql-schema\" "
            f"href=\"{SDL_PATH}\">its schema (SDL)</a>.</p>"
            f"<h2>Guides</h2><ul>{items}</ul><h2>Operations</h2>"
            f'<table id="operations"><tbody>{rows}</tbody></table>')
    return _page("Docs", body)


async def reference(request: Request) -> Reply:
    """The v1 API reference: Redoc (bundled in /static) over `/api/v1/openapi.json`."""
    return Reply(body=(f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">{_ICON}'
            f"<title>API reference · Max Booster Studio developers</title></head><body>"
            f'<redoc spec-url="{OPENAPI_V1_PATH}"></redoc>'
            f'<script src="/static/redoc.standalone.js"></script></body></html>'),
                 headers={"Content-Security-Policy": REFERENCE_CSP})


async def guide(request: Request) -> str:
    """One guide of the docs portal (authentication, pagination, webhooks, ...)."""
    slug = request.params["guide"]
    if slug not in guides.BY_SLUG:
        names = ", ".join(g.slug for g in guides.GUIDES)
        raise NotFound(f"no guide {slug[:80]!r}; the guides are {names} (see {PORTAL})")
    try:
        html = guides.render(slug)
    except FileNotFoundError:
        raise Unavailable(f"the guide {slug!r} is read from {guides.CHANGELOG}, which this "
                          "installation lacks; run the server from a checkout") from None
    return _page(guides.BY_SLUG[slug].title, html)


HTML = Media("text/html")
ROUTES = [
    Route(method="GET", path=PORTAL, handler=index, permission=PUBLIC, response=HTML),
    Route(method="GET", path=f"{PORTAL}/reference", handler=reference, permission=PUBLIC,
          response=HTML),
    Route(method="GET", path=PORTAL + "/{guide}", handler=guide,
          permission=PUBLIC, response=HTML),
]
