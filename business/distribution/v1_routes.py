"""Distribution's routes in the public REST API, declared relative to ``/api/v1``.

Thin adapters over the module's services: the account's releases and their gate
status, each release's deliveries to stores and pre-save campaigns, and the imported
royalty statements; and four writes, a new release draft, its delivery, the retry of a
dead delivery and a new pre-save campaign, with ``Idempotency-Key``. Key scopes are the
module's permissions (``distribution.read``, ``distribution.releases``,
``distribution.deliver``, and ``distribution.royalties`` for statements).

Test mode: a release made with a test-mode key is marked a sandbox object in the
transaction that creates it (:func:`~dawserver.plugin_api.mark_sandbox`), so only
test-mode keys reach it; its deliveries are simulated by the pipeline (no store is
contacted; a retry too) and announced like any other, to test-mode webhooks. Its
deliveries and pre-save campaigns are sandbox objects too (the services mark them as
they make them), so test-mode keys reach them by id and live keys never do.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from business.distribution.errors import (
    ComplianceError,
    DistributionError,
    NotFoundError,
    NotRetryableError,
)
from business.distribution.permissions import DELIVER, READ, RELEASES, ROYALTIES
from business.distribution.routes import MAX_RELEASE_BYTES
from business.distribution.services import PLUGIN_NAME, services
from business.distribution.v1_resources import (
    DeliveryFilter,
    NewPresaveCampaign,
    NewRelease,
    NewReleaseDeliveries,
    PresaveCampaign,
    PresaveCampaignFilter,
    PresaveCampaignPage,
    Release,
    ReleaseDelivery,
    ReleaseDeliveryList,
    ReleaseDeliveryPage,
    ReleaseFilter,
    ReleasePage,
    RoyaltyStatement,
    RoyaltyStatementPage,
)
from dawserver.plugin_api import (
    BadRequest,
    Conflict,
    Empty,
    NotFound,
    PublicListing,
    PublicOne,
    Request,
    Route,
    Unprocessable,
    answer_one,
    answer_page,
    map_errors,
    mark_sandbox,
    rfc3339,
)

#: The domain's errors as problem answers (as the module's own routes map them).
_api = map_errors(
    (ComplianceError, lambda exc: Unprocessable(str(exc),
                                                issues=[vars(i) for i in exc.issues])),
    (NotFoundError, NotFound),
    (NotRetryableError, Conflict),
    (DistributionError, BadRequest),
)


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


def _campaign(row: dict[str, Any]) -> PresaveCampaign:
    return PresaveCampaign(
        id=row["campaign_id"], release_id=row["release_id"], slug=row["slug"],
        landing_page=f"/presave/{row['slug']}", title=row["title"], artist=row["artist"],
        release_date=row["release_date"], services=row["services"],
        presaves=row["presaves"], presaves_by_service=row["presaves_by_service"],
        released=row["released"], created_at=rfc3339(row["created_at"]))


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
async def create_release(request: Request) -> web.Response:
    """Create a release draft (the module's `POST /api/distribution/releases`, its id
    chosen by the server); check and deliver it next.

    Send `Idempotency-Key` to make retries safe: the same key and body answer the first
    request's release again. A test-mode key makes a sandbox release, which only
    test-mode keys reach and whose deliveries reach no store (simulated).
    """
    raw = request.body.model_dump(exclude_unset=True, exclude_none=True)  # null: the default
    account_id, context = request.account_id, request.context

    async def sandboxed(tx: Any, release_id: str) -> None:
        await mark_sandbox(context, PLUGIN_NAME, account_id, release_id, tx=tx)

    release = await services(context).catalog.save_release(
        account_id, raw, on_create=sandboxed if request.test_mode else None)
    found = Release(id=release.release_id, title=release.title, status="draft",
                    release_date=release.release_date)
    return answer_one(request, found, status=201,
                      headers={"Location": f"/api/v1/releases/{found.id}"})


@_api
async def deliver_release(request: Request) -> web.Response:
    """Deliver the release to stores (what passes the compliance gate now is what ships;
    422 with `issues` when it does not): one delivery per store, run in the background;
    follow them with `GET .../deliveries`. Repeating `new` changes nothing.

    A sandbox release (made with a test-mode key) is delivered in simulation: no store
    is contacted, each delivery ends `delivered` and `distribution.release_delivered` is
    announced to test-mode webhooks.
    """
    body: NewReleaseDeliveries = request.body
    module = services(request.context)
    account_id, release_id = request.account_id, request.params["release_id"]
    stores = body.stores or sorted(module.pipeline.connectors)
    await module.catalog.get_release(account_id, release_id)  # 404 if not ours
    snapshot_id = ""
    if body.action != "takedown":
        snapshot_id = await module.catalog.snapshot(account_id, release_id,
                                                    action=body.action,
                                                    redeliver=body.redeliver)
    rows = await module.pipeline.enqueue(account_id, release_id, stores, body.action,
                                         redeliver=body.redeliver, snapshot_id=snapshot_id)
    return answer_one(request, ReleaseDeliveryList(data=[_delivery(r) for r in rows]),
                      status=202)


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
async def retry_delivery(request: Request) -> web.Response:
    """Retry a dead delivery (the module's `POST /api/distribution/deliveries/{job_id}/retry`):
    its message is sent again (same message id, attempts reset); 202 with the delivery
    queued. 409 when it is not dead (queued, under way, retrying or delivered).

    Send `Idempotency-Key` to make retries safe. A sandbox release's delivery is retried
    in simulation, like its delivery: no store is contacted.
    """
    module = services(request.context)
    account_id, release_id = request.account_id, request.params["release_id"]
    await module.catalog.get_release(account_id, release_id)  # 404 if not ours
    row = await module.pipeline.retry_dead(account_id, request.params["delivery_id"],
                                           release_id=release_id)
    return answer_one(request, _delivery(row), status=202)


@_api
async def list_release_presaves(request: Request) -> web.Response:
    """The release's pre-save campaigns with their counts, oldest first."""
    module = services(request.context)
    release_id = request.params["release_id"]
    await module.catalog.get_release(request.account_id, release_id)  # 404 if not ours
    rows = await module.presaves.campaigns(request.account_id, release_id=release_id)
    return answer_page(request, PresaveCampaignPage, [_campaign(r) for r in rows],
                       lambda c: (c.created_at, c.id))


@_api
async def list_presaves(request: Request) -> web.Response:
    """The account's pre-save campaigns with their counts, oldest first; filter with
    `release_id`."""
    rows = await services(request.context).presaves.campaigns(
        request.account_id, release_id=request.query.release_id)
    return answer_page(request, PresaveCampaignPage, [_campaign(r) for r in rows],
                       lambda c: (c.created_at, c.id))


@_api
async def get_presave(request: Request) -> web.Response:
    """One pre-save campaign: its landing page, services and pre-saves per service."""
    row = await services(request.context).presaves.campaign(
        request.account_id, request.params["campaign_id"])
    return answer_one(request, _campaign(row))


@_api
async def create_presave(request: Request) -> web.Response:
    """Start a pre-save campaign for the release (the module's
    `POST /api/distribution/releases/{release_id}/presave`): its public landing page is
    `landing_page`; what the body leaves out comes from the release. 400 for an unknown
    service or a date not written YYYY-MM-DD.

    Send `Idempotency-Key` to make retries safe. A sandbox release's campaign is a
    sandbox one: only test-mode keys reach it, its events go to test-mode webhooks.
    """
    body: NewPresaveCampaign = request.body
    module, account_id = services(request.context), request.account_id
    made = await module.start_presave(account_id, request.params["release_id"], body.title,
                                      body.artist, body.release_date, body.services)
    found = _campaign(await module.presaves.campaign(account_id, made["campaign_id"]))
    return answer_one(request, found, status=201,
                      headers={"Location": f"/api/v1/presave-campaigns/{found.id}"})


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
PRESAVES = "/presave-campaigns"
STATEMENTS = "/royalty-statements"

ROUTES = [
    Route(method="GET", path="/releases", handler=list_releases, permission=READ,
          response=ReleasePage, query=ReleaseFilter),
    Route(method="POST", path="/releases", handler=create_release, permission=RELEASES,
          body=NewRelease, response=Release, status=201, max_body=MAX_RELEASE_BYTES,
          idempotent=True),
    Route(method="GET", path=RELEASE, handler=get_release, permission=READ,
          response=Release, query=PublicOne),
    Route(method="GET", path=f"{RELEASE}/deliveries", handler=list_deliveries,
          permission=READ, response=ReleaseDeliveryPage, query=DeliveryFilter),
    Route(method="POST", path=f"{RELEASE}/deliveries", handler=deliver_release,
          permission=DELIVER, body=NewReleaseDeliveries, response=ReleaseDeliveryList,
          status=202, idempotent=True),
    Route(method="POST", path=f"{RELEASE}/deliveries/{{delivery_id}}/retry",
          handler=retry_delivery, permission=DELIVER, body=Empty, response=ReleaseDelivery,
          status=202, idempotent=True),
    Route(method="GET", path=f"{RELEASE}{PRESAVES}", handler=list_release_presaves,
          permission=READ, response=PresaveCampaignPage, query=PublicListing),
    Route(method="POST", path=f"{RELEASE}{PRESAVES}", handler=create_presave,
          permission=RELEASES, body=NewPresaveCampaign, response=PresaveCampaign,
          status=201, idempotent=True),
    Route(method="GET", path=PRESAVES, handler=list_presaves, permission=READ,
          response=PresaveCampaignPage, query=PresaveCampaignFilter),
    Route(method="GET", path=f"{PRESAVES}/{{campaign_id}}", handler=get_presave,
          permission=READ, response=PresaveCampaign, query=PublicOne),
    Route(method="GET", path=STATEMENTS, handler=list_statements, permission=ROYALTIES,
          response=RoyaltyStatementPage, query=PublicListing),
    Route(method="GET", path=f"{STATEMENTS}/{{statement_id}}", handler=get_statement,
          permission=ROYALTIES, response=RoyaltyStatement, query=PublicOne),
]
