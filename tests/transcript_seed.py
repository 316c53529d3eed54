"""Projects with a clip of uploaded audio and, if asked, its transcript, and jobs that stay
queued: what the public API's transcript tests (REST, GraphQL, the Python SDK) read,
made without running Whisper."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from public_api_helpers import wav_bytes

from dawserver.assets import ASSETS
from dawserver.authorization import project_account
from dawserver.keys import ACCOUNTS, ROOMS, STORE
from dawserver.projects import import_session
from dawserver.transcript_document import store_transcript
from dawserver.transcription_service import TRANSCRIPTION
from dsp_core.session import Clip, Session, Track
from transcription.jobs import QUEUE, TranscriptionRequest
from transcription.transcript import Segment, Transcript, Word

RATE = 8000
#: The clip every seeded project has.
CLIP = "speech"


def heard(*words: str) -> Transcript:
    """A transcript of ``words``, half a second each, as a recogniser would give it."""
    timed = tuple(Word(f" {w}", index * 0.5, index * 0.5 + 0.4, 0.9)
                  for index, w in enumerate(words))
    return Transcript(language="en", model="base", segments=(
        Segment(0.0, len(words) * 0.5, " ".join(words), timed),))


async def transcribed_project(app: Any, account_id: str, root: Path, name: str,
                              *transcripts: tuple[str, ...]) -> str:
    """A project of ``account_id`` with the clip :data:`CLIP` (two seconds of uploaded
    audio) and the transcripts given, as words: the first of :data:`CLIP`, the next of
    clips ``speech-2``, ``speech-3``...; the project's id."""
    audio = root / f"{name}.wav"
    audio.write_bytes(wav_bytes(2.0, RATE))
    clip_ids = [CLIP] + [f"{CLIP}-{n}" for n in range(2, len(transcripts) + 1)]
    session = Session(name=name, sample_rate=RATE, tracks=[Track("voice", clips=[
        Clip(str(audio), index * 2 * RATE, 2 * RATE, id=clip_id)
        for index, clip_id in enumerate(clip_ids)])])
    info = await import_session(app[STORE], session, name=name, assets=app[ASSETS])
    await app[ACCOUNTS].store.own_project(account_id, info.project_id)
    if transcripts:
        def write(document: Any) -> None:
            for clip_id, words in zip(clip_ids, transcripts, strict=True):
                store_transcript(document, clip_id, heard(*words))

        async with app[ROOMS].use(info.project_id) as room:
            await room.edit(write)
    return info.project_id


async def queued_job(app: Any, project_id: str, clip_id: str = CLIP) -> str:
    """The id of a transcription job on ``clip_id`` that stays queued for an hour (no
    worker takes it before then), to cancel."""
    request = TranscriptionRequest(project_id=project_id, source=f"{clip_id}.wav",
                                   clip_id=clip_id, start_s=0.0, end_s=2.0, language=None)
    record = await app[TRANSCRIPTION].queue.enqueue(
        QUEUE, request.to_payload(), account_id=project_account(project_id), delay_s=3600)
    return record.id
