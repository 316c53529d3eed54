"""Distribution's read routes in the public REST API, declared relative to ``/api/v1``.

Thin adapters over the module's services: the account's releases and their gate
status, each release's deliveries to stores, and the imported royalty statements.
Key scopes are the module's permissions (``distribution.read``, and
``distribution.royalties`` for statements).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from business.distribution.errors import NotFoundError
from business.distribution.permissions import READ, ROYALTIES
from business.distribution.services import services
from business.distribution.v1_resources import (
    DeliveryFilter,
    Release,
    ReleaseDelivery,
    ReleaseDeliveryPage,
    ReleaseFilter,
    ReleasePage,
    RoyaltyStatement,
    RoyaltyStatementPage,
)
from dawserver.plugin_api import (
    NotFound,
    PublicListing,
    PublicOne,
    Request,
    Route,
    answer_one,
    answer_page,
    map_errors,
    rfc3339,
)

_api = map_errors((NotFoundError, NotFound))


def _release(row: dict[str, Any]) -> Release:
    return Release(id=row["release_id"], title=row["title"], status=row["status"],
                   release_date=row["release_date"])


def _delivery(row: dict[str, Any]) -> ReleaseDelivery:
    delivered = row.get("delivered_at")
    return ReleaseDelivery(
        id=row["job_id"], release_id=row["release_id"], store=row["store"],
        action=row["action"], state=row["state"], attempts=row["attempts"],
        last_error=row["last_error"], queued_at=rfc3339(row["queued_at"]),
        updated_at=rfc3339(row["updated_at"]),
        delivered_at=None if delivered is None else rfc3339(delivered))


def _statement(row: dict[str, Any]) -> RoyaltyStatement:
    return RoyaltyStatement(id=row["statement_id"], source=row["source"],
                            imported_at=rfc3339(row["imported_at"]),
                            line_count=row["line_count"], totals=row["totals"])


@_api
async def list_releases(request: Request) -> web.Response:
    """The account's releases and their gate status, by id; filter with `status`."""
    status = request.query.status
    rows = await services(request.context).catalog.list_releases(request.account_id)
    found = [_release(r) for r in rows if status is None or r["status"] == status]
    return answer_page(request, ReleasePage, found, lambda r: (r.id,))


@_api
async def get_release(request: Request) -> web.Response:
    """One release: its title, date and gate status."""
    catalog = services(request.context).catalog
    release_id = request.params["release_id"]
    release = await catalog.get_release(request.account_id, release_id)
    status = await catalog.status(request.account_id, release_id)
    return answer_one(request, Release(id=release_id, title=release.title,
                                       status=status["status"],
                                       release_date=release.release_date))


@_api
async def list_deliveries(request: Request) -> web.Response:
    """The release's deliveries to stores (delivery status), by store; filter with `state`."""
    module = services(request.context)
    release_id = request.params["release_id"]
    await module.catalog.get_release(request.account_id, release_id)  # 404 if not ours
    state = request.query.state
    found = [_delivery(r) for r in await module.pipeline.jobs(request.account_id, release_id)
             if state is None or r["state"] == state]
    return answer_page(request, ReleaseDeliveryPage, found, lambda d: (d.store, d.id))


@_api
async def list_statements(request: Request) -> web.Response:
    """The royalty statements imported into the account's ledger, oldest first."""
    rows = await services(request.context).royalties.statements(request.account_id)
    found = [_statement(r) for r in rows]
    return answer_page(request, RoyaltyStatementPage, found, lambda s: (s.imported_at, s.id))


@_api
async def get_statement(request: Request) -> web.Response:
    """One imported royalty statement: its source, line count and totals per currency."""
    statement_id = request.params["statement_id"]
    rows = await services(request.context).royalties.statements(request.account_id,
                                                                 statement_id)
    if not rows:
        raise NotFound(f"statement {statement_id!r} was not imported for this account")
    return answer_one(request, _statement(rows[0]))


RELEASE = "/releases/{release_id}"
STATEMENTS = "/royalty-statements"

ROUTES = [
    Route(method="GET", path="/releases", handler=list_releases, permission=READ,
          response=ReleasePage, query=ReleaseFilter),
    Route(method="GET", path=RELEASE, handler=get_release, permission=READ,
          response=Release, query=PublicOne),
    Route(method="GET", path=f"{RELEASE}/deliveries", handler=list_deliveries,
          permission=READ, response=ReleaseDeliveryPage, query=DeliveryFilter),
    Route(method="GET", path=STATEMENTS, handler=list_statements, permission=ROYALTIES,
          response=RoyaltyStatementPage, query=PublicListing),
    Route(method="GET", path=f"{STATEMENTS}/{{statement_id}}", handler=get_statement,
          permission=ROYALTIES, response=RoyaltyStatement, query=PublicOne),
]
