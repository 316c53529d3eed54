"""Who may do what: reading a request's token and checking it against a project.

A member's role change or revocation reaches their live connections at once
through :func:`apply_member_change`: the rooms (WebSockets) directly, anything
else that holds live sessions (WebRTC) through a hook it registered with
:func:`on_member_change`, and the other server processes of a deployment
through the Redis link.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Awaitable, Callable

from aiohttp import web

from collab.errors import AuthError
from collab.protocol import CloseCode
from collab.tokens import Grant, Role

from .errors import NotFound
from .keys import ACCOUNTS, RELAY, ROOMS, STORE, TOKENS

#: An account's id (``p_…`` a person, ``o_…`` an organisation; a data region's name may
#: follow the prefix): a token naming one that no longer exists was its, not a guest's.
ACCOUNT_ID = re.compile(r"^[po]_(?:[a-z0-9-]{1,32}_)?[0-9a-f]{20}$")
#: ``await hook(project_id, user, role)``: ``role`` is None when the user was revoked;
#: returns how many of the user's live connections it closed or changed.
MemberHook = Callable[[str, str, Role | None], Awaitable[int]]
MEMBER_HOOKS = web.AppKey("member_hooks", list)


class AccessDenied(AuthError):
    """A valid token that does not open this project (wrong project, revoked, low role)."""

    def __init__(self, message: str, close_code: int, http_status: int = 403) -> None:
        super().__init__(message)
        self.close_code = close_code
        self.http_status = http_status


def request_token(request: web.Request) -> str | None:
    """The token from ``?token=`` or an ``Authorization: Bearer`` header."""
    token = request.query.get("token")
    if token:
        return token
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


async def authenticate(app: web.Application, token: str | None) -> Grant:
    """The grant of ``token``, checked against revocations on its own project.

    Raises :class:`AuthError` (bad token) or :class:`AccessDenied` (4410 revoked).
    """
    grant = app[TOKENS].verify(token)
    await _check_not_revoked(app, grant, grant.project_id)
    return grant


async def authorize(app: web.Application, project_id: str, token: str | None,
                    minimum: Role = Role.VIEWER) -> Grant:
    """The grant of ``token`` on ``project_id`` with at least role ``minimum``.

    Raises :class:`AuthError` (bad token: close 4401, HTTP 401) or
    :class:`AccessDenied` (4403 wrong project or role, 4410 revoked).
    """
    grant = app[TOKENS].verify(token)
    if not grant.allows(project_id):
        raise AccessDenied(f"token is for project {grant.project_id!r}, not {project_id!r}",
                           CloseCode.FORBIDDEN)
    await _check_not_revoked(app, grant, project_id)
    grant = await held_now(app, grant, project_id)
    if not grant.role.at_least(minimum):
        raise AccessDenied(f"role {grant.role.value} may not do this; it needs "
                           f"{minimum.value}", CloseCode.FORBIDDEN)
    return grant


async def held_now(app: web.Application, grant: Grant, project_id: str) -> Grant:
    """``grant`` on ``project_id``, its role capped at what its account holds now.

    Raises :class:`AccessDenied` (4410) when the token's account holds nothing on the
    project any more (or is disabled). Unchanged for admin tokens, servers without
    accounts and users that are not accounts.
    """
    if grant.is_admin or ACCOUNTS not in app:
        return grant
    service = app[ACCOUNTS]
    account = await service.store.account(grant.user)
    if account is None and ACCOUNT_ID.match(grant.user):
        raise AccessDenied(f"account {grant.user!r} no longer exists (it was erased)",
                           CloseCode.ROLE_REVOKED)
    if account is None:
        return grant  # a name an owner gave a guest's token, not an account
    held = await service.account_project_role(grant.user, project_id) if account.active \
        else None
    if held is None and STORE in app and await app[STORE].get_project(project_id) is None:
        return grant  # a deleted project: what comes next answers "not found"
    if held is None:
        raise AccessDenied(f"account {grant.user!r} holds no role on {project_id!r} any more",
                           CloseCode.ROLE_REVOKED)
    role = Role.parse(held)
    return grant if role.at_least(grant.role) else dataclasses.replace(grant, role=role)


async def require_project(app: web.Application, project_id: str) -> None:
    """404 (:class:`~dawserver.errors.NotFound`) unless the store holds ``project_id``: for
    a route that would answer a deleted project (whose tokens still verify, see
    :func:`held_now`) with nothing, or with the job records that outlive it."""
    if await app[STORE].get_project(project_id) is None:
        raise NotFound(f"there is no project {project_id!r}")


async def _check_not_revoked(app: web.Application, grant: Grant, project_id: str) -> None:
    if grant.is_admin or STORE not in app:
        return
    revoked = await app[STORE].revoked_at(project_id, grant.user)
    if revoked is not None and grant.issued_at <= revoked:
        raise AccessDenied(f"the role of user {grant.user!r} on {project_id!r} was revoked",
                           CloseCode.ROLE_REVOKED)


def on_member_change(app: web.Application, hook: MemberHook) -> None:
    """Call ``hook`` whenever a member is revoked or given another role."""
    app.setdefault(MEMBER_HOOKS, []).append(hook)


async def apply_member_change(app: web.Application, project_id: str, user: str,
                              role: Role | None) -> int:
    """Apply a revocation (``role`` None) or a new role to ``user``'s live connections now.

    The change is made here (:func:`apply_member_change_here`) and, when this
    server runs with other processes (``--redis``), announced to them.  Returns
    how many connections of this process were closed or changed.
    """
    count = await apply_member_change_here(app, project_id, user, role)
    cluster = app.get(RELAY)
    if cluster is not None:
        cluster.publish_member_change(project_id, user, role)
    return count


async def apply_member_change_here(app: web.Application, project_id: str, user: str,
                                   role: Role | None) -> int:
    """Apply a member change to this process's connections only.

    A revoked user's WebSockets close with 4410; with a new role they stay open
    and their edits are judged by it.  Returns how many connections were
    closed or changed, hooks' included.
    """
    if role is None:
        count = app[ROOMS].disconnect_user(project_id, user, CloseCode.ROLE_REVOKED,
                                           CloseCode.ROLE_REVOKED.reason)
    else:
        count = app[ROOMS].set_role(project_id, user, role)
    for hook in app.get(MEMBER_HOOKS, []):
        count += await hook(project_id, user, role)
    return count
