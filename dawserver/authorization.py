"""Who a request acts for, and the one check every route passes: :func:`require`.

A request's :class:`~dawserver.declarations.Principal` comes from its token
(:func:`identify_by_token`, or the ``identify`` given to
:func:`dawserver.plugins.install`). The account of a request is the project in
its path (``{project_id}``), else the token's project; a server administrator
(project ``*``) acts as owner of any project, and names the account with
``?account=`` on routes without a project in the path.
"""

from __future__ import annotations

import inspect
from typing import Any

from aiohttp import web

from collab.errors import AuthError
from collab.tokens import Role

from .access import AccessDenied, authenticate, held_now, request_token
from .context import PluginContext
from .declarations import ANONYMOUS, Permission, Principal, Scope, role_of
from .errors import (
    BAD_TOKEN,
    KEY_SCOPE,
    NO_ACCOUNT,
    NO_TOKEN,
    PERMISSION_REFUSED,
    ROLE_TOO_LOW,
    SERVER_ONLY,
    BadRequest,
    Forbidden,
    Unauthorized,
)
from .keys import PLUGIN_CONTEXT_KEY, TOKENS

#: The path parameter that names the project (and so the account) a route acts on.
PROJECT_PARAMETER = "project_id"
#: The query parameter with which an administrator names the account.
ACCOUNT_PARAMETER = "account"
ADMIN_PROJECT = "*"
#: The permission of routes acting on the signed-in person's own account
#: (:data:`dawserver.permissions.ACCOUNT_SELF`; named here, as that module imports this one).
OWN_ACCOUNT = "account.self"
ORG_KEY_OWN_ACCOUNT = (
    "an organisation's API key acts for the organisation, not for the person who made it: "
    "{permission} routes (one's own password, sessions, two-step sign-in, projects, data "
    "export, erasure) take that person's own key or a signed-in session")


def project_account(project_id: str) -> str:
    """The business account of a project: plug-in data is kept per project."""
    return project_id


async def identify_by_token(request: web.Request) -> Principal | None:
    """The principal of a request's token; None when it carries no token.

    A bad, expired or revoked token, or one for another project than the one in
    the path, is refused (401/403), never treated as anonymous.
    """
    token = request_token(request)
    if token is None or TOKENS not in request.app:
        return None
    try:
        grant = await authenticate(request.app, token)
    except AccessDenied as exc:
        raise Forbidden(str(exc)) from None
    except AuthError as exc:
        raise Unauthorized(BAD_TOKEN.format(reason=exc)) from None
    project_id = request.match_info.get(PROJECT_PARAMETER)
    if project_id is not None:
        if not grant.allows(project_id):
            raise Forbidden(f"token is for project {grant.project_id!r}, not {project_id!r}")
        try:
            grant = await held_now(request.app, grant, project_id)
        except AccessDenied as exc:
            raise Forbidden(str(exc)) from None
        role = Role.OWNER if grant.is_admin else grant.role
        return Principal(project_account(project_id), role.value, grant.user, grant.is_admin,
                         via="token")
    if grant.is_admin:
        account = request.query.get(ACCOUNT_PARAMETER, "")
        return Principal(project_account(account) if account else "", Role.OWNER.value,
                         grant.user, admin=True, via="token")
    try:  # a route of the token's own project's account: held to the current role too
        grant = await held_now(request.app, grant, grant.project_id)
    except AccessDenied as exc:
        raise Forbidden(str(exc)) from None
    return Principal(project_account(grant.project_id), grant.role.value, grant.user,
                     via="token")


async def require(request: web.Request, permission: Permission) -> Principal:
    """The principal of ``request`` when it holds ``permission``; else an ApiError.

    401 without a token, 403 when the token does not hold the permission, 400 for
    an administrator who names no account on an account route.
    """
    if permission.scope is Scope.ANYONE:
        return ANONYMOUS
    context: PluginContext = request.app[PLUGIN_CONTEXT_KEY]
    found = (context.identify or identify_by_token)(request)
    principal = await found if inspect.isawaitable(found) else found
    if principal is None:
        raise Unauthorized(NO_TOKEN)
    if permission.scope is Scope.SERVER:
        if not principal.admin:
            why = f"a token for account {principal.account_id!r}, not {ADMIN_PROJECT!r}"
            raise Forbidden(SERVER_ONLY.format(why=why, permission=permission.name))
        return principal
    if not principal.account_id:
        raise BadRequest(NO_ACCOUNT)
    check_permission(context, principal, permission)
    return principal


def check_permission(context: PluginContext, principal: Principal, permission: Permission
                     ) -> None:
    """Forbidden unless ``principal`` (of an account) holds ``permission``: its key's
    scopes name it, and its role (or the declaring plug-in) allows it."""
    if principal.scopes is not None and permission.name not in principal.scopes:
        raise Forbidden(KEY_SCOPE.format(permission=permission.name,
                                         scopes=", ".join(principal.scopes) or "none"))
    if permission.name == OWN_ACCOUNT and principal.via == "key" and \
            principal.account_id != principal.user:  # an organisation's key, not its maker's
        raise Forbidden(ORG_KEY_OWN_ACCOUNT.format(permission=permission.name))
    refusal = _refusal(context, principal, permission)
    if refusal:
        raise Forbidden(refusal)


def allows(context: PluginContext, principal: Principal, permission: Permission) -> bool:
    """Whether ``principal`` holds ``permission`` as :func:`require` checks it for a
    route declaring it (its scope: anyone, the server's administrators, or an account's
    principal by its key's scopes, its role and the declaring plug-in's word): for
    answers that tell the caller what they may do."""
    if permission.scope is Scope.ANYONE:
        return True
    if permission.scope is Scope.SERVER:
        return principal.admin
    if not principal.account_id:
        return False
    try:
        check_permission(context, principal, permission)
    except Forbidden:
        return False
    return True


def _refusal(context: PluginContext, principal: Principal, permission: Permission
             ) -> str | None:
    """Why ``principal`` may not use ``permission`` (None when it may).

    Only the plug-in that declared ``permission`` may overrule the roles for it.
    """
    declared = context.permissions.get(permission.name)
    if declared is not None:
        answer = call_one(context.manager, "permission_allowed", declared.plugin,
                          principal=principal, permission=permission)
        if answer is not None:
            return None if answer else PERMISSION_REFUSED.format(permission=permission.name)
    minimum = role_of(permission.minimum)
    try:
        held = Role.parse(principal.role).at_least(minimum)
    except AuthError:  # an unknown role holds nothing
        held = False
    if held:
        return None
    return ROLE_TOO_LOW.format(role=principal.role, permission=permission.name,
                               minimum=minimum.value)


def call_one(manager: Any, hook: str, plugin_name: str, **kwargs: Any) -> Any:
    """Call ``hook`` of one plug-in only (None if it does not implement it)."""
    plugin = manager.get_plugin(plugin_name)
    for impl in getattr(manager.hook, hook).get_hookimpls():
        if impl.plugin is plugin:
            return impl.function(**{k: kwargs[k] for k in impl.argnames if k in kwargs})
    return None

