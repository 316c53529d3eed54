"""Who a request is: a signed-in person (cookie), an API key, or a signed project token.

:func:`identify` is the server's ``identify`` (see :mod:`dawserver.authorization`):

- ``Authorization: Bearer mbk_...``: an API key. Its checksum is checked before
  any lookup, it is read from the database on every request (a revoked key
  stops at once on every process), its rate limit is counted
  (:mod:`accounts.ratelimit`, answers carry ``RateLimit`` headers, 429 past it),
  every answer is metered (:data:`KEY_USE`, :mod:`dawserver.public_api.usage`),
  it holds only its scopes, and a test-mode key reaches only sandbox projects
  (a live key none of them: :mod:`dawserver.public_api.sandbox`).
- any other bearer or ``?token=``: a signed project token, as before accounts. It
  acts for its project only: naming another account (``{account_id}`` in the path
  or ``?account=``) answers 404, as for a person outside that account.
- the ``mbs_session`` cookie: a signed-in person. Writes (POST, PUT, PATCH,
  DELETE) must carry the session's CSRF token in ``X-CSRF-Token``. A session
  marked for rotation (the person's roles changed) is served once more under a
  new id: the answer sets the new cookie and carries the new CSRF token in the
  ``X-CSRF-Token`` response header; the old id and token stop working.

A person or key acts on a project (``{project_id}`` in the path) with the
strongest role they hold on it; elsewhere for their own account, or for the
organisation named by ``?account=`` that they belong to. A project or
organisation they hold nothing on answers 404, as if it did not exist.
"""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any

from aiohttp import web

from accounts.errors import AccountError
from accounts.models import SessionRecord
from accounts.service import ORG_TO_PROJECT_ROLE, AccountService

from .access import request_token
from .authorization import ACCOUNT_PARAMETER, PROJECT_PARAMETER, identify_by_token
from .declarations import Principal
from .errors import Forbidden, NotFound, TooManyRequests, Unauthorized
from .keys import ACCOUNTS, CONFIG, PLUGIN_CONTEXT_KEY, RATE_LIMITER
from .public_api.state import api_state

SESSION_COOKIE = "mbs_session"
#: The path parameter that names the account (person or organisation) a route acts on.
ACCOUNT_PATH_PARAMETER = "account_id"
CSRF_HEADER = "X-CSRF-Token"
KEY_PREFIX = "mbk_"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Where a request's session (if any) and rate-limit headers are kept.
SESSION = web.RequestKey("session", SessionRecord)
RATE_HEADERS = web.RequestKey("rate_headers", dict)
#: The new secret id of a session rotated by this request (for its answer's cookie).
ROTATED = web.RequestKey("rotated_session", str)


@dataclass(frozen=True, slots=True)
class KeyUse:
    """The API key a request came with, for its usage meter (docs/public-api.md)."""

    account_id: str
    key_id: str
    started: float
    #: The plan of the key's owner, which sets its rate limit.
    plan: str


#: The key of a request made with an API key (refused by its rate limit or not).
KEY_USE = web.RequestKey("api_key_use", KeyUse)

NO_SESSION = "your session has ended or was signed out; sign in again"
BAD_CSRF = (f"this write needs the session's CSRF token in the {CSRF_HEADER} header (the "
            "sign-in answer and GET /me give it)")
OVER_LIMIT = "this API key is over its rate limit ({policy}); retry after {wait} s"


async def identify(request: web.Request) -> Principal | None:
    """The principal of ``request``: key, project token or session; None: anonymous."""
    token = request_token(request)
    if token is not None and token.startswith(KEY_PREFIX):
        return await _by_key(request, token)
    if token is not None:
        return _own_account_only(request, await identify_by_token(request))
    secret = request.cookies.get(SESSION_COOKIE)
    if secret and ACCOUNTS in request.app:
        return await _by_session(request, secret)
    return None


async def signed_in_session(request: web.Request) -> SessionRecord | None:
    """The live session of ``request``'s cookie (rotated if marked), or None: no cookie, or
    one whose session ended. Pages ask this without a 401 for visitors."""
    secret = request.cookies.get(SESSION_COOKIE)
    if not secret or ACCOUNTS not in request.app:
        return None
    try:
        _, session = await _live_session(request, secret)
    except Unauthorized:
        return None
    return session


def _own_account_only(request: web.Request, principal: Principal | None) -> Principal | None:
    """A project token's principal, refused (404) on another account than its project's."""
    if principal is None or principal.admin:
        return principal
    named = request.match_info.get(ACCOUNT_PATH_PARAMETER) or request.query.get(
        ACCOUNT_PARAMETER)
    if named and named != principal.account_id:
        raise NotFound(f"there is no account {named!r} (a project token acts for its own "
                       "project only)")
    return principal


async def _by_session(request: web.Request, secret: str) -> Principal:
    person_id, _ = await _live_session(request, secret)
    return await _acting_for(request, request.app[ACCOUNTS], person_id, person_id,
                             via="session")


async def _live_session(request: web.Request, secret: str) -> tuple[str, SessionRecord]:
    """The person and live session of the cookie ``secret`` (rotated if marked; kept in
    ``request[SESSION]``); 401 if it ended, 403 for a write without its CSRF token."""
    service = request.app[ACCOUNTS]
    session = await service.sessions.find(secret)
    if session is None:
        raise Unauthorized(NO_SESSION)
    if request.method not in SAFE_METHODS and not hmac.compare_digest(
            request.headers.get(CSRF_HEADER, "").encode(), session.csrf_token.encode()):
        raise Forbidden(BAD_CSRF)
    person = await service.store.account(session.person_id)
    if person is None or not person.active:
        await service.sessions.end(session.key_hash)
        raise Unauthorized(NO_SESSION)
    if session.rotate:
        rotated = await service.sessions.rotate(session)
        # None: a racing request with the same id rotated it; this one was let in already
        if rotated is not None:
            request[ROTATED], session = rotated
    request[SESSION] = session
    return person.account_id, session


async def _by_key(request: web.Request, secret: str) -> Principal:
    service = request.app[ACCOUNTS]
    started = time.perf_counter()
    try:
        key, owner = await service.authenticate_key(secret)
    except AccountError as exc:
        raise Unauthorized(str(exc)) from None
    request[KEY_USE] = use = KeyUse(owner.account_id, key.key_id, started, owner.plan)
    await charge_key(request, use)
    return await _acting_for(request, service, owner.account_id, key.created_by, via="key",
                             scopes=key.scopes, test=key.test)


async def charge_key(request: web.Request, use: KeyUse, cost: int = 1, *,
                     retry_cost: int | None = None) -> None:
    """Count ``cost`` requests of ``use``'s key on its rate limit, all or none;
    :class:`TooManyRequests` when they would go over it, with ``Retry-After`` when a
    retry costing ``retry_cost`` fits (``RateLimiter.hit``); the ``RateLimit`` headers
    are kept for the answer either way."""
    decision = await request.app[RATE_LIMITER].hit(use.key_id, use.plan, cost,
                                                   retry_cost=retry_cost)
    # add_rate_headers puts these on the answer, the 429 included
    request[RATE_HEADERS] = headers = decision.headers()
    if not decision.allowed:
        raise TooManyRequests(OVER_LIMIT.format(policy=decision.policy,
                                                wait=headers.get("Retry-After", "1")))


async def _acting_for(request: web.Request, service: AccountService, account_id: str,
                      user: str, *, via: str, scopes: tuple[str, ...] | None = None,
                      test: bool = False) -> Principal:
    """The principal of ``account_id`` (a person, or the organisation a key acts for)."""
    project_id = request.match_info.get(PROJECT_PARAMETER)
    if project_id is not None:
        role = await service.account_project_role(account_id, project_id)
        principal = Principal(project_id, role or "", user, via=via, scopes=scopes, test=test)
        if role is None or not await _in_mode(request, principal, project_id):
            raise NotFound(f"there is no project {project_id!r} (or it is not shared with "
                           "you)")
        return principal
    named = request.match_info.get(ACCOUNT_PATH_PARAMETER) or request.query.get(
        ACCOUNT_PARAMETER)
    if named and named != account_id:
        org_role = await service.role_in(named, account_id)
        if org_role is None:
            raise NotFound(f"there is no organisation {named!r} (or you are not in it)")
        return Principal(named, ORG_TO_PROJECT_ROLE.get(org_role, org_role), user, via=via,
                         scopes=scopes, test=test)
    return Principal(account_id, "owner", user, via=via, scopes=scopes, test=test)


async def _in_mode(request: web.Request, principal: Principal, project_id: str) -> bool:
    """Whether a key's mode reaches the project: test keys sandbox projects only, live
    keys never those (:mod:`dawserver.public_api.sandbox`)."""
    context = request.app.get(PLUGIN_CONTEXT_KEY)
    if principal.via != "key" or context is None:
        return True
    return await api_state(context).sandbox.visible(principal, project_id)


def session_cookie(request: Any, secret: str, max_age: int) -> str:
    """The ``Set-Cookie`` value that holds (or, with max_age 0, clears) a session."""
    cookie: SimpleCookie = SimpleCookie()
    cookie[SESSION_COOKIE] = secret
    morsel = cookie[SESSION_COOKIE]
    morsel["path"], morsel["httponly"], morsel["samesite"] = "/", True, "Lax"
    morsel["max-age"] = max_age
    if request.app[CONFIG].secure_cookies:
        morsel["secure"] = True
    return morsel.OutputString()


async def add_rate_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: every answer to an API key carries its rate-limit headers,
    and the answer that rotated a session its new cookie and CSRF token."""
    headers = request.get(RATE_HEADERS)
    if headers:
        for name, value in headers.items():
            response.headers.setdefault(name, value)
    secret = request.get(ROTATED)
    if secret is not None:
        ours = f"{SESSION_COOKIE}="
        if not any(v.startswith(ours) for v in response.headers.getall("Set-Cookie", [])):
            # (a sign-out's answer clears the cookie instead)
            max_age = int(request.app[ACCOUNTS].sessions.policy.absolute_s)
            response.headers.add("Set-Cookie", session_cookie(request, secret, max_age))
            response.headers[CSRF_HEADER] = request[SESSION].csrf_token
