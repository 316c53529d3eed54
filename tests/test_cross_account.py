"""Every route with another account's ids: driven by the server's OpenAPI document.

Account A (Ada, her organisation, its project, key, session, asset, release and
delivery across the core and the distribution plug-in) is real. Person B calls every
route whose path names one of A's objects, with A's real ids filled in, three ways:
B's session cookie (with B's CSRF token), B's API key (every scope), and a project
token of B's own project. Each answer is 403 or 404, never a success, and never
carries A's data. Routes public by design are listed with the reason.

Every other operation that names an account in its query (``?account=``, ``?seller=``...)
or its body is called the same three ways with A's organisation, then A, in it, and a
body valid for A: 403 or 404 again. Query parameters that name one of A's objects
(``?entity=``...) are tried too; there B acts for B and may succeed, never with A's data.
Bodies that are too large or malformed on the account routes answer 413, 400 or 422
with an error.
"""

from __future__ import annotations

import asyncio
import json
import re
import struct
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
from accounts_helpers import PASSWORD, Person, accounts_server
from distribution_helpers import make_art, make_audio, release_dict
from smtp_server import SmtpServer

from business.distribution.stores.fakestore import FakeStore
from dawserver.account_routes import key_scope_names
from dawserver.keys import PLUGIN_CONTEXT_KEY, TOKENS
from dawserver.public_api.webhook_signature import new_secret
from dawserver.public_api.webhooks.service import deliverer

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(240)]

#: Routes that answer anyone by design, and why (their parameters name no private data).
#: The marketplace's cart routes name a seller, not an object of the seller's.
CALLERS_CART = ("the caller's own cart at a seller's store: the seller is public (a "
                "storefront), the cart belongs to whoever calls")
PUBLIC_BY_DESIGN = {
    "/auth/oidc/{provider}/start": "a configured sign-in provider's name, not an account",
    "/auth/oidc/{provider}/callback": "the provider's redirect; checked by state and PKCE",
    "/auth/sso/{org_id}/start": "an organisation's single sign-on: anyone may start it, and "
                                "only the organisation's provider can finish it",
    "/auth/sso/{org_id}/callback": "the organisation provider's redirect; state and PKCE",
    "/api/presave/{slug}": "a pre-save campaign's public page data (fans see it)",
    "/api/social/channels/callback/{network}": "a network's OAuth redirect; checked by "
                                               "its single-use state and PKCE",
    "/presave/{slug}": "a pre-save campaign's public page",
    "/developer/docs/{guide}": "a guide of the public developer docs, the same for everyone",
    "/api/marketplace/downloads/{licence_id}/{file_id}": "a signed, expiring download link: "
                                                         "its HMAC signature is the key",
    "/storage/{key}": "a signed, expiring link to a stored object (local disk): its HMAC "
                      "signature over key and expiry is the key; unsigned or altered links "
                      "answer 403",
    "/api/marketplace/previews/{seller}/{beat_id}": "a beat's tagged preview, what its "
                                                    "storefront plays to anyone (never the "
                                                    "untagged file)",
    "/api/marketplace/carts/{seller}": CALLERS_CART,
    "/api/marketplace/carts/{seller}/items/{beat_id}": CALLERS_CART,
    "/api/marketplace/carts/{seller}/checkout": CALLERS_CART,
    "/api/marketplace/carts/{seller}/claim": CALLERS_CART,
    "/api/marketplace/splits/{seller}/{beat_id}/accept": "a collaborator accepts their own "
                                                         "part of a seller's split: anyone "
                                                         "it does not name gets 404",
    "/api/marketplace/splits/{seller}/{beat_id}/decline": "a collaborator declines their "
                                                          "own part of a seller's split: "
                                                          "anyone it does not name gets 404",
    "/s/{code}": "a post's short link: redirects anyone and counts the click; the code is "
                 "random and the answer carries no account data",
    "/static/{path}": "the page's static files",
    "/plugins/social/static/{path}": "the social calendar page's static files (its data "
                                     "comes from the social routes swept here)",
    "/plugins/analytics/static/{path}": "the analytics dashboard's static files (its data "
                                        "comes from the analytics routes swept here)",
    "/plugins/marketplace/static/{path}": "the sales reports page's static files (its "
                                          "data comes from the report routes swept here)",
    "/plugins/core/static/{path}": "the developer dashboard's static files (its data comes "
                                   "from GET /api/v1/usage, swept here)",
    "/store/{handle}": "a seller's public storefront (what it shows is on sale to anyone)",
    "/store/{handle}/beats/{beat_id}": "a beat's public page in its seller's storefront",
    "/store/{handle}/embed/{beat_id}": "a beat's embeddable player (public, framable)",
    "/store/{handle}/preview/{beat_id}": "a beat's tagged preview in its storefront (public)",
    "/store/{handle}/cart": "a visitor's own cart at a storefront (its signed cookie is the "
                            "cart; the store is public)",
    "/store/{handle}/sitemap.xml": "a storefront's sitemap (public)",
    "/store/{handle}/media/{asset_id}": "a storefront's logo, banner or tagged preview only, "
                                        "never a paid file",
    "/account/{page}": "the account pages' HTML (sign-in, sign-up...); their data comes from "
                       "the API routes swept here",
}
#: What A's secrets look like in a body: none may show through.
A_NAME, A_EMAIL, A_TITLE = "Ada Secret Label", "ada@example.org", "Night Drive Secret"

#: Query parameters and (top-level) body fields that name an account: a person or an
#: organisation. Every operation with one is called with A's organisation, then A, in it.
ACCOUNT_NAMES = frozenset({
    "account", "account_id", "org", "org_id", "organisation", "organisation_id", "owner",
    "owner_id", "person", "person_id", "user", "user_id", "seller", "seller_id", "buyer",
    "member", "assignee", "team", "grantee"})
#: Account-naming parameters that do not choose the account an operation acts for, and why.
#: The operation acts for the caller (B) and may answer 2xx, but never with A's data.
ACTS_FOR_THE_CALLER = {
    ("GET", "/api/social/inbox/items", "assignee"): "filters the caller's own inbox by the "
                                                    "person its items are assigned to",
    ("POST", "/api/social/inbox/rules", "team"): "a rule of the caller's own inbox: whom it "
                                                 "hands the caller's items to (anyone not "
                                                 "of the caller's account is refused, 422)",
    ("POST", "/api/marketplace/checkout", "seller"): "the caller's own order of a beat at a "
                                                     "seller's public store",
    ("POST", "/api/marketplace/memberships", "seller"): "the caller's own membership of a "
                                                        "seller's public plan",
}
#: Account-naming parameters of public operations, not called, and why.
PUBLIC_ACCOUNT_PARAMETERS = {
    ("GET", "/api/marketplace/catalogue", "seller"): "a seller's public catalogue: the "
                                                     "beats on sale to anyone",
}
#: Query parameters that name one of A's objects, by the key of its id: an operation
#: acting for the caller (B) may answer 2xx with one of them, never with A's data.
OBJECT_QUERY = {"entity": "entity_id", "source": "source_id", "channel": "channel_id",
                "channel_id": "channel_id", "isrc": "isrc", "subject": "release_id",
                "platform_id": "entity_id"}
#: Operations swept last: let through, they would end the caller's session or account.
ENDS_THE_CALLER = ("/auth/sign-out", "/me/sessions", "/me/password", "/me/delete")
#: Valid values of required body fields whose schema alone does not make one, by name
#: (a field named like one of A's objects gets that object's id: the body is valid for A).
FIELD_VALUES: dict[str, Any] = {
    "currency": "usd", "email": "bo@example.org", "url": "https://hooks.example.org/b",
    "events": ["marketplace.sale"], "password": PASSWORD, "sql": "SELECT 1",
    "name": "Bo's", "title": "Bo's", "handle": "bos-store", "folder": "samples",
    "metric": "streams", "from": "2024-05-01T00:00:00+00:00",
    "to": "2024-05-08T00:00:00+00:00"}
#: What a valid body of an operation needs besides that: values of its fields at any depth,
#: its optional top-level fields among them (or the whole body, not JSON).
BODY_FIELDS: dict[tuple[str, str], Any] = {
    ("POST", "/api/graphql"): {"query": "{ me { id name } projects { edges { node { id "
                                        "name } } } }"},
    ("POST", "/api/social/posts"): {"text": "Bo's"},
    ("POST", "/api/social/inbox/rules"): {"kind": "round_robin"},
    ("POST", "/api/social/listening/queries"): {"term": "Bo's"},
    ("POST", "/api/marketplace/beats"): {"key": "A minor", "kind": "wav", "tiers": [
        {"tier": "wav_lease", "price": 2999, "files": ["wav"]}]},
    ("POST", "/api/distribution/statements"): b"store,territory,isrc,units,amount,currency\n",
}
#: Query parameters naming one of A's objects that an operation's reads need to find
#: anything (the analytics reads name an entity): the sweep names A's, by its key in ids.
READ_QUERY = {"entity": "entity_id"}
#: A request body: its content type and content (bytes, or a JSON value).
Body = tuple[str, Any]


def wav_bytes(seconds: float = 0.2, rate: int = 8000) -> bytes:
    """A small mono 16-bit WAV file."""
    frames = b"\x00\x10" * int(seconds * rate)
    return (b"RIFF" + struct.pack("<I", 36 + len(frames)) + b"WAVEfmt " +
            struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16) + b"data" +
            struct.pack("<I", len(frames)) + frames)


async def make_social_channel(app: Any, account_id: str) -> str:
    """A connected social channel of ``account_id`` (as an OAuth callback stores it)."""
    from business.social.models import ChannelTokens
    from business.social.services import services

    module = services(app[PLUGIN_CONTEXT_KEY])
    box = module.channels.box
    sealed = ChannelTokens(box.seal("a-access"), box.seal("a-refresh"), None, "", 1, 0.0, 0.0)
    async with module.store.db.transaction() as tx:
        return await module.store.insert_channel(tx, account_id, "x", "remote-ada", A_NAME,
                                                 "@ada", sealed, "p_ada", 0.0)


async def make_analytics(app: Any, account_id: str) -> dict[str, str]:
    """A's connected analytics source, a run of it, points and a catalogue entity."""
    from datetime import UTC, date, datetime

    from business.analytics.dashboard_schemas import DashboardIn
    from business.analytics.services import services as analytics
    from business.analytics.sources.base import Credentials
    from business.analytics.sources.records import Identity, Point

    context = app[PLUGIN_CONTEXT_KEY]
    module = analytics(context)
    source = await module.connections.connect(account_id, "spotify", "artist", "ada-artist",
                                              Credentials("id", "secret"), "ada", A_NAME)
    # never scheduled, and its run stops at once: nothing reaches the real platform
    await module.connections.flag(account_id, source.source_id, "needs_reconnect", "test")
    await context.database().execute(
        "UPDATE analytics_sources SET next_run_at = 1e12 WHERE account_id = ?", account_id)
    run, _ = await module.runs.start(context, account_id, source.source_id, "backfill",
                                     date(2024, 5, 1), date(2024, 5, 3), "ada")
    found = await module.catalog.resolve(account_id, [
        Identity("spotify", "track", "ada-track", A_TITLE, isrc="QZES62400001")])
    threshold = await module.milestones.add_threshold(account_id, "streams", 15, by="ada")
    points = [Point("spotify", "track", "ada-track", "streams",
                    datetime(2024, 5, d, tzinfo=UTC), 10 if d < 4 else 20) for d in (1, 2, 3, 4)]
    await module.store.upsert(account_id, points)
    milestone = (await module.milestones.detect(account_id, points))[0]
    entity_id = found[("spotify", "track", "ada-track")].entity_id
    dashboard = await module.dashboards.create(account_id, "ada", DashboardIn.model_validate({
        "name": A_TITLE, "filters": {"entities": [entity_id]},
        "widgets": [{"widget_id": "w1", "kind": "table", "metric": "streams"}]}))
    await module.dashboards.share(account_id, "ada", dashboard["dashboard_id"], True)
    return {"source_id": source.source_id, "run_id": run.run_id, "entity_id": entity_id,
            "milestone_id": milestone["milestone_id"],
            "threshold_id": threshold["threshold_id"],
            "dashboard_id": dashboard["dashboard_id"], "widget_id": "w1"}


async def make_webhook(app: Any, org_id: str) -> dict[str, str]:
    """A's webhook with one delivery in its log (written directly: no DNS here)."""
    service = deliverer(app[PLUGIN_CONTEXT_KEY])
    sub = await service.store.create(org_id, url="https://hooks.example.org/a",
                                     events=["marketplace.sale"], description=A_TITLE,
                                     secret=new_secret(), created_by="p")
    async with service.db.transaction() as tx:
        delivery, _ = await service.store.add_delivery(sub, "event-of-ada", "marketplace.sale",
                                                       "{}", tx=tx)
    return {"webhook_id": sub.id, "delivery_id": delivery}


async def make_account_a(ada: Person, tmp_path: Path, app: Any = None) -> dict[str, str]:
    """A's real objects; their ids by the path parameter that names them."""
    await ada.sign_up_and_in("Ada")
    _, org, _ = await ada.call("POST", "/accounts", {"name": A_NAME})
    org_id = org["id"]
    status, project, _ = await ada.call("POST", f"/accounts/{org_id}/projects",
                                        {"name": "Ada's Song"})
    assert status == 201, project
    project_id = project["id"]
    status, key, _ = await ada.call("POST", f"/accounts/{org_id}/keys",
                                    {"name": "ci", "scopes": ["project.read"]})
    assert status == 201, key
    status, invitation, _ = await ada.call("POST", f"/accounts/{org_id}/invitations",
                                           {"email": "someone@example.org", "role": "member"})
    assert status == 201, invitation
    _, sessions, _ = await ada.call("GET", "/me/sessions")
    async with ada.http.post(f"{ada.base_url}/projects/{project_id}/assets",
                             data=wav_bytes(1.0), headers={"Content-Type": "audio/wav",
                                                        "X-CSRF-Token": ada.csrf}) as response:
        asset = await response.json()
        assert response.status == 201, asset
    query = f"?account={org_id}"
    uploaded = {}  # A's own distribution files, the only ones her release may name
    for made in (make_audio(tmp_path / "a-render.wav", seconds=1.0),
                 make_art(tmp_path / "a-cover.jpg", size=1400)):
        async with ada.http.put(f"{ada.base_url}/api/distribution/files/{made.name}{query}",
                                data=made.read_bytes(), headers={
                                    "Content-Type": "application/octet-stream",
                                    "X-CSRF-Token": ada.csrf}) as response:
            uploaded[made.name] = await response.json()
            assert response.status == 201, uploaded[made.name]
    raw = release_dict(tmp_path / "release", art=Path(uploaded["a-cover.jpg"]["path"]),
                       audio=[Path(uploaded["a-render.wav"]["path"])], release_id="rel-ada")
    raw["title"] = A_TITLE
    status, release, _ = await ada.call("POST", f"/api/distribution/releases{query}", raw)
    assert status == 201, release
    status, jobs, _ = await ada.call(
        "POST", f"/api/distribution/releases/rel-ada/deliveries{query}", {})
    job_id = jobs[0]["job_id"] if status == 202 and jobs else "job-unknown"
    status, campaign, _ = await ada.call(
        "POST", f"/api/distribution/releases/rel-ada/presave{query}", {})
    assert status == 201, campaign
    status, export, _ = await ada.call("POST", "/me/export", {})
    assert status == 202, export
    channel_id = await make_social_channel(app, org_id) if app is not None else "ch-of-ada"
    status, post, _ = await ada.call("POST", f"/api/social/posts{query}", {
        "text": A_TITLE, "targets": [{"channel_id": channel_id}]})
    assert status == 201 or app is None, post
    status, listen, _ = await ada.call("POST", f"/api/social/listening/queries{query}", {
        "channel_id": channel_id, "kind": "keyword", "term": A_TITLE})
    assert status == 201 or app is None, listen
    status, rule, _ = await ada.call("POST", f"/api/social/inbox/rules{query}", {
        "kind": "round_robin", "team": [ada.id]})
    assert status == 201 or app is None, rule
    status, beat, _ = await ada.call("POST", f"/api/marketplace/beats{query}", {
        "title": A_TITLE, "bpm": 90, "key": "A minor", "currency": "usd",
        "files": [{"kind": "wav", "asset_id": asset["id"]}],
        "tiers": [{"tier": "wav_lease", "price": 2999, "files": ["wav"]}]})
    assert status == 201 or app is None, beat  # A's own upload, found by the platform
    status, coupon, _ = await ada.call("PUT", f"/api/marketplace/coupons/ADA10{query}",
                                       {"kind": "percent", "value": 10})
    assert status in (200, 201) or app is None, coupon
    status, deal, _ = await ada.call("PUT", f"/api/marketplace/deals/ada-deal{query}",
                                     {"buy": 2, "free": 1})
    assert status in (200, 201) or app is None, deal
    status, shop, _ = await ada.call("PUT", f"/api/marketplace/storefront{query}",
                                     {"handle": "ada-store", "name": A_NAME})
    assert status in (200, 201) or app is None, shop
    async with ada.http.post(f"{ada.base_url}/samples/uploads{query}&name={A_TITLE}.wav",
                             data=wav_bytes(), headers={"Content-Type": "audio/wav",
                                                        "X-CSRF-Token": ada.csrf}) as response:
        sample = await response.json()
        assert response.status == 200, sample
    picture = make_art(tmp_path / "a-post.jpg", size=64).read_bytes()
    async with ada.http.post(f"{ada.base_url}/api/social/media{query}&name=a-post.jpg",
                             data=picture, headers={"Content-Type": "image/jpeg",
                                                    "X-CSRF-Token": ada.csrf}) as response:
        upload = await response.json()
        assert response.status == 201, upload
    analytics = await make_analytics(app, org_id) if app is not None else {
        "source_id": "src-of-ada", "run_id": "run-of-ada", "entity_id": "entity-of-ada"}
    webhook = await make_webhook(app, org_id) if app is not None else {
        "webhook_id": "wh-of-ada", "delivery_id": "msg-of-ada"}
    return {
        **analytics,
        **webhook,
        "export_job_id": export["id"],
        "account_id": org_id, "person_id": ada.id, "grantee_id": ada.id, "user": ada.id,
        "project_id": project_id, "key_id": key["id"], "session_id": sessions[0]["id"],
        "invitation_id": invitation["id"],
        "asset_id": asset["id"], "release_id": "rel-ada", "job_id": job_id,
        "campaign_id": campaign["campaign_id"],
        "isrc": raw["tracks"][0]["isrc"],
        "file_name": "a-cover.jpg",  # a distribution file of A's
        # objects whose making takes a render or a transcription: ids of A's shape
        "job": "bounce-of-ada", "clip_id": "clip-of-ada", "statement_id": "st-of-ada",
        "bounce_id": "bounce-of-ada", "track_id": "track-of-ada",  # (/api/v1's names)
        "payee_id": "payee-of-ada",
        "connection_id": "connection-of-ada",  # a WebRTC connection's (one per offer)
        "channel_id": channel_id, "post_id": post.get("post_id", "post-of-ada"),
        "query_id": listen.get("query_id", "query-of-ada"),
        "rule_id": rule.get("rule_id", "rule-of-ada"), "item_id": "item-of-ada",
        "payout_id": "payout-of-ada",
        "network": "x",
        "beat_id": beat.get("beat_id", "beat-of-ada"), "tier": "wav_lease",
        "code": "ADA10", "order_id": "order-of-ada", "licence_id": "licence-of-ada",
        "file_id": "file-of-ada", "deal_id": "ada-deal",
        # a membership needs Stripe (not configured here): an id of A's shape
        "membership_id": "mship-of-ada",
        "sample_id": sample["id"],
        "media_id": upload["media_id"],
        "domain": "example.com",  # a single sign-on domain: B's calls name A's organisation
    }


async def call(http: aiohttp.ClientSession, method: str, url: str, headers: dict[str, str],
               body: Body | None = None) -> tuple[int, str]:
    """One request's status and text (with ``body``: its content type and content, else
    ``{}`` on writes); a 429 (B's key sweeping hundreds of routes outruns its plan's rate)
    is waited out as its Retry-After says and asked again."""
    content_type, content = body or ("application/json", None if method in (
        "GET", "DELETE", "HEAD") else {})
    sent = {**headers, "Content-Type": content_type} if isinstance(content, bytes) else headers
    data, json_body = (content, None) if isinstance(content, bytes) else (None, content)
    for _ in range(5):
        async with http.request(method, url, data=data, json=json_body, headers=sent,
                                allow_redirects=False) as response:
            text = (await response.read()).decode("utf-8", "replace")
            if response.status != 429:
                return response.status, text
            await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
    return 429, text


async def test_no_route_serves_account_a_to_anyone_else(tmp_path: Path,
                                                        smtp_server: SmtpServer) -> None:
    async with FakeStore() as store:
        plugins = {"distribution": {"stores": {"fake": {
            "url": store.url, "token": "secret", "dpid": "PADPIDA0000000001Z"}}}}
        async with accounts_server(tmp_path, smtp_server, plugins=plugins) as (app, config):
            ada = Person(config.base_url, smtp_server, A_EMAIL)
            bo = Person(config.base_url, smtp_server, "bo@example.org")
            try:
                ids = await make_account_a(ada, tmp_path, app)
                await bo.sign_up_and_in("Bo")
                _, bos_project, _ = await bo.call("POST", f"/accounts/{bo.id}/projects",
                                                  {"name": "Bo's"})
                _, document, _ = await bo.call("GET", "/api/openapi.json")
                _, key, _ = await bo.call("POST", f"/accounts/{bo.id}/keys", {
                    "name": "all", "scopes": key_scope_names(app[PLUGIN_CONTEXT_KEY])})
                assert "key" in key, key
                token = app[TOKENS].issue(bos_project["id"], "owner", bo.id)
                as_b = {
                    "session": ({"X-CSRF-Token": bo.csrf}, bo.http),
                    "key": ({"Authorization": f"Bearer {key['key']}"}, None),
                    "project token": ({"Authorization": f"Bearer {token}"}, None),
                }
                checked = await _every_route(config.base_url, document, ids, as_b)
                swept = await _every_account_parameter(config.base_url, document, ids, as_b)
                # every module's operations that name the account in their query were tried
                assert len(swept) >= 120 and {
                    ("GET", "/api/social/posts", "account"),
                    ("GET", "/api/distribution/releases", "account"),
                    ("GET", "/api/analytics/sources", "account"),
                    ("GET", "/api/marketplace/beats", "account"),
                    ("GET", "/samples", "account"), ("GET", "/api/v1/usage", "account"),
                    ("POST", "/api/graphql", "account"), ("GET", "/me", "account"),
                    ("GET", "/api/analytics/kpis", "entity")} <= swept, sorted(swept)
                # every kind of object was tried
                assert {"account_id", "project_id", "key_id", "session_id", "asset_id",
                        "release_id", "job_id", "person_id", "grantee_id", "channel_id",
                        "post_id", "network", "source_id", "run_id", "entity_id",
                        "sample_id", "webhook_id", "delivery_id", "media_id"} <= checked
                # B cannot sell A's upload: to B's account it is no asset at all
                status, refused, _ = await bo.call("POST", "/api/marketplace/beats", {
                    "title": "Bo's", "bpm": 90, "key": "A minor", "currency": "usd",
                    "files": [{"kind": "wav", "asset_id": ids["asset_id"]}],
                    "tiers": [{"tier": "wav_lease", "price": 2999, "files": ["wav"]}]})
                assert status == 422 and "no asset" in str(refused), refused
                # and A's objects survived B's every DELETE (the project's above all)
                project = f"/projects/{ids['project_id']}"
                status, shown, _ = await ada.call("GET", project)
                assert status == 200 and shown["document"]["meta"]["name"] == "Ada's Song"
                status, assets, _ = await ada.call("GET", f"{project}/assets")
                assert [a["id"] for a in assets] == [ids["asset_id"]]
                status, listed, _ = await ada.call("GET", "/me/projects")
                assert ids["project_id"] in [entry["id"] for entry in listed]
                status, uploads, _ = await ada.call(
                    "GET", f"/api/social/media?account={ids['account_id']}")
                assert [u["media_id"] for u in uploads] == [ids["media_id"]]
                status, files, _ = await ada.call(
                    "GET", f"/api/distribution/files?account={ids['account_id']}")
                assert status == 200 and [f["name"] for f in files] == [
                    "a-cover.jpg", "a-render.wav"], files
            finally:
                await ada.close()
                await bo.close()


async def _every_route(base_url: str, document: dict[str, Any], ids: dict[str, str],
                       as_b: dict[str, tuple[dict[str, str], aiohttp.ClientSession | None]]
                       ) -> set[str]:
    """Call every route naming A's objects as each B; the parameters tried."""
    tried: set[str] = set()
    failures = []
    async with aiohttp.ClientSession() as bare:
        for path, methods in document["paths"].items():
            names = re.findall(r"\{([^}]+)\}", path)
            if not names or path in PUBLIC_BY_DESIGN:
                continue
            unknown = [n for n in names if n not in ids]
            assert not unknown, (f"{path}: no object of A for {unknown}; make one in "
                                 f"make_account_a or list the route in PUBLIC_BY_DESIGN")
            own = {**ids, "job_id": ids["export_job_id"]} if path.startswith("/me/export/") \
                else ids  # A's export job, where the path names one
            url = base_url + path.format(**own)
            if "{" not in path.split("/")[1]:
                url += ("&" if "?" in url else "?") + f"account={ids['account_id']}"
            tried.update(names)
            for method in methods:
                for who, (headers, http) in as_b.items():
                    status, text = await call(http or bare, method.upper(), url, headers)
                    leaked = [s for s in (A_NAME, A_EMAIL, A_TITLE) if s in text]
                    if status not in (403, 404) or leaked:
                        failures.append(f"{method.upper()} {path} as B's {who}: {status} "
                                        f"{text[:160]} {leaked}")
    assert not failures, "\n".join(failures)
    return tried


async def _every_account_parameter(
        base_url: str, document: dict[str, Any], ids: dict[str, str],
        as_b: dict[str, tuple[dict[str, str], aiohttp.ClientSession | None]]
) -> set[tuple[str, str, str]]:
    """Call every operation without path parameters that names an account in its query
    or body as each B, with A's organisation and then A in it (and every query parameter
    naming one of A's objects with her object's id); the ``(method, path, name)`` swept.

    Naming an account B is not in answers 403 or 404; operations that act for their
    caller whatever they name (:data:`ACTS_FOR_THE_CALLER`, :data:`OBJECT_QUERY`) may
    answer B's own 2xx. None answers with A's data.
    """
    swept: set[tuple[str, str, str]] = set()
    failures = []
    schemas = document.get("components", {}).get("schemas", {})
    operations = sorted(_operations(document), key=lambda op: op[1] in ENDS_THE_CALLER)
    async with aiohttp.ClientSession() as bare:
        for method, path, operation in operations:
            if "{" in path:
                continue  # named A's objects: the path sweep calls it with ?account=
            queries = {p["name"]: p for p in operation.get("parameters", [])
                       if p.get("in") == "query"}
            extra = BODY_FIELDS.get((method, path), {})
            values = {**ids, **FIELD_VALUES, **(extra if isinstance(extra, dict) else {})}
            required = {name: _example(p.get("schema", {}), schemas, values, name)
                        for name, p in queries.items() if p.get("required")}
            required.update({name: ids[key] for name, key in READ_QUERY.items()
                             if name in queries})
            fields = _body_fields(operation, schemas)
            named = [("query", n) for n in queries if n in ACCOUNT_NAMES | OBJECT_QUERY.keys()]
            named += [("body", n) for n in fields if n in ACCOUNT_NAMES]
            for where, name in named:
                if (method, path, name) in PUBLIC_ACCOUNT_PARAMETERS:
                    continue
                named_ids = ([ids[OBJECT_QUERY[name]]] if name not in ACCOUNT_NAMES
                             else [ids["account_id"], ids["person_id"]])
                own = name in OBJECT_QUERY or (method, path, name) in ACTS_FOR_THE_CALLER
                swept.add((method, path, name))
                for value in named_ids:
                    query = {**required, name: value} if where == "query" else required
                    fill = {name: value} if where == "body" else {}
                    body = _body(operation, schemas, values, extra, fill)
                    url = f"{base_url}{path}?{urlencode(query)}" if query else base_url + path
                    for who, (headers, http) in as_b.items():
                        status, text = await call(http or bare, method, url, headers, body)
                        leaked = [s for s in (A_NAME, A_EMAIL, A_TITLE) if s in text]
                        if leaked or (status not in (403, 404) and not (own and status < 500)):
                            failures.append(f"{method} {path} {where} {name}={value} as B's "
                                            f"{who}: {status} {text[:160]} {leaked}")
    assert not failures, "\n".join(failures)
    return swept


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """Every operation of ``document``: its method, path and description."""
    return [(method.upper(), path, operation) for path, methods in document["paths"].items()
            for method, operation in methods.items()
            if method in ("get", "post", "put", "patch", "delete")]


def _body_fields(operation: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    """The top-level fields of an operation's JSON body, by name."""
    content = operation.get("requestBody", {}).get("content", {})
    schema = _resolve(content.get("application/json", {}).get("schema", {}), schemas)
    return schema.get("properties", {})


def _body(operation: dict[str, Any], schemas: dict[str, Any], values: dict[str, Any],
          extra: Any, fill: dict[str, str]) -> Body | None:
    """A small valid body of ``operation`` (None: it takes none): its required fields from
    ``values``, the top-level fields of ``extra`` (:data:`BODY_FIELDS`), ``fill`` set in it."""
    request = operation.get("requestBody")
    if request is None:
        return None
    content = request["content"]
    if "application/json" not in content:
        kind = next(iter(content))
        return kind, wav_bytes() if kind.startswith("audio/") else extra or b""
    body = _example(content["application/json"].get("schema", {}), schemas, values)
    if isinstance(body, dict):
        fields = _body_fields(operation, schemas)
        body.update({name: value for name, value in extra.items() if name in fields})
        body.update({name: [value] if _resolve(fields[name], schemas).get("type") == "array"
                     else value for name, value in fill.items()})
    return "application/json", body


def _example(schema: dict[str, Any], schemas: dict[str, Any], values: dict[str, Any],
             name: str = "") -> Any:
    """A small value that ``schema`` accepts: its required fields only (a field named
    in ``values`` gets its value there)."""
    schema = _resolve(schema, schemas)
    if name in values:
        return values[name]
    if "enum" in schema:
        return schema["enum"][0]
    if "examples" in schema:
        return schema["examples"][0]
    if "anyOf" in schema:
        return _example(next(s for s in schema["anyOf"] if s.get("type") != "null"),
                        schemas, values, name)
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        fields = schema.get("properties", {})
        return {field: _example(fields[field], schemas, values, field)
                for field in schema.get("required", [])}
    if kind == "array":
        return [_example(schema.get("items", {}), schemas, values)
                for _ in range(schema.get("minItems", 0))]
    if kind in ("integer", "number"):
        return schema.get("minimum", schema.get("exclusiveMinimum", 0) + 1)
    if kind == "boolean":
        return False
    if schema.get("format") == "date":
        return "2024-05-01"
    return "x" * max(1, schema.get("minLength", 1))


def _resolve(schema: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    """``schema``, its ``$ref`` followed."""
    while "$ref" in schema:
        schema = schemas[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


@pytest.mark.parametrize(("body", "content_type", "status", "words"), [
    (b"{not json", "application/json", 400, "JSON"),
    (json.dumps({"email": ["a"], "password": 5}).encode(), "application/json", 422, "email"),
    (b"x" * (17 * 1024 * 1024), "application/json", 413, "size limit"),
    (b" " * (100 * 1024), "application/json", 413, "64 KiB (65536 bytes)"),
], ids=["not-json", "wrong-types", "17-MiB", "100-KiB-of-spaces"])
async def test_bad_bodies_on_account_routes_get_a_clear_error(
        tmp_path: Path, smtp_server: SmtpServer, body: bytes, content_type: str, status: int,
        words: str) -> None:
    async with accounts_server(tmp_path, smtp_server) as (_, config):
        ada = Person(config.base_url, smtp_server, A_EMAIL)
        try:
            await ada.sign_up_and_in("Ada")
            for path in ("/auth/sign-in", "/auth/sign-up", "/accounts",
                         f"/accounts/{ada.id}/keys", "/me/password"):
                async with ada.http.request(
                        "PUT" if path == "/me/password" else "POST", config.base_url + path,
                        data=body, headers={"Content-Type": content_type,
                                            "X-CSRF-Token": ada.csrf}) as response:
                    text = await response.text()
                    assert response.status == status, (path, text[:300])
                    assert words.lower() in text.lower(), (path, text[:300])
            assert (await ada.call("GET", "/me"))[0] == 200  # the session is unharmed
            await ada.sign_in(PASSWORD)
        finally:
            await ada.close()
