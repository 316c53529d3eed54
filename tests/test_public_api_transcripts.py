"""Transcripts under /api/v1 on a running server with the real Whisper base model: a job
started and followed to `done`, the clip's transcript listed and read with its words and
timings, cursor pages, sparse fields, problem details, another project's job a 404; the
`transcription.done` event for the project's owner, once per job."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from loopback import free_port
from nodepeer import running_server
from pycrdt import Array, Map
from test_transcription_api import RATE, _session
from transcript_seed import heard, queued_job
from transcription_helpers import WORDS, spoken_words

from accounts.models import AccountKind
from dawserver.assets import ASSETS
from dawserver.config import ServerConfig
from dawserver.keys import ACCOUNTS, BACKGROUND, ROOMS, STORE, TOKENS
from dawserver.projects import import_session
from dawserver.transcript_document import store_transcript
from dawserver.transcription_events import DONE_NAME, announce_done
from dsp_core.session import Clip
from transcription.engine import Transcriber
from transcription.jobs import TranscriptionRequest
from transcription.transcript import Segment, Transcript, Word

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(240)]


@pytest.fixture(scope="module")
def spoken(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[float, float]]]:
    return spoken_words(tmp_path_factory.mktemp("v1-words"))


@pytest.fixture(autouse=True)
def model_env(monkeypatch: pytest.MonkeyPatch, whisper_model_dir: Path) -> None:
    monkeypatch.setenv("DAW_WHISPER_MODEL", str(whisper_model_dir))
    monkeypatch.setenv("DAW_TRANSCRIBE_THREADS", "2")


class V1:
    def __init__(self, app: Any, config: ServerConfig, http: aiohttp.ClientSession) -> None:
        self.app, self.config, self.http = app, config, http

    async def call(self, method: str, path: str, project_id: str, role: str = "editor",
                   headers: dict[str, str] | None = None, **kwargs: Any
                   ) -> tuple[int, Any, Any]:
        token = self.app[TOKENS].issue(project_id, role, "eda")
        url = f"{self.config.base_url}/api/v1/projects/{project_id}{path}"
        sent = {"Authorization": f"Bearer {token}", **(headers or {})}
        async with self.http.request(method, url, headers=sent, **kwargs) as answer:
            return answer.status, await answer.json(content_type=None), answer.headers


@pytest_asyncio.fixture
async def server(tmp_path: Path, spoken) -> Any:
    config = ServerConfig(port=free_port(), data_dir=tmp_path / "data", engine=False)
    async with running_server(config) as app, aiohttp.ClientSession() as http:
        first = await import_session(app[STORE], _session(spoken[0]), assets=app[ASSETS])
        second = await import_session(app[STORE], _session(spoken[0]), assets=app[ASSETS])
        yield V1(app, config, http), first.project_id, second.project_id


async def done_events(app: Any) -> list[dict[str, Any]]:
    """The ``transcription.done`` events written to the outbox."""
    rows = await app[BACKGROUND].bus.db.fetch(
        "SELECT account_id, id, payload FROM events_outbox WHERE name = ?", DONE_NAME)
    return [dict(row) for row in rows]


async def test_a_job_is_followed_to_done_and_its_transcript_read(server, spoken) -> None:
    v1, project, other = server
    owner = await v1.app[ACCOUNTS].store.create_account(AccountKind.PERSON, "Eda",
                                                       email="eda@example.org")
    await v1.app[ACCOUNTS].store.own_project(owner.account_id, project)
    status, empty, _ = await v1.call("GET", "/transcripts", project, "viewer")
    assert status == 200 and empty == {"data": [], "next_cursor": None}
    status, problem, _ = await v1.call("GET", "/transcripts/speech", project, "viewer")
    assert status == 404 and "transcription-jobs" in problem["detail"]

    status, job, headers = await v1.call("POST", "/transcription-jobs", project,
                                         json={"clip_id": "speech", "language": "en"})
    assert status == 202, job
    assert job["status"] in ("queued", "running") and job["transcript_url"] is None
    assert headers["Location"] == f"/api/v1/projects/{project}/transcription-jobs/{job['id']}"
    async with asyncio.timeout(180):
        while job["status"] not in ("done", "failed", "cancelled"):
            await asyncio.sleep(0.1)
            status, job, _ = await v1.call("GET", f"/transcription-jobs/{job['id']}", project,
                                           "viewer")
            assert status == 200
    assert job["status"] == "done" and job["progress"] == 1.0, job
    assert job["transcript_url"] == f"/api/v1/projects/{project}/transcripts/speech"
    status, listed, _ = await v1.call("GET", "/transcription-jobs?status=done", project,
                                      "viewer")
    assert [j["id"] for j in listed["data"]] == [job["id"]]
    status, none, _ = await v1.call("GET", "/transcription-jobs?status=failed", project,
                                    "viewer")
    assert none["data"] == []

    status, page, _ = await v1.call("GET", "/transcripts", project, "viewer")
    [summary] = page["data"]
    assert summary["id"] == "speech" and summary["language"] == "en"
    assert summary["word_count"] == len(WORDS)
    status, transcript, _ = await v1.call("GET", "/transcripts/speech", project, "viewer")
    assert status == 200
    words = transcript["words"]
    assert [w["text"].strip(".,").lower() for w in words] == WORDS
    for word, (start, end) in zip(words, spoken[1], strict=True):
        # times from the clip's start, which is the file's start here (Whisper's word
        # times are coarse: the word's middle lies near the spoken span)
        assert word["start_s"] < word["end_s"]
        assert start - 0.5 < (word["start_s"] + word["end_s"]) / 2 < end + 0.5
        assert 0 <= word["probability"] <= 1
    # the same words and times as the core's export of the document's transcript
    token = v1.app[TOKENS].issue(project, "viewer", "eda")
    async with v1.http.get(f"{v1.config.base_url}/projects/{project}/clips/speech/transcript",
                           headers={"Authorization": f"Bearer {token}"}) as answer:
        exported = await answer.json()
    core_words = [w for segment in exported["segments"] for w in segment["words"]]
    assert [(w["text"], w["start_s"], w["end_s"]) for w in words] == [
        (w["word"].strip(), w["start"], w["end"]) for w in core_words]
    status, sparse, _ = await v1.call("GET", "/transcripts/speech?fields=language", project,
                                      "viewer")
    assert sparse == {"id": "speech", "language": "en"}

    # the owner's account heard it once, with what the job heard; announcing the same
    # job again (a run repeated after a crash) writes no second event
    [event] = await done_events(v1.app)
    assert event["account_id"] == owner.account_id and event["id"] == f"{DONE_NAME}/{job['id']}"
    payload = json.loads(event["payload"])
    assert payload.pop("duration_s") > 1.0
    assert payload == {"account_id": owner.account_id, "project_id": project, "job_id": job["id"],
                       "clip_id": "speech", "language": "en", "words": len(WORDS)}
    request = TranscriptionRequest(project_id=project, source="speech", clip_id="speech")
    result = Transcript(language="en")
    assert await announce_done(v1.app, request, job["id"], result) == event["id"]
    assert len(await done_events(v1.app)) == 1
    # a project without an owning account has nobody to tell
    assert await announce_done(v1.app, TranscriptionRequest(project_id=other, source="x"),
                               "job-x", result) is None

    # another project's job and transcript are not found, as if missing
    status, _, _ = await v1.call("GET", f"/transcription-jobs/{job['id']}", other, "viewer")
    assert status == 404
    status, page, _ = await v1.call("GET", "/transcripts", other, "viewer")
    assert page["data"] == []


async def test_pages_bad_input_and_permissions(server, transcriber: Transcriber,
                                               spoken) -> None:
    v1, project, _ = server
    result = transcriber.transcribe(spoken[0], language="en")
    async with v1.app[ROOMS].use(project) as room:
        await room.edit(lambda document: store_transcript(document, "speech", result))
    status, page, _ = await v1.call("GET", "/transcripts?limit=1", project, "viewer")
    assert status == 200 and [t["id"] for t in page["data"]] == ["speech"]
    assert page["next_cursor"] is None
    status, problem, _ = await v1.call("GET", "/transcripts?cursor=forged.abc", project,
                                       "viewer")
    assert status == 400 and problem["status"] == 400
    status, problem, headers = await v1.call("POST", "/transcription-jobs", project,
                                             json={"clip_id": "nope"})
    assert status == 404 and "nope" in problem["detail"]
    assert headers["Content-Type"].startswith("application/problem+json")
    status, problem, _ = await v1.call("POST", "/transcription-jobs", project,
                                       json={"clip_id": "speech", "language": "klingon"})
    assert status == 422
    status, _, _ = await v1.call("POST", "/transcription-jobs", project, "viewer",
                                 json={"clip_id": "speech"})
    assert status == 403
    status, _, _ = await v1.call("GET", "/transcription-jobs/nope", project, "viewer")
    assert status == 404


async def test_a_job_is_cancelled_and_words_edited_once_per_idempotency_key(server) -> None:
    v1, project, other = server
    async with v1.app[ROOMS].use(project) as room:
        await room.edit(lambda document: store_transcript(document, "speech",
                                                          heard("alpha", "beta", "gamma")))
    job_id = await queued_job(v1.app, project)
    cancel = f"/transcription-jobs/{job_id}/cancel"

    status, _, _ = await v1.call("POST", cancel, project, "viewer")
    assert status == 403
    status, problem, _ = await v1.call("POST", cancel, other)
    assert status == 404 and "no transcription job" in problem["detail"]
    status, job, _ = await v1.call("POST", cancel, project)
    assert status == 200, job
    assert (job["id"], job["status"], job["transcript_url"]) == (job_id, "cancelled", None)
    status, again, _ = await v1.call("POST", cancel, project)
    assert status == 200 and again["status"] == "cancelled"
    status, shown, _ = await v1.call("GET", f"/transcription-jobs/{job_id}", project)
    assert shown["status"] == "cancelled"

    edit = "/transcripts/speech/edit"
    status, _, _ = await v1.call("POST", edit, project, "viewer", json={"delete": [1]})
    assert status == 403
    status, problem, _ = await v1.call("POST", edit, project, json={"ripple": False})
    assert status == 422, problem
    status, problem, _ = await v1.call("POST", edit, project, json={"delete": [9]})
    assert status == 400 and "outside" in problem["detail"]
    # the words read are not the words there: refused whole (another edit overtook it)
    status, problem, _ = await v1.call("POST", edit, project, json={
        "delete": [1], "words": ["alpha", "gamma"]})
    assert status == 409 and "changed since you read it" in problem["detail"]
    key = {"Idempotency-Key": "edit-1"}
    read = {"delete": [1], "words": ["alpha", "beta", "gamma"]}
    status, edited, _ = await v1.call("POST", edit, project, json=read, headers=key)
    assert status == 200 and edited["clips"][0] == "speech" and len(edited["clips"]) == 2
    status, replayed, _ = await v1.call("POST", edit, project, json=read, headers=key)
    assert status == 200 and replayed == edited  # answered again, not deleted twice
    status, _, _ = await v1.call("POST", edit, project, json={"delete": [0]}, headers=key)
    assert status == 422
    _, page, _ = await v1.call("GET", "/transcripts", project, "viewer")
    texts = {t["id"]: t["text"] for t in page["data"]}
    assert " ".join(texts[c] for c in edited["clips"]) == "alpha gamma", texts


async def test_a_malformed_transcript_is_a_conflict_and_hides_no_other(server) -> None:
    # any editor's Yjs client may write the shared document; the room checks only that an
    # update applies, so a transcript may hold a word time that is not a number
    v1, project, _ = server
    good = Transcript("en", segments=(Segment(0.0, 1.0, "hello", (Word("hello", 0.1, 0.5),)),))

    def write(document: Any) -> None:
        [track] = document.to_session().tracks
        document.add_clip(track.id, Clip(source=track.clips[0].source, position=0,
                                         length=RATE, id="retake"))
        store_transcript(document, "speech", good)
        document._roots["transcripts"]["retake"] = Map({  # noqa: SLF001
            "clip": "retake", "language": "en", "language_probability": 1.0, "model": "",
            "segments": Array([{"start": 0, "end": 1, "text": "x", "words": [
                {"word": "x", "start": "soon", "end": 1}]}]),
            "passages": Array([])})

    async with v1.app[ROOMS].use(project) as room:
        await room.edit(write)
    status, page, _ = await v1.call("GET", "/transcripts", project, "viewer")
    assert status == 200 and [t["id"] for t in page["data"]] == ["speech"]
    status, problem, _ = await v1.call("GET", "/transcripts/retake", project, "viewer")
    assert status == 409 and "malformed" in problem["detail"], problem
    status, found, _ = await v1.call("GET", "/transcripts/speech", project, "viewer")
    assert status == 200 and [w["text"] for w in found["words"]] == ["hello"]
    token = v1.app[TOKENS].issue(project, "viewer", "eda")
    async with v1.http.get(f"{v1.config.base_url}/projects/{project}/clips/retake/transcript",
                           headers={"Authorization": f"Bearer {token}"}) as answer:
        body = await answer.json()
        assert answer.status == 409 and "transcribe the clip again" in body["error"], body
