"""The core's ``take.recovered`` event: a recording take a crash cut short was placed.

Published when the server starts again and places such a take
(:mod:`dawserver.take_recovery`), for the account that owns the project, where
developers' webhooks hear it (docs/public-api.md). Its id is the stored asset's, and
recovery journals a take it began placing, and one it placed, before it tells, so a
take recovered again after a crash (placed before it, announced or not) is announced
once (as long as the event is on record, and under the same owner). A take whose
tracks were all deleted since is stored and told of, though placed nowhere. A project
from before accounts has no owner to tell.
"""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel

from .declarations import Event
from .project_events import publish_for_owner
from .take_journal import TakeJournal

RECOVERED_NAME = "take.recovered"


class TakeRecovered(BaseModel):
    """A take placed after a crash: who recorded it (their user id; None for a guest),
    where, and how long. Its clips are those of ``asset_id`` on ``tracks`` (the tracks
    deleted since hold none)."""

    account_id: str
    project_id: str
    asset_id: str
    recorded_by: str | None
    tracks: list[str]
    frames: int
    duration_s: float


RECOVERED = Event(name=RECOVERED_NAME, payload=TakeRecovered,
                  description="a recording take a crash cut short was placed in its "
                              "project when the server started again")


async def announce_recovered(app: web.Application, journal: TakeJournal,
                             frames: int) -> str | None:
    """Publish ``take.recovered`` of the placed take ``journal`` (its asset journalled)
    for the project's owner; the event id, or None when the project has no owning
    account."""
    return await publish_for_owner(app, journal.project_id, RECOVERED_NAME, lambda owner:
        TakeRecovered(account_id=owner, project_id=journal.project_id,
                      asset_id=journal.asset_id, recorded_by=journal.user or None,
                      tracks=list(journal.tracks), frames=frames,
                      duration_s=round(frames / journal.sample_rate, 3)),
        event_id=f"{RECOVERED_NAME}/{journal.project_id}/{journal.asset_id}")
