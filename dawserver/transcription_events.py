"""The core's ``transcription.done`` event: a transcription job finished.

Published once per job (its id names the event, so a job run again after a crash does
not announce twice) for the account that owns the project, where developers' webhooks
hear it (docs/public-api.md).  A project from before accounts has no owner to tell.
"""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel

from transcription.jobs import TranscriptionRequest
from transcription.transcript import Transcript

from .declarations import Event
from .project_events import publish_for_owner

DONE_NAME = "transcription.done"


class TranscriptionDone(BaseModel):
    """What a finished transcription job heard; its words are read from the transcript
    routes (the clip's transcript in the project, or the job's result)."""

    account_id: str
    project_id: str
    job_id: str
    clip_id: str | None
    language: str
    duration_s: float
    words: int


DONE = Event(name=DONE_NAME, payload=TranscriptionDone,
             description="a transcription job finished (its transcript is stored)")


async def announce_done(app: web.Application, request: TranscriptionRequest, job_id: str,
                        transcript: Transcript) -> str | None:
    """Publish ``transcription.done`` for the project's owner; the event id, or None when
    the project has no owning account (nobody subscribes to its events)."""
    return await publish_for_owner(app, request.project_id, DONE_NAME, lambda owner:
        TranscriptionDone(account_id=owner, project_id=request.project_id, job_id=job_id,
                          clip_id=request.clip_id, language=transcript.language,
                          duration_s=round(transcript.duration, 3),
                          words=len(transcript.words)),
        event_id=f"{DONE_NAME}/{job_id}")
