"""Organisations, members, invitations, API keys, the security log and one's projects.

Routes under ``/accounts/{account_id}`` act on that account (a person's own,
or an organisation they are in): :mod:`dawserver.identity` refuses an account
the caller is not in with 404. The account service checks the finer rules
(admins invite, owners alone make owners, an organisation keeps an owner).
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import Field

from accounts.errors import AccountMoving
from accounts.models import AccountKind, ApiKeyRecord, AuditEvent, Invitation
from accounts.service import PROJECT_ROLE_GRANTED, PROJECT_ROLE_REVOKED
from dsp_core.session import Session

from .auth_routes import EmailModel, LinkToken, actor_of
from .errors import BadRequest, Conflict, Forbidden
from .identity import KEY_USE
from .keys import ACCOUNTS, CONFIG, PLUGIN_CONTEXT_KEY, STORE, TOKENS
from .live_roles import apply_current_roles, people_of, projects_reached_by
from .permissions import (
    ACCOUNT_ADMIN,
    ACCOUNT_READ,
    ACCOUNT_SELF,
    PROJECT_MANAGE,
    PROJECT_READ,
    PROJECTS_CREATE,
)
from .plugin_api import Empty, Model, Query, Request, Role, Route, allows
from .projects import import_session
from .public_api.state import api_state
from .regions import account_region

ACCOUNT = "/accounts/{account_id}"
#: A permission named ``role:NAME`` declares the organisation role NAME (a plug-in's).
ROLE_PREFIX = "role:"
TEST_KEYS_MAKE_TEST_KEYS = ("a test-mode key reaches sandbox data only, so the keys it "
                            "makes are test-mode keys: send \"test\": true, or make a live "
                            "key signed in or with a live key")


class NewOrganisation(Model):
    """An organisation (artist, label) or a team to create; you become its owner."""

    name: str = Field(min_length=1, max_length=200)
    kind: AccountKind = AccountKind.ORGANISATION


class AccountInfo(Model):
    """An account: a person or an organisation."""

    id: str
    name: str
    kind: str
    plan: str
    region: str


class Member(Model):
    """A person in an organisation."""

    id: str
    name: str
    email: str | None
    role: str


class MemberRole(Model):
    """A member's new role."""

    role: str = Field(min_length=1, max_length=40)


class NewInvitation(EmailModel):
    """Whom to invite, with which role."""

    role: str = Field("member", min_length=1, max_length=40)


class InvitationInfo(Model):
    """An invitation into an organisation."""

    id: str
    email: str
    role: str
    invited_by: str
    created_at: float
    expires_at: float
    accepted_at: float | None
    revoked_at: float | None


class Joined(Model):
    """The organisation joined and the role in it."""

    account_id: str
    role: str


class NewKey(Model):
    """An API key to make: a name, the permissions it holds, optionally test-only."""

    name: str = Field(min_length=1, max_length=100)
    scopes: list[str] = Field(min_length=1, max_length=50)
    test: bool = False
    expires_in_days: float | None = Field(None, gt=0, le=3650)


class KeyInfo(Model):
    """An API key (its secret is shown once, when made)."""

    id: str
    name: str
    prefix: str
    scopes: list[str]
    test: bool
    created_at: float
    created_by: str
    expires_at: float | None
    last_used_at: float | None
    revoked_at: float | None


class MadeKey(KeyInfo):
    """A new key with its secret: store it now, it is never shown again."""

    key: str


class ScopeInfo(Model):
    """A permission an API key may hold, and what it allows."""

    name: str
    description: str


class AuditEntry(Model):
    """One security event."""

    id: str
    at: float
    actor: str
    action: str
    target: str
    address: str
    detail: dict[str, Any]


class AuditPage(Query):
    """A page of the security log: events older than ``before`` (an event's ``at``)."""

    before: float | None = None
    limit: int = Field(200, ge=1, le=200)


class NewProject(Model):
    """A project to create in an account."""

    name: str = Field("Untitled", min_length=1, max_length=200)


class ProjectEntry(Model):
    """A project the person may open, and their role on it."""

    id: str
    name: str
    role: str
    owner: str | None = None


class Grant(Model):
    """A project role for a person or a team."""

    role: Role


class GrantInfo(Model):
    """Who holds which role on a project."""

    grantee: str
    role: str
    granted_by: str


class CollabToken(Model):
    """A collaboration token for this project, derived from the session or key."""

    token: str
    role: str
    websocket: str
    expires_at: float


def key_scope_names(context: Any) -> list[str]:
    """The scopes a key may hold: every permission of the server's core and plug-ins,
    except the organisation roles plug-ins declare (``role:NAME``), which are no scope."""
    return sorted(name for name in context.permissions if not name.startswith(ROLE_PREFIX))


def _declared_roles(request: Request) -> list[str]:
    """Organisation roles the plug-ins declare (permissions named ``role:NAME``)."""
    context = request.app[PLUGIN_CONTEXT_KEY]
    return [name.removeprefix(ROLE_PREFIX) for name in context.permissions
            if name.startswith(ROLE_PREFIX)]


def _account_info(account: Any) -> AccountInfo:
    return AccountInfo(id=account.account_id, name=account.name, kind=account.kind.value,
                       plan=account.plan, region=account.region)


def _invitation(invitation: Invitation) -> InvitationInfo:
    return InvitationInfo(id=invitation.invitation_id, email=invitation.email,
                          role=invitation.role, invited_by=invitation.invited_by,
                          created_at=invitation.created_at, expires_at=invitation.expires_at,
                          accepted_at=invitation.accepted_at, revoked_at=invitation.revoked_at)


def _key(key: ApiKeyRecord) -> dict[str, Any]:
    return {"id": key.key_id, "name": key.name, "prefix": key.prefix,
            "scopes": list(key.scopes), "test": key.test, "created_at": key.created_at,
            "created_by": key.created_by, "expires_at": key.expires_at,
            "last_used_at": key.last_used_at, "revoked_at": key.revoked_at}


def _audit(event: AuditEvent) -> AuditEntry:
    return AuditEntry(id=event.event_id, at=event.at, actor=event.actor_id,
                      action=event.action, target=event.target, address=event.address,
                      detail=event.detail)


async def create_organisation(request: Request) -> AccountInfo:
    """Create an organisation or team; the signed-in person becomes its owner."""
    body: NewOrganisation = request.body
    org = await request.app[ACCOUNTS].create_organisation(actor_of(request), body.name,
                                                          kind=body.kind)
    return _account_info(org)


async def get_account(request: Request) -> AccountInfo:
    """An account the caller is in."""
    account = await request.app[ACCOUNTS].store.require_account(request.params["account_id"])
    return _account_info(account)


async def members(request: Request) -> list[Member]:
    """The members of an organisation and their roles."""
    store = request.app[ACCOUNTS].store
    found = []
    for membership in await store.members(request.params["account_id"]):
        person = await store.account(membership.person_id)
        if person is not None:
            found.append(Member(id=person.account_id, name=person.name, email=person.email,
                                role=membership.role))
    return found


async def set_member_role(request: Request) -> Member:
    """Give a member another role (admins; owners alone make or unmake owners)."""
    service = request.app[ACCOUNTS]
    membership = await service.set_member_role(
        actor_of(request), request.params["account_id"], request.params["person_id"],
        request.body.role, declared_roles=_declared_roles(request))
    await apply_current_roles(request.app, [membership.person_id],
                              await projects_reached_by(request.app, membership.account_id))
    person = await service.store.require_account(membership.person_id)
    return Member(id=person.account_id, name=person.name, email=person.email,
                  role=membership.role)


async def remove_member(request: Request) -> Joined:
    """Take a member out of the organisation (``account.admin``), or leave it yourself
    (``account.read``); the organisation's keys the member made are revoked."""
    account_id, person_id = request.params["account_id"], request.params["person_id"]
    actor = actor_of(request)
    admin = allows(request.context, request.principal, ACCOUNT_ADMIN)
    if person_id != actor.person_id and not admin:
        raise Forbidden(f"removing someone else needs {ACCOUNT_ADMIN.name} (a key must hold "
                        "that scope); anyone may remove themselves to leave")
    key = request.native.get(KEY_USE) if request.native is not None else None
    if not admin and key is not None and key.account_id != person_id:  # not their own key
        raise Forbidden(f"an organisation's API key cannot make its maker leave without "
                        f"{ACCOUNT_ADMIN.name}: leave with your own key or a signed-in session")
    await request.app[ACCOUNTS].remove_member(actor, account_id, person_id)
    await apply_current_roles(request.app, [person_id],
                              await projects_reached_by(request.app, account_id))
    return Joined(account_id=account_id, role="")


async def invite(request: Request) -> InvitationInfo:
    """Invite someone by email (admins); they accept through the mailed link."""
    body: NewInvitation = request.body
    invitation = await request.app[ACCOUNTS].invite(
        actor_of(request), request.params["account_id"], body.email, body.role,
        declared_roles=_declared_roles(request))
    return _invitation(invitation)


async def invitations(request: Request) -> list[InvitationInfo]:
    """The organisation's invitations, newest first."""
    found = await request.app[ACCOUNTS].store.invitations(request.params["account_id"])
    return [_invitation(i) for i in found]


async def withdraw_invitation(request: Request) -> InvitationInfo:
    """Withdraw an open invitation (admins): its link no longer joins anyone."""
    invitation = await request.app[ACCOUNTS].withdraw_invitation(
        actor_of(request), request.params["account_id"], request.params["invitation_id"])
    return _invitation(invitation)


async def accept(request: Request) -> Joined:
    """Accept an invitation with the mailed link's token (signed in as the invited address)."""
    membership = await request.app[ACCOUNTS].accept_invitation(actor_of(request),
                                                               request.body.token)
    return Joined(account_id=membership.account_id, role=membership.role)


async def create_key(request: Request) -> MadeKey:
    """Make an API key for the account; its secret is in this answer only (a test-mode key
    makes test-mode keys only)."""
    body: NewKey = request.body
    if request.test_mode and not body.test:
        raise Forbidden(TEST_KEYS_MAKE_TEST_KEYS)
    context = request.app[PLUGIN_CONTEXT_KEY]
    scopes = key_scope_names(context)
    unknown = sorted(set(body.scopes) - set(scopes))
    if unknown:
        raise BadRequest(f"unknown scopes {unknown}; scopes are permission names: {scopes}")
    expires = None if body.expires_in_days is None else time.time() + body.expires_in_days * 86400
    secret, key = await request.app[ACCOUNTS].create_key(
        actor_of(request), request.params["account_id"], body.name, body.scopes, test=body.test,
        expires_at=expires, made_with=await _calling_key(request))
    return MadeKey(key=secret, **_key(key))


async def _calling_key(request: Request) -> ApiKeyRecord | None:
    """The API key ``request`` came with (None: a session); 403 if it cannot be found."""
    if request.principal.via != "key":
        return None
    use = request.native.get(KEY_USE) if request.native is not None else None
    found = None if use is None else next(
        (k for k in await request.app[ACCOUNTS].store.keys_of(use.account_id)
         if k.key_id == use.key_id), None)
    if found is None:
        raise Forbidden("this request's API key could not be found; make keys signed in")
    return found


async def list_keys(request: Request) -> list[KeyInfo]:
    """The account's API keys (never their secrets)."""
    keys = await request.app[ACCOUNTS].store.keys_of(request.params["account_id"])
    return [KeyInfo(**_key(key)) for key in keys]


async def key_scopes(request: Request) -> list[ScopeInfo]:
    """The scopes a key may hold: this server's permission names (the core's and the
    plug-ins'), with what each allows."""
    context = request.app[PLUGIN_CONTEXT_KEY]
    return [ScopeInfo(name=name, description=context.permissions[name].item.description)
            for name in key_scope_names(context)]


async def revoke_key(request: Request) -> KeyInfo:
    """Revoke a key: it stops working at once, on every server process."""
    key = await request.app[ACCOUNTS].revoke_key(actor_of(request), request.params["account_id"],
                                                 request.params["key_id"])
    return KeyInfo(**_key(key))


async def audit_log(request: Request) -> list[AuditEntry]:
    """The account's security log, newest first (admins); ``?before=AT`` pages back."""
    query: AuditPage = request.query
    events = await request.app[ACCOUNTS].store.audit_events(
        request.params["account_id"], limit=query.limit, before=query.before)
    return [_audit(event) for event in events]


async def create_project(request: Request) -> ProjectEntry:
    """Create an empty project owned by the account, in the account's data region (a
    sandbox project when a test-mode key makes it)."""
    account_id, name = request.params["account_id"], request.body.name
    # refused (409) while the account moves: before the document exists, so none is
    # left without an owner
    await request.app[ACCOUNTS].store.writable(account_id)
    info = await import_session(request.app[STORE], Session(name=name), name=name,
                                region=account_region(request.app, account_id))
    # before anyone holds a role on it, as POST /api/v1/projects marks it
    await api_state(request.context).sandbox.made(request.principal, account_id,
                                                  info.project_id)
    try:
        await request.app[ACCOUNTS].store.own_project(account_id, info.project_id)
    except AccountMoving:  # a move began meanwhile: leave no project without owner
        await request.app[STORE].delete_project(info.project_id)
        raise
    return ProjectEntry(id=info.project_id, name=info.name, role="owner", owner=account_id)


async def my_projects(request: Request) -> list[ProjectEntry]:
    """Every project the signed-in person (or the key's maker) may open, with the role; a
    key lists only those of its mode (test: sandbox projects, live: the others)."""
    service = request.app[ACCOUNTS]
    store, entries = request.app[STORE], []
    roles = await service.projects(request.principal.user)
    reached = await api_state(request.context).sandbox.filter(request.principal, roles)
    for project_id in reached:
        role = roles[project_id]
        info = await store.get_project(project_id)
        if info is not None:
            entries.append(ProjectEntry(id=project_id, name=info.name, role=role))
    return entries


async def grants(request: Request) -> list[GrantInfo]:
    """Who holds which role on the project (besides its owning account)."""
    found = await request.app[ACCOUNTS].store.grants_on(request.params["project_id"])
    return [GrantInfo(grantee=g.grantee_id, role=g.role, granted_by=g.granted_by)
            for g in found]


async def grant(request: Request) -> GrantInfo:
    """Give a person or team a role on the project (owners)."""
    service = request.app[ACCOUNTS]
    grantee = await service.store.account(request.params["grantee_id"])
    if grantee is None or not grantee.active:
        raise Conflict(f"there is no account {request.params['grantee_id']!r} to grant to")
    role = request.body.role.value
    made = await service.store.grant(request.params["project_id"], grantee.account_id, role,
                                     request.principal.user)
    await _audit_grant(request, PROJECT_ROLE_GRANTED, grantee.account_id, role)
    await service.roles_changed(grantee.account_id)
    await apply_current_roles(request.app, await people_of(request.app, grantee.account_id),
                              [made.project_id])
    return GrantInfo(grantee=made.grantee_id, role=made.role, granted_by=made.granted_by)


async def ungrant(request: Request) -> GrantInfo:
    """Take a person's or team's role on the project away (owners)."""
    project_id, grantee = request.params["project_id"], request.params["grantee_id"]
    held = {g.grantee_id: g.role for g in await request.app[ACCOUNTS].store.grants_on(
        project_id)}.get(grantee, "")
    if not await request.app[ACCOUNTS].store.ungrant(project_id, grantee):
        raise Conflict(f"{grantee!r} holds no role on this project")
    await _audit_grant(request, PROJECT_ROLE_REVOKED, grantee, held)
    await request.app[ACCOUNTS].roles_changed(grantee)
    await apply_current_roles(request.app, await people_of(request.app, grantee), [project_id])
    return GrantInfo(grantee=grantee, role="", granted_by=request.principal.user)


async def _audit_grant(request: Request, action: str, grantee: str, role: str) -> None:
    """Log a project role given or taken in the security log of the project's owner."""
    project_id = request.params["project_id"]
    store = request.app[ACCOUNTS].store
    owner = await store.project_owner(project_id)
    if owner is not None:
        actor = actor_of(request)
        await store.audit(owner, actor.person_id, action, target=grantee,
                          address=actor.address, detail={"project": project_id, "role": role})


async def collab_token(request: Request) -> CollabToken:
    """A short-lived collaboration token (``config.collab_token_seconds``, an hour by
    default) for the project's WebSocket, with the role the session or key holds on it."""
    project_id, principal = request.params["project_id"], request.principal
    if principal.via == "token":
        raise BadRequest("a project token opens the WebSocket itself; this route derives one "
                         "from a session or an API key")
    config, now = request.app[CONFIG], time.time()
    lifetime = config.collab_token_seconds
    token = request.app[TOKENS].issue(project_id, principal.role, principal.user,
                                      ttl_seconds=lifetime, now=now)
    return CollabToken(token=token, role=principal.role,
                       websocket=f"{config.collab_url}/{project_id}",
                       expires_at=now + lifetime)


PROJECT = "/projects/{project_id}"

ROUTES = [
    Route(method="POST", path="/accounts", handler=create_organisation,
          permission=ACCOUNT_SELF, body=NewOrganisation, response=AccountInfo, status=201),
    Route(method="GET", path=ACCOUNT, handler=get_account, permission=ACCOUNT_READ,
          response=AccountInfo),
    Route(method="GET", path=f"{ACCOUNT}/members", handler=members, permission=ACCOUNT_READ,
          response=list[Member]),
    Route(method="PUT", path=f"{ACCOUNT}/members/{{person_id}}", handler=set_member_role,
          permission=ACCOUNT_ADMIN, body=MemberRole, response=Member),
    Route(method="DELETE", path=f"{ACCOUNT}/members/{{person_id}}", handler=remove_member,
          permission=ACCOUNT_READ, response=Joined),
    Route(method="POST", path=f"{ACCOUNT}/invitations", handler=invite,
          permission=ACCOUNT_ADMIN, body=NewInvitation, response=InvitationInfo, status=201),
    Route(method="GET", path=f"{ACCOUNT}/invitations", handler=invitations,
          permission=ACCOUNT_ADMIN, response=list[InvitationInfo]),
    Route(method="DELETE", path=f"{ACCOUNT}/invitations/{{invitation_id}}",
          handler=withdraw_invitation, permission=ACCOUNT_ADMIN, response=InvitationInfo),
    Route(method="POST", path="/invitations/accept", handler=accept, permission=ACCOUNT_SELF,
          body=LinkToken, response=Joined),
    Route(method="POST", path=f"{ACCOUNT}/keys", handler=create_key, permission=ACCOUNT_ADMIN,
          body=NewKey, response=MadeKey, status=201),
    Route(method="GET", path=f"{ACCOUNT}/keys", handler=list_keys, permission=ACCOUNT_ADMIN,
          response=list[KeyInfo]),
    Route(method="GET", path=f"{ACCOUNT}/keys/scopes", handler=key_scopes,
          permission=ACCOUNT_ADMIN, response=list[ScopeInfo]),
    Route(method="DELETE", path=f"{ACCOUNT}/keys/{{key_id}}", handler=revoke_key,
          permission=ACCOUNT_ADMIN, response=KeyInfo),
    Route(method="GET", path=f"{ACCOUNT}/audit", handler=audit_log, permission=ACCOUNT_ADMIN,
          query=AuditPage, response=list[AuditEntry]),
    Route(method="POST", path=f"{ACCOUNT}/projects", handler=create_project,
          permission=PROJECTS_CREATE, body=NewProject, response=ProjectEntry, status=201),
    Route(method="GET", path="/me/projects", handler=my_projects, permission=ACCOUNT_SELF,
          response=list[ProjectEntry]),
    Route(method="GET", path=f"{PROJECT}/grants", handler=grants, permission=PROJECT_READ,
          response=list[GrantInfo]),
    Route(method="PUT", path=f"{PROJECT}/grants/{{grantee_id}}", handler=grant,
          permission=PROJECT_MANAGE, body=Grant, response=GrantInfo),
    Route(method="DELETE", path=f"{PROJECT}/grants/{{grantee_id}}", handler=ungrant,
          permission=PROJECT_MANAGE, response=GrantInfo),
    Route(method="POST", path=f"{PROJECT}/collab-token", handler=collab_token,
          permission=PROJECT_READ, body=Empty, response=CollabToken, status=201),
]
