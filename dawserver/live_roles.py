"""Tokens and live connections follow the accounts' current roles.

A project token made for an account (``POST /projects/{id}/collab-token`` derives one
from a session or an API key, valid an hour) names that account as its user. Its role
is what the account held when it was made; the account may be demoted or removed
since. So:

- :func:`held_now` (in :mod:`dawserver.access`) caps a token's grant at the account's
  current role on the project (HTTP routes and the WebSocket ask it): a demoted owner's
  token acts as an editor at once, and a token of someone who holds nothing on the
  project any more is refused (4410 / 403). Tokens an owner issued by name to someone
  without an account (guests) keep their role.
- :func:`apply_current_roles` pushes a change of roles to the live connections (the
  WebSockets take the new role or close with 4410) right after the accounts routes
  change grants or memberships.
"""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp import web

from collab.tokens import Role

from .access import apply_member_change, held_now
from .keys import ACCOUNTS

__all__ = ["apply_current_roles", "held_now", "people_of", "projects_reached_by"]


async def apply_current_roles(app: web.Application, people: Iterable[str],
                              project_ids: Iterable[str]) -> int:
    """Give the live connections of ``people`` on ``project_ids`` the role each holds now
    (closing those that hold none); how many connections were closed or changed."""
    service, count = app[ACCOUNTS], 0
    project_ids = list(project_ids)
    for person_id in set(people):
        for project_id in project_ids:
            held = await service.account_project_role(person_id, project_id)
            count += await apply_member_change(app, project_id, person_id,
                                               Role.parse(held) if held else None)
    return count


async def people_of(app: web.Application, account_id: str) -> list[str]:
    """The people an account stands for: itself (a person) or its members."""
    store = app[ACCOUNTS].store
    account = await store.account(account_id)
    if account is None:
        return []
    if account.is_person:
        return [account_id]
    return [m.person_id for m in await store.members(account_id)]


async def projects_reached_by(app: web.Application, account_id: str) -> list[str]:
    """Every project an organisation's (or team's) members reach through it: those it
    owns and those granted to it."""
    store = app[ACCOUNTS].store
    owned = await store.projects_of([account_id])
    granted = await store.grants_to([account_id])
    return sorted(set(owned) | {g.project_id for g in granted})
