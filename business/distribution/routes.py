"""HTTP routes of the distribution plug-in (framework-neutral handlers).

Each handler receives the server's plug-in request (``account_id``, ``match_info``,
``query``, ``json()``, ``body()``, ``context``) and returns ``(status, body)``.
Errors come back as ``{"error": message}`` (and ``issues`` for the compliance gate).

Who may do what (the server maps a token's role to these): viewers read releases,
checks, DDEX previews and delivery status; editors also create, edit and check
releases and start pre-save campaigns; owners also deliver to stores and handle
money (splits, payees, statements, balances). Pre-save landing data is public.
"""

from __future__ import annotations

import functools
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any

from business.distribution.errors import ComplianceError, DistributionError, NotFoundError
from business.distribution.plugin import services
from business.distribution.presave import landing_page

Handler = Callable[[Any], Awaitable[tuple]]

PERMISSIONS = [
    ("distribution.read", "see releases, checks, DDEX previews, deliveries and stores",
     "viewer"),
    ("distribution.releases", "create, edit and check releases; start pre-save campaigns",
     "editor"),
    ("distribution.deliver", "send releases, updates and takedowns to stores", "owner"),
    ("distribution.royalties", "manage splits and payees, import statements, read balances",
     "owner"),
]
#: The permission of routes anyone may use (the server's ``hookspecs.PUBLIC``).
PUBLIC = "public"


def _api(handler: Handler) -> Handler:
    @functools.wraps(handler)
    async def wrapped(request: Any) -> tuple:
        try:
            return await handler(request)
        except ComplianceError as exc:
            return 422, {"error": str(exc), "issues": [vars(i) for i in exc.issues]}
        except NotFoundError as exc:
            return 404, {"error": str(exc)}
        except (DistributionError, ValueError) as exc:
            return 400, {"error": str(exc)}

    return wrapped


async def _object(request: Any) -> dict[str, Any]:
    data = await request.json()
    if not isinstance(data, dict):
        raise ValueError("the request body must be a JSON object")
    return data


@_api
async def list_releases(request: Any) -> tuple:
    return 200, await services(request.context).catalog.list_releases(request.account_id)


@_api
async def save_release(request: Any) -> tuple:
    raw = await _object(request)
    if "release_id" in request.match_info:
        raw["release_id"] = request.match_info["release_id"]
    release = await services(request.context).catalog.save_release(request.account_id, raw)
    return 201, release.to_dict()


@_api
async def get_release(request: Any) -> tuple:
    catalog = services(request.context).catalog
    release_id = request.match_info["release_id"]
    release = await catalog.get_release(request.account_id, release_id)
    return 200, {**release.to_dict(), **await catalog.status(request.account_id, release_id)}


@_api
async def check_release(request: Any) -> tuple:
    report = await services(request.context).catalog.check(
        request.account_id, request.match_info["release_id"])
    return 200, report.to_dict()


@_api
async def deliver(request: Any) -> tuple:
    body = await _object(request)
    module = services(request.context)
    release_id, action = request.match_info["release_id"], body.get("action", "new")
    stores = body.get("stores") or sorted(module.pipeline.connectors)
    await module.catalog.get_release(request.account_id, release_id)
    snapshot_id = ""
    if action != "takedown":  # what passes the gate now is what ships
        snapshot_id = await module.catalog.snapshot(request.account_id, release_id)
    jobs = await module.pipeline.enqueue(request.account_id, release_id, stores, action,
                                         redeliver=bool(body.get("redeliver")),
                                         snapshot_id=snapshot_id)
    return 202, jobs


@_api
async def deliveries(request: Any) -> tuple:
    return 200, await services(request.context).pipeline.jobs(
        request.account_id, request.match_info["release_id"])


@_api
async def retry_job(request: Any) -> tuple:
    return 202, await services(request.context).pipeline.retry_dead(
        request.account_id, request.match_info["job_id"])


@_api
async def metrics(request: Any) -> tuple:
    return 200, await services(request.context).pipeline.metrics(request.account_id)


@_api
async def stores(request: Any) -> tuple:
    connectors = services(request.context).pipeline.connectors.values()
    return 200, [{"name": c.name, "dpid": c.party.dpid, "display_name": c.party.name}
                 for c in connectors]


@_api
async def ddex_preview(request: Any) -> tuple:
    module = services(request.context)
    store = request.query.get("store") or next(iter(sorted(module.pipeline.connectors)), "")
    package = await module.catalog.package(
        request.account_id, request.match_info["release_id"], store,
        request.query.get("action", "new"), "preview")
    return 200, package.xml, {"Content-Type": "application/xml"}


@_api
async def set_split(request: Any) -> tuple:
    split = await services(request.context).royalties.set_split(
        request.account_id, request.match_info["isrc"], await _object(request),
        changed_by=request.user or request.account_id)
    return 200, split.to_dict()


@_api
async def get_split(request: Any) -> tuple:
    royalties = services(request.context).royalties
    isrc = request.match_info["isrc"]
    split = await royalties.get_split(request.account_id, isrc)
    return 200, {**split.to_dict(), "history": await royalties.history(request.account_id,
                                                                        isrc)}


@_api
async def join_payee(request: Any) -> tuple:
    released = await services(request.context).royalties.join_payee(
        request.account_id, request.match_info["payee_id"],
        changed_by=request.user or request.account_id)
    return 200, {"released_entries": released}


@_api
async def audit(request: Any) -> tuple:
    return 200, await services(request.context).royalties.audit(
        request.account_id, request.query.get("subject") or None)


@_api
async def import_statement(request: Any) -> tuple:
    text = request.body().decode("utf-8-sig", errors="strict")
    result = await services(request.context).royalties.import_statement(
        request.account_id, text, source=request.query.get("source", ""))
    return (200 if result["duplicate"] else 201), result


@_api
async def reconcile(request: Any) -> tuple:
    return 200, await services(request.context).royalties.reconcile(
        request.account_id, request.match_info["statement_id"])


@_api
async def balances(request: Any) -> tuple:
    return 200, await services(request.context).royalties.balances(request.account_id)


@_api
async def unallocated(request: Any) -> tuple:
    return 200, await services(request.context).royalties.unallocated(
        request.account_id, request.query.get("isrc") or None)


@_api
async def create_presave(request: Any) -> tuple:
    module = services(request.context)
    release = await module.catalog.get_release(request.account_id,
                                               request.match_info["release_id"])
    body = await _object(request)
    data = await module.presaves.create(
        request.account_id, release.release_id, body.get("title") or release.title,
        body.get("artist") or " & ".join(release.primary_artists()),
        body.get("release_date") or release.release_date, body.get("services"))
    return 201, data


@_api
async def presave_data(request: Any) -> tuple:
    return 200, await services(request.context).presaves.public(request.match_info["slug"])


@_api
async def presave(request: Any) -> tuple:
    raw = request.body()
    try:
        body = await _object(request)
    except ValueError:
        body = dict(urllib.parse.parse_qsl(raw.decode("utf-8", errors="replace")))
    data = await services(request.context).presaves.presave(
        request.match_info["slug"], str(body.get("fan", "")), str(body.get("service", "")))
    return 200, data


@_api
async def presave_page(request: Any) -> tuple:
    data = await services(request.context).presaves.public(request.match_info["slug"])
    return 200, landing_page(data)


_V, _R, _D, _M = (p[0] for p in PERMISSIONS)
BASE = "/api/distribution"

ROUTES: list[tuple] = [
    ("GET", f"{BASE}/releases", list_releases, _V),
    ("POST", f"{BASE}/releases", save_release, _R),
    ("GET", f"{BASE}/releases/{{release_id}}", get_release, _V),
    ("PUT", f"{BASE}/releases/{{release_id}}", save_release, _R),
    ("POST", f"{BASE}/releases/{{release_id}}/check", check_release, _R),
    ("GET", f"{BASE}/releases/{{release_id}}/ddex", ddex_preview, _V),
    ("POST", f"{BASE}/releases/{{release_id}}/deliveries", deliver, _D),
    ("GET", f"{BASE}/releases/{{release_id}}/deliveries", deliveries, _V),
    ("POST", f"{BASE}/deliveries/{{job_id}}/retry", retry_job, _D),
    ("GET", f"{BASE}/metrics", metrics, _V),
    ("GET", f"{BASE}/stores", stores, _V),
    ("PUT", f"{BASE}/splits/{{isrc}}", set_split, _M),
    ("GET", f"{BASE}/splits/{{isrc}}", get_split, _M),
    ("POST", f"{BASE}/payees/{{payee_id}}/join", join_payee, _M),
    ("GET", f"{BASE}/audit", audit, _M),
    ("POST", f"{BASE}/statements", import_statement, _M),
    ("GET", f"{BASE}/statements/{{statement_id}}/reconcile", reconcile, _M),
    ("GET", f"{BASE}/balances", balances, _M),
    ("GET", f"{BASE}/unallocated", unallocated, _M),
    ("POST", f"{BASE}/releases/{{release_id}}/presave", create_presave, _R),
    ("GET", "/api/presave/{slug}", presave_data, PUBLIC),
    ("POST", "/api/presave/{slug}", presave, PUBLIC),
    ("GET", "/presave/{slug}", presave_page, PUBLIC),
]
