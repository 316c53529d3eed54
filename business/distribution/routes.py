"""HTTP routes of the distribution plug-in, declared through the plug-in API.

Each handler receives a :class:`dawserver.plugin_api.Request` (``account_id``,
``params``, validated ``query`` and ``body``, ``context``) and returns an answer
of its route's model. Domain errors become ``{"error": message}`` answers: 404 for
what does not exist, 400 for what the domain refuses, 422 (with ``issues``) for a
release stopped by the compliance gate. Who may do what: :mod:`.permissions`.
"""

from __future__ import annotations

from typing import Any

from business.distribution.errors import ComplianceError, DistributionError, NotFoundError
from business.distribution.files import (
    MEDIA_TYPES,
    AccountFiles,
    FileTooLargeError,
    NotMediaError,
)
from business.distribution.permissions import DELIVER, READ, RELEASES, ROYALTIES
from business.distribution.presave import landing_page
from business.distribution.schemas import (
    AccountFile,
    AuditEntry,
    AuditQuery,
    Balance,
    Campaign,
    CampaignIn,
    DdexQuery,
    DeliveryJob,
    DeliveryMetrics,
    DeliveryRequest,
    Joined,
    LandingQuery,
    PresaveIn,
    Reconciled,
    ReleaseIn,
    ReleaseStatus,
    ReleaseSummary,
    Report,
    Split,
    SplitIn,
    SplitWithHistory,
    StatementImport,
    StatementQuery,
    Store,
    Unallocated,
    UnallocatedQuery,
)
from business.distribution.schemas import Release as ReleaseOut
from business.distribution.services import services
from dawserver.plugin_api import (
    PUBLIC,
    BadRequest,
    Empty,
    Media,
    NotFound,
    PayloadTooLarge,
    Reply,
    Request,
    Route,
    Unprocessable,
    UnsupportedMediaType,
    map_errors,
)

#: The domain's errors as HTTP errors (the first rule that matches decides).
_api = map_errors(
    (ComplianceError, lambda exc: Unprocessable(str(exc),
                                                issues=[vars(i) for i in exc.issues])),
    (NotFoundError, NotFound),
    # a refused upload's body may be unread: close rather than read on into it
    (FileTooLargeError, lambda exc: PayloadTooLarge(str(exc), headers={"Connection": "close"})),
    (NotMediaError, UnsupportedMediaType),
    ((DistributionError, UnicodeDecodeError), BadRequest),
)


@_api
async def list_releases(request: Request) -> Any:
    """The account's releases: id, title, gate status and date."""
    return await services(request.context).catalog.list_releases(request.account_id)


@_api
async def save_release(request: Request) -> Reply:
    """Create a release (POST: 201, also when its body names one it replaces), or replace
    the one in the path (PUT: 200; 201 if it was new)."""
    raw = request.body.model_dump(exclude_unset=True, exclude_none=True)  # null: the default
    if "release_id" in request.params:
        raw["release_id"] = request.params["release_id"]
    created: list[str] = []

    async def made(tx: Any, release_id: str) -> None:
        created.append(release_id)

    release = await services(request.context).catalog.save_release(
        request.account_id, raw, on_create=made)
    replaced = "release_id" in request.params and not created
    return Reply(release.to_dict(), status=200 if replaced else 201)


@_api
async def get_release(request: Request) -> Any:
    """A release with its gate status and last compliance report."""
    catalog = services(request.context).catalog
    release_id = request.params["release_id"]
    release = await catalog.get_release(request.account_id, release_id)
    return {**release.to_dict(), **await catalog.status(request.account_id, release_id)}


@_api
async def check_release(request: Request) -> Any:
    """Run the compliance gate on a release: metadata, audio and artwork."""
    report = await services(request.context).catalog.check(
        request.account_id, request.params["release_id"])
    return report.to_dict()


@_api
async def deliver(request: Request) -> Any:
    """Queue delivery jobs of a release (what passes the gate now is what ships)."""
    body: DeliveryRequest = request.body
    module = services(request.context)
    release_id = request.params["release_id"]
    stores = body.stores or sorted(module.pipeline.connectors)
    await module.catalog.get_release(request.account_id, release_id)
    snapshot_id = ""
    if body.action != "takedown":
        snapshot_id = await module.catalog.snapshot(request.account_id, release_id,
                                                    action=body.action,
                                                    redeliver=body.redeliver)
    return await module.pipeline.enqueue(request.account_id, release_id, stores, body.action,
                                         redeliver=body.redeliver, snapshot_id=snapshot_id)


@_api
async def deliveries(request: Request) -> Any:
    """The delivery jobs of a release, one per store."""
    return await services(request.context).pipeline.jobs(
        request.account_id, request.params["release_id"])


@_api
async def retry_job(request: Request) -> Any:
    """Put a dead delivery job back in the queue (same message, attempts reset)."""
    return await services(request.context).pipeline.retry_dead(
        request.account_id, request.params["job_id"])


@_api
async def metrics(request: Request) -> Any:
    """Delivery jobs per state, attempts, time per state and delivery lag."""
    return await services(request.context).pipeline.metrics(request.account_id)


@_api
async def stores(request: Request) -> Any:
    """The configured stores."""
    connectors = services(request.context).pipeline.connectors.values()
    return [{"name": c.name, "dpid": c.party.dpid, "display_name": c.party.name}
            for c in connectors]


@_api
async def ddex_preview(request: Request) -> Reply:
    """The DDEX ERN message a store would receive for the release."""
    module, query = services(request.context), request.query
    store = query.store or next(iter(sorted(module.pipeline.connectors)), "")
    package = await module.catalog.package(
        request.account_id, request.params["release_id"], store, query.action, "preview")
    return Reply(package.xml, media_type="application/xml")


@_api
async def set_split(request: Request) -> Any:
    """Set a track's split; money held for the track is allocated by it."""
    split = await services(request.context).royalties.set_split(
        request.account_id, request.params["isrc"], request.body.model_dump(),
        changed_by=request.user or request.account_id)
    return split.to_dict()


@_api
async def get_split(request: Request) -> Any:
    """A track's split and its history."""
    royalties = services(request.context).royalties
    isrc = request.params["isrc"]
    split = await royalties.get_split(request.account_id, isrc)
    return {**split.to_dict(), "history": await royalties.history(request.account_id, isrc)}


@_api
async def join_payee(request: Request) -> Any:
    """Mark a payee as joined and pay them what was held for them."""
    released = await services(request.context).royalties.join_payee(
        request.account_id, request.params["payee_id"],
        changed_by=request.user or request.account_id)
    return {"released_entries": released}


@_api
async def audit(request: Request) -> Any:
    """Payee and split events of the account, oldest first."""
    return await services(request.context).royalties.audit(
        request.account_id, request.query.subject or None)


@_api
async def import_statement(request: Request) -> Reply:
    """Import a store's earnings statement (CSV) once; 200 when it was imported before."""
    text = request.body.decode("utf-8-sig", errors="strict")
    result = await services(request.context).royalties.import_statement(
        request.account_id, text, source=request.query.source)
    return Reply(result, status=200 if result["duplicate"] else 201)


@_api
async def reconcile(request: Request) -> Any:
    """A statement's totals against the ledger, per currency."""
    return await services(request.context).royalties.reconcile(
        request.account_id, request.params["statement_id"])


@_api
async def balances(request: Request) -> Any:
    """Cents per payee, currency and status."""
    return await services(request.context).royalties.balances(request.account_id)


@_api
async def unallocated(request: Request) -> Any:
    """Money held for tracks without a split."""
    return await services(request.context).royalties.unallocated(
        request.account_id, request.query.isrc or None)


def _files(request: Request) -> AccountFiles:
    """The requesting account's own files."""
    return AccountFiles(services(request.context).catalog.media_folder(request.account_id))


@_api
async def upload_file(request: Request) -> Reply:
    """Put a file into the account's folder (the body: JPEG/PNG art or WAV/FLAC audio, at
    most 200 MiB); 201 with the ``path`` a release names it by, 200 when it replaced the
    file of that name."""
    length = request.headers.get("Content-Length", "")
    made, replaced = await _files(request).write(
        request.params["file_name"], request.chunks(),
        int(length) if length.isdigit() else None)
    return Reply(made, status=200 if replaced else 201)


@_api
async def list_files(request: Request) -> Any:
    """The account's files, by name."""
    return await _files(request).list()


@_api
async def delete_file(request: Request) -> Any:
    """Delete one of the account's files (a release naming it fails the gate after)."""
    return await _files(request).delete(request.params["file_name"])


@_api
async def create_presave(request: Request) -> Any:
    """Start a pre-save campaign for a release."""
    body = request.body
    return await services(request.context).start_presave(
        request.account_id, request.params["release_id"], body.title, body.artist,
        body.release_date, body.services)


@_api
async def presave_data(request: Request) -> Any:
    """A campaign's public data (no token needed)."""
    return await services(request.context).presaves.public(request.params["slug"])


@_api
async def presave(request: Request) -> Any:
    """A fan pre-saves the release on a service (no token needed)."""
    body: PresaveIn = request.body
    return await services(request.context).presaves.presave(
        request.params["slug"], body.fan, body.service,
        {"ref": body.ref, "utm_source": body.utm_source, "utm_campaign": body.utm_campaign})


@_api
async def presave_page(request: Request) -> str:
    """A campaign's public landing page (no token needed)."""
    query: LandingQuery = request.query
    return landing_page(await services(request.context).presaves.public(
        request.params["slug"]), query.model_dump())


BASE = "/api/distribution"
#: The most bytes of a release's JSON (an album's tracks and credits; files go by path).
MAX_RELEASE_BYTES = 1024 * 1024
RELEASE = f"{BASE}/releases/{{release_id}}"
FILES = f"{BASE}/files"

ROUTES = [
    Route(method="GET", path=f"{BASE}/releases", handler=list_releases, permission=READ,
          response=list[ReleaseSummary]),
    Route(method="POST", path=f"{BASE}/releases", handler=save_release, permission=RELEASES,
          body=ReleaseIn, response=ReleaseOut, status=201, name="create_release",
          max_body=MAX_RELEASE_BYTES),
    Route(method="GET", path=RELEASE, handler=get_release, permission=READ,
          response=ReleaseStatus),
    Route(method="PUT", path=RELEASE, handler=save_release, permission=RELEASES,
          body=ReleaseIn, response=ReleaseOut, status=201, statuses=(200,),
          name="replace_release", max_body=MAX_RELEASE_BYTES),
    Route(method="POST", path=f"{RELEASE}/check", handler=check_release, permission=RELEASES,
          body=Empty, response=Report),
    Route(method="GET", path=f"{RELEASE}/ddex", handler=ddex_preview, permission=READ,
          query=DdexQuery, response=Media("application/xml")),
    Route(method="POST", path=f"{RELEASE}/deliveries", handler=deliver, permission=DELIVER,
          body=DeliveryRequest, response=list[DeliveryJob], status=202),
    Route(method="GET", path=f"{RELEASE}/deliveries", handler=deliveries, permission=READ,
          response=list[DeliveryJob]),
    Route(method="POST", path=f"{BASE}/deliveries/{{job_id}}/retry", handler=retry_job,
          permission=DELIVER, body=Empty, response=DeliveryJob, status=202),
    Route(method="GET", path=f"{BASE}/metrics", handler=metrics, permission=READ,
          response=DeliveryMetrics),
    Route(method="GET", path=f"{BASE}/stores", handler=stores, permission=READ,
          response=list[Store]),
    Route(method="PUT", path=f"{BASE}/splits/{{isrc}}", handler=set_split,
          permission=ROYALTIES, body=SplitIn, response=Split),
    Route(method="GET", path=f"{BASE}/splits/{{isrc}}", handler=get_split,
          permission=ROYALTIES, response=SplitWithHistory),
    Route(method="POST", path=f"{BASE}/payees/{{payee_id}}/join", handler=join_payee,
          permission=ROYALTIES, body=Empty, response=Joined),
    Route(method="GET", path=f"{BASE}/audit", handler=audit, permission=ROYALTIES,
          query=AuditQuery, response=list[AuditEntry]),
    Route(method="POST", path=f"{BASE}/statements", handler=import_statement,
          permission=ROYALTIES, query=StatementQuery, body=Media("text/csv", "text/plain"),
          response=StatementImport, status=201, statuses=(200,)),
    Route(method="GET", path=f"{BASE}/statements/{{statement_id}}/reconcile",
          handler=reconcile, permission=ROYALTIES, response=dict[str, Reconciled]),
    Route(method="GET", path=f"{BASE}/balances", handler=balances, permission=ROYALTIES,
          response=list[Balance]),
    Route(method="GET", path=f"{BASE}/unallocated", handler=unallocated,
          permission=ROYALTIES, query=UnallocatedQuery, response=list[Unallocated]),
    Route(method="PUT", path=f"{FILES}/{{file_name}}", handler=upload_file,
          permission=RELEASES, body=Media(*MEDIA_TYPES, stream=True), response=AccountFile,
          status=201, statuses=(200,)),
    Route(method="GET", path=FILES, handler=list_files, permission=READ,
          response=list[AccountFile]),
    Route(method="DELETE", path=f"{FILES}/{{file_name}}", handler=delete_file,
          permission=RELEASES, response=AccountFile),
    Route(method="POST", path=f"{RELEASE}/presave", handler=create_presave,
          permission=RELEASES, body=CampaignIn, response=Campaign, status=201),
    Route(method="GET", path="/api/presave/{slug}", handler=presave_data, permission=PUBLIC,
          response=Campaign),
    Route(method="POST", path="/api/presave/{slug}", handler=presave, permission=PUBLIC,
          body=PresaveIn, forms=True, response=Campaign),
    Route(method="GET", path="/presave/{slug}", handler=presave_page, permission=PUBLIC,
          query=LandingQuery, response=Media("text/html")),
]
