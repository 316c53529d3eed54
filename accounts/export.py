"""What the core's tables hold about one person, as JSON-able parts (GDPR article 15/20).

:func:`account_parts` gathers the person's profile, addresses, sign-in
providers, memberships, sessions, keys, security events, invitations and
project roles. Secrets never leave: no password hash, TOTP secret, recovery
code, session id or CSRF token, key hash, or link token; a key is described by
its display prefix. :mod:`dawserver.privacy_export` adds the documents, the
developer webhooks and API usage, the sample library, the content of the projects the
person owns and the plug-ins' parts, and writes the archive.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from .models import ApiKeyRecord, AuditEvent
from .service import AccountService


def _key(key: ApiKeyRecord) -> dict[str, Any]:
    return {"id": key.key_id, "account": key.owner_id, "created_by": key.created_by,
            "name": key.name, "prefix": key.prefix, "scopes": list(key.scopes),
            "test": key.test, "created_at": key.created_at, "expires_at": key.expires_at,
            "last_used_at": key.last_used_at, "revoked_at": key.revoked_at}


def _event(event: AuditEvent) -> dict[str, Any]:
    return asdict(event)


async def account_parts(service: AccountService, person_id: str) -> dict[str, Any]:
    """The core's parts of a person's export: ``{part name: JSON-able value}``."""
    store = service.store
    person = await store.account(person_id)
    if person is None:
        return {}
    profile = {"id": person.account_id, "kind": person.kind.value, "name": person.name,
               "email": person.email, "email_verified_at": person.email_verified_at,
               "status": person.status.value, "plan": person.plan, "region": person.region,
               "two_factor_enabled_at": person.totp_enabled_at,
               "has_password": person.password_hash is not None,
               "recovery_codes_left": await store.recovery_codes_left(person_id),
               "created_at": person.created_at, "updated_at": person.updated_at}
    memberships = []
    for membership in await store.memberships_of(person_id):
        org = await store.account(membership.account_id)
        memberships.append({"organisation": membership.account_id,
                            "name": org.name if org else "", "role": membership.role,
                            "since": membership.created_at})
    sessions = [{"id": r.session_id, "created_at": r.created_at,
                 "last_seen_at": r.last_seen_at, "expires_at": r.expires_at,
                 "user_agent": r.user_agent, "address": r.address}
                for r in await service.sessions.list(person_id)]
    keys = {k.key_id: _key(k) for k in [*await store.keys_of(person_id),
                                        *await store.keys_made_by(person_id)]}
    own_events = await store.audit_events(person_id, limit=10_000)
    elsewhere = [e for e in await store.audit_events_by(person_id, limit=10_000)
                 if e.account_id != person_id]
    emails = await store.emails_of(person_id)
    invitations = [{"organisation": i.account_id, "id": i.invitation_id, "email": i.email,
                    "role": i.role, "invited_by": i.invited_by, "created_at": i.created_at,
                    "accepted_at": i.accepted_at, "revoked_at": i.revoked_at}
                   for i in await store.invitations_to(emails)]
    owned = await store.projects_of([person_id])
    projects = [{"id": project_id, "role": role, "owned": project_id in owned}
                for project_id, role in sorted((await service.projects(person_id)).items())]
    return {
        "profile": profile,
        "emails": emails,
        "identities": await store.identities_of(person_id),
        "memberships": memberships,
        "sessions": sessions,
        "keys": sorted(keys.values(), key=lambda k: k["created_at"]),
        "audit": {"own": [_event(e) for e in own_events],
                  "elsewhere": [_event(e) for e in elsewhere]},
        "invitations": invitations,
        "projects": projects,
    }
