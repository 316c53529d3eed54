"""Publishing a core event of a project for the account that owns it."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from pydantic import BaseModel

from .keys import ACCOUNTS, BACKGROUND


async def publish_for_owner(app: web.Application, project_id: str, name: str,
                            payload: Callable[[str], BaseModel], event_id: str) -> str | None:
    """Publish event ``name`` (its payload made for the owner's account id) for the
    account that owns ``project_id``, where developers' webhooks hear it; the event id,
    or None when no account owns the project (one from before accounts: nobody
    subscribes to its events) or the server runs without accounts."""
    if ACCOUNTS not in app or BACKGROUND not in app:
        return None
    owner = await app[ACCOUNTS].store.project_owner(project_id)
    if owner is None:
        return None
    return await app[BACKGROUND].bus.publish_now(name, payload(owner), account_id=owner,
                                                 event_id=event_id)
