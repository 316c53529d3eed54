"""A finished clip job stores its transcript only while the clip still plays the audio
the job heard: a clip whose audio was replaced meanwhile keeps no stale transcript."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile
from loopback import free_port
from nodepeer import running_server

from dawserver.assets import ASSETS
from dawserver.config import ServerConfig
from dawserver.keys import ROOMS, STORE
from dawserver.projects import import_session
from dawserver.transcription_service import TRANSCRIPTION
from dsp_core.session import Clip, Session, Track
from dsp_core.sources import asset_id_of
from transcription.errors import EditError
from transcription.jobs import TranscriptionRequest
from transcription.transcript import Segment, Transcript, Word

RATE = 16000
HEARD = Transcript("en", (Segment(0.5, 1.5, "hello there", (
    Word("hello", 0.5, 0.9), Word("there", 1.0, 1.5))),))


def _wav(path: Path, frequency: float) -> Path:
    tone = 0.1 * np.sin(2 * np.pi * frequency * np.arange(2 * RATE) / RATE)
    soundfile.write(path, tone.astype(np.float32), RATE)
    return path


@pytest.mark.asyncio
async def test_a_transcript_is_not_stored_on_a_clip_whose_audio_was_replaced(
        tmp_path: Path) -> None:
    session = Session(sample_rate=RATE, tracks=[Track(id="dialogue", clips=[
        Clip(source=str(_wav(tmp_path / "a.wav", 220.0)), position=0, length=2 * RATE,
             id="speech"),
        Clip(source=str(_wav(tmp_path / "b.wav", 330.0)), position=3 * RATE, length=2 * RATE,
             id="other")])])
    config = ServerConfig(port=free_port(), data_dir=tmp_path / "data", engine=False)
    async with running_server(config) as app:
        info = await import_session(app[STORE], session, assets=app[ASSETS])
        async with app[ROOMS].use(info.project_id) as room:
            heard = asset_id_of(room.document.clip("speech")["source"])
            other = room.document.clip("other")["source"]
            assert heard is not None and asset_id_of(other) != heard
        request = TranscriptionRequest(project_id=info.project_id, source=heard,
                                       clip_id="speech", end_s=2.0, language="en",
                                       asset_id=heard)
        async with app[ROOMS].use(info.project_id) as room:  # the editor swaps the audio
            await room.edit(lambda document: document.update_clip("speech", source=other))
        await app[TRANSCRIPTION]._write_result(request, "job-1", HEARD)
        async with app[ROOMS].use(info.project_id) as room:
            assert room.document.transcript("speech") is None

        async with app[ROOMS].use(info.project_id) as room:  # the audio it heard: stored
            await room.edit(lambda document: document.update_clip("speech", source=heard))
        await app[TRANSCRIPTION]._write_result(request, "job-1", HEARD)
        async with app[ROOMS].use(info.project_id) as room:
            stored = room.document.transcript("speech")
            assert stored is not None and [w.word for w in stored.words] == ["hello", "there"]


def test_store_transcript_refuses_a_clip_playing_other_audio() -> None:
    from collab.schema import ProjectDocument
    from dawserver.transcript_document import store_transcript

    heard, other = "a" * 64, "b" * 64
    document = ProjectDocument.from_session(Session(sample_rate=RATE, tracks=[Track(
        id="t", clips=[Clip(source=other, position=0, length=2 * RATE, id="speech")])]))
    with pytest.raises(EditError, match="replaced"):
        store_transcript(document, "speech", HEARD, asset_id=heard)
    assert document.transcript("speech") is None
    store_transcript(document, "speech", HEARD, asset_id=other)
    assert document.transcript("speech") is not None
