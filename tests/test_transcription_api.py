"""The transcription HTTP routes on a running server: jobs, the document, text edits."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import aiohttp
import numpy as np
import pytest
import pytest_asyncio
from loopback import free_port
from nodepeer import eventually, running_server
from transcription_helpers import WORDS, spoken_words

from collab.client import SyncClient
from dawclient.channel import connect
from dawserver import asset_objects
from dawserver.assets import ASSETS
from dawserver.config import ServerConfig
from dawserver.keys import ROOMS, STORE, TOKENS
from dawserver.projects import import_session
from dawserver.storage.local import LocalObjectStore
from dawserver.transcript_document import find_clip, store_transcript
from dsp_core.audio_io import load_source
from dsp_core.engine import render_session as render_files
from dsp_core.session import Clip, Session, Track
from dsp_core.sources import asset_id_of, local_resolver, resolve_session
from transcription.engine import Transcriber
from transcription.transcript import Transcript


def render_session(session: Session, assets: Path) -> np.ndarray:
    """The offline render of a document's session (its asset ids read from ``assets``)."""
    playable, refused = resolve_session(session, local_resolver(assets))
    assert refused == []
    return render_files(playable)


pytestmark = pytest.mark.asyncio
RATE = 48000


@pytest.fixture(scope="module")
def spoken(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[float, float]]]:
    return spoken_words(tmp_path_factory.mktemp("api-words"))


@pytest.fixture(autouse=True)
def model_env(monkeypatch: pytest.MonkeyPatch, whisper_model_dir: Path) -> None:
    monkeypatch.setenv("DAW_WHISPER_MODEL", str(whisper_model_dir))
    monkeypatch.setenv("DAW_TRANSCRIBE_THREADS", "2")


class Client:
    def __init__(self, app, config: ServerConfig, http: aiohttp.ClientSession,
                 project_id: str) -> None:
        self.app, self.config, self.http, self.project_id = app, config, http, project_id

    def token(self, role: str = "editor") -> str:
        return self.app[TOKENS].issue(self.project_id, role, "eda")

    async def call(self, method: str, path: str, role: str = "editor", **kwargs):
        headers = {"Authorization": f"Bearer {self.token(role)}"}
        url = f"{self.config.base_url}/projects/{self.project_id}{path}"
        async with self.http.request(method, url, headers=headers, **kwargs) as response:
            if response.content_type == "application/json":
                return response.status, await response.json()
            return response.status, await response.text()

    async def finished(self, job_id: str, timeout: float = 120.0) -> dict:
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            status, job = await self.call("GET", f"/transcription-jobs/{job_id}", "viewer")
            assert status == 200
            if job["status"] in ("done", "failed", "cancelled"):
                return job
            await asyncio.sleep(0.1)
        raise AssertionError(f"job {job_id} did not finish")


def _session(path: Path) -> Session:
    frames = load_source(path, RATE).shape[1]
    return Session(sample_rate=RATE, tracks=[Track(id="dialogue", clips=[
        Clip(source=str(path), position=RATE, length=frames, id="speech")])])


@pytest_asyncio.fixture
async def client(tmp_path: Path, spoken):
    config = ServerConfig(port=free_port(), data_dir=tmp_path / "data", engine=False)
    async with running_server(config) as app, aiohttp.ClientSession() as http:
        info = await import_session(app[STORE], _session(spoken[0]), assets=app[ASSETS])
        yield Client(app, config, http, info.project_id)


async def test_transcribe_a_clip_then_delete_a_word_by_text(client: Client, spoken) -> None:
    status, body = await client.call("POST", "/clips/speech/transcribe", json={"language": "en"})
    assert status == 202 and body["job"]["status"] == "queued"
    job = await client.finished(body["job"]["id"])
    assert job["status"] == "done" and job["progress"] == 1.0

    for _ in range(200):  # the job's progress is mirrored into the shared document
        status, document = await client.call("GET", "", "viewer")
        shared = document["document"]["jobs"].get(job["id"], {})
        if shared.get("status") == "done":
            break
        await asyncio.sleep(0.02)
    assert shared == {**shared, "kind": "transcription", "clip": "speech", "status": "done",
                      "progress": 1.0, "error": ""}
    stored = document["document"]["transcripts"]["speech"]
    words = [w["word"].strip(".,").lower() for s in stored["segments"] for w in s["words"]]
    assert words == WORDS

    status, srt = await client.call("GET", "/clips/speech/transcript?format=srt", "viewer")
    assert status == 200 and srt.startswith("1\n00:00:0") and "purple" in srt.lower()
    status, vtt = await client.call("GET", "/clips/speech/transcript?format=vtt", "viewer")
    assert status == 200 and vtt.startswith("WEBVTT")

    async with client.app[ROOMS].use(client.project_id) as room:
        before = render_session(room.document.to_session(), client.app[ASSETS].root)
    target = WORDS.index("purple")
    status, body = await client.call("POST", "/clips/speech/transcript/edit",
                                     json={"delete": [target]})
    assert status == 200 and body["clips"][0] == "speech" and len(body["clips"]) == 2
    async with client.app[ROOMS].use(client.project_id) as room:
        after = render_session(room.document.to_session(), client.app[ASSETS].root)
    start, end = (RATE + int(t * RATE) for t in spoken[1][target])
    removed = before.shape[1] - after.shape[1]
    assert removed >= end - start
    tail = RATE + int(spoken[1][target + 1][0] * RATE)
    np.testing.assert_allclose(after[:, tail - removed:], before[:, tail:], atol=1e-6)
    word = float(np.sum(before[:, start:end].astype(np.float64) ** 2))
    assert float(np.sum(after[:, start - 240:tail - removed].astype(np.float64) ** 2)) < 1e-5 * word

    status, text = await client.call("GET", "/clips/speech/transcript?format=txt", "viewer")
    assert "purple" not in text.lower() and "elephant" not in text.lower()
    status, text = await client.call("GET", f"/clips/{body['clips'][1]}/transcript?format=txt",
                                     "viewer")
    assert "elephant" in text.lower()


async def test_bad_requests_get_clear_errors(client: Client) -> None:
    status, body = await client.call("POST", "/clips/speech/transcribe", json={"language": "xx"})
    assert status == 422 and "unknown language" in body["error"]
    status, body = await client.call("POST", "/clips/nope/transcribe")
    assert status == 404 and "nope" in body["error"]
    status, body = await client.call("POST", "/clips/speech/transcribe", "viewer")
    assert status == 403
    status, body = await client.call("GET", "/clips/speech/transcript", "viewer")
    assert status == 404 and "no transcript yet" in body["error"]
    status, body = await client.call("GET", "/clips/speech/transcript?format=doc", "viewer")
    assert status == 422 and "unknown format" in body["error"]
    status, body = await client.call("POST", "/clips/speech/transcript/edit", json={"x": 1})
    assert status == 422 and body["fields"][0]["path"] == "body.x"
    both = {"delete": [0], "order": [1, 0]}  # which one was meant cannot be told
    status, body = await client.call("POST", "/clips/speech/transcript/edit", json=both)
    assert status == 422 and "not both" in body["error"], body
    status, body = await client.call("GET", "/transcription-jobs/unknown", "viewer")
    assert status == 404


async def test_a_job_can_be_cancelled_and_jobs_are_listed(client: Client) -> None:
    first = (await client.call("POST", "/clips/speech/transcribe"))[1]["job"]
    second = (await client.call("POST", "/clips/speech/transcribe"))[1]["job"]
    status, cancelled = await client.call("DELETE", f"/transcription-jobs/{second['id']}")
    assert status == 200 and cancelled["status"] == "cancelled"
    assert (await client.finished(first["id"]))["status"] == "done"
    status, jobs = await client.call("GET", "/transcription-jobs", "viewer")
    assert [(j["id"], j["status"]) for j in jobs] == [(first["id"], "done"),
                                                       (second["id"], "cancelled")]
    status, document = await client.call("GET", "", "viewer")
    shared = document["document"]["jobs"][second["id"]]
    assert (shared["status"], shared["progress"]) == ("cancelled", 0.0)

    # another project sees none of them
    other = Client(client.app, client.config, client.http,
                   (await import_session(client.app[STORE], Session())).project_id)
    for method in ("GET", "DELETE"):
        status, body = await other.call(method, f"/transcription-jobs/{first['id']}")
        assert status == 404 and "no transcription job" in body["error"]
    assert await other.call("GET", "/transcription-jobs", "viewer") == (200, [])
    status, job = await client.call("GET", f"/transcription-jobs/{first['id']}", "viewer")
    assert status == 200 and job["status"] == "done"


async def test_a_job_queued_when_the_server_stops_finishes_after_a_restart(
        tmp_path: Path, spoken) -> None:
    config = ServerConfig(port=free_port(), data_dir=tmp_path / "data", engine=False)
    async with running_server(config) as app, aiohttp.ClientSession() as http:
        info = await import_session(app[STORE], _session(spoken[0]), assets=app[ASSETS])
        client = Client(app, config, http, info.project_id)
        job = (await client.call("POST", "/clips/speech/transcribe",
                                 json={"language": "en"}))[1]["job"]
    config.port = free_port()
    async with running_server(config) as app, aiohttp.ClientSession() as http:
        client = Client(app, config, http, info.project_id)
        assert (await client.finished(job["id"]))["status"] == "done"
        for _ in range(50):
            status, document = await client.call("GET", "", "viewer")
            if "speech" in document["document"]["transcripts"]:
                break
            await asyncio.sleep(0.1)
        assert document["document"]["transcripts"]["speech"]["language"] == "en"


async def test_a_text_edit_is_undone_and_redone_exactly_for_every_client(
        client: Client, transcriber: Transcriber, spoken) -> None:
    result = transcriber.transcribe(spoken[0], language="en")
    async with client.app[ROOMS].use(client.project_id) as room:
        await room.edit(lambda document: store_transcript(document, "speech", result))
        before = render_session(room.document.to_session(), client.app[ASSETS].root)
        before_json = room.document.to_json()
    status, body = await client.call("POST", "/clips/speech/transcript/undo")
    assert status == 409 and "no text edit to undo" in body["error"]
    url = f"{client.config.collab_url}/{client.project_id}"
    async with contextlib.AsyncExitStack() as stack:
        channel = await stack.enter_async_context(connect(url, client.token()))
        other = await stack.enter_async_context(SyncClient(channel))
        await other.wait_synced()
        status, edited = await client.call("POST", "/clips/speech/transcript/edit",
                                           json={"delete": [WORDS.index("purple")]})
        assert status == 200 and len(edited["clips"]) == 2
        await eventually(lambda: edited["clips"][1] in other.document.to_json()["clips"])
        async with client.app[ROOMS].use(client.project_id) as room:
            after_edit = room.document.to_json()
        status, body = await client.call("POST", "/clips/speech/transcript/undo", "viewer")
        assert status == 403
        status, body = await client.call("POST", "/clips/speech/transcript/undo")
        assert status == 200 and body == {"undo": True, "clips": ["speech"]}
        async with client.app[ROOMS].use(client.project_id) as room:
            undone = room.document.to_json()
            np.testing.assert_array_equal(
                render_session(room.document.to_session(), client.app[ASSETS].root), before)
        assert {k: undone[k] for k in ("clips", "transcripts")} == \
            {k: before_json[k] for k in ("clips", "transcripts")}
        await eventually(lambda: other.document.to_json()["clips"] == undone["clips"])
        assert other.document.to_json()["transcripts"] == undone["transcripts"]
        status, body = await client.call("POST", "/clips/speech/transcript/undo")
        assert status == 409
        status, body = await client.call("POST", "/clips/speech/transcript/redo")
        assert status == 200 and body["clips"] == sorted(edited["clips"])
        async with client.app[ROOMS].use(client.project_id) as room:
            assert room.document.to_json()["clips"] == after_edit["clips"]
        await eventually(lambda: other.document.to_json()["clips"] == after_edit["clips"])


async def test_an_edit_of_words_another_edit_changed_is_refused_and_changes_nothing(
        client: Client, transcriber: Transcriber, spoken) -> None:
    result = transcriber.transcribe(spoken[0], language="en")
    async with client.app[ROOMS].use(client.project_id) as room:
        await room.edit(lambda document: store_transcript(document, "speech", result))
        seen = [w.word for w in room.document.transcript("speech").words]
    edit = "/clips/{}/transcript/edit"

    async def words_of(clip: str) -> list[str]:
        async with client.app[ROOMS].use(client.project_id) as room:
            stored = room.document.transcript(clip)
            return [w.word.strip() for w in stored.words] if stored else []

    async def document() -> dict:
        async with client.app[ROOMS].use(client.project_id) as room:
            return room.document.to_json()

    # Two editors who saw the same words delete two of them at once: the first wins; the
    # second's indices would now name other words, so it is refused whole.
    answers = await asyncio.gather(*(
        client.call("POST", edit.format("speech"), json={"delete": [index], "words": seen})
        for index in (WORDS.index("purple"), 0)))
    assert sorted(status for status, _ in answers) == [200, 409]
    (refused,) = [body for status, body in answers if status == 409]
    (pieces,) = [body["clips"] for status, body in answers if status == 200]
    assert "changed since you read it" in refused["error"]
    after_first = await document()
    kept = [w for clip in pieces for w in await words_of(clip)]
    assert len(kept) == len(seen) - 1  # one deletion, not two

    # A stale view is refused however long after; a fresh one goes through.
    status, body = await client.call("POST", edit.format("speech"),
                                     json={"order": [1, 0], "words": seen})
    assert status == 409 and await document() == after_first
    last = pieces[-1]
    fresh = await words_of(last)
    status, body = await client.call("POST", edit.format(last),
                                     json={"delete": [0], "words": fresh})
    assert status == 200 and await words_of(body["clips"][-1]) == fresh[1:]


async def test_an_uploaded_asset_is_transcribed_into_its_job_only(client: Client,
                                                                  spoken) -> None:
    status, asset = await client.call("POST", "/assets?name=words.wav",
                                      data=spoken[0].read_bytes())
    assert status in (200, 201), asset
    status, body = await client.call("POST", f"/assets/{asset['id']}/transcribe", "viewer")
    assert status == 403
    status, body = await client.call("POST", f"/assets/{'0' * 64}/transcribe")
    assert status == 404
    status, body = await client.call("POST", f"/assets/{asset['id']}/transcribe",
                                     json={"language": "en"})
    assert status == 202 and body["job"]["clip_id"] is None
    job = await client.finished(body["job"]["id"])
    assert job["status"] == "done" and job["source"] == asset["id"]  # never a server path
    words = [w["word"].strip(".,").lower() for s in job["result"]["segments"]
             for w in s["words"]]
    assert words == WORDS
    status, document = await client.call("GET", "", "viewer")
    assert document["document"]["transcripts"] == {}


async def test_a_job_fetches_its_asset_where_it_runs_when_the_cached_copy_is_gone(
        client: Client, spoken, tmp_path: Path) -> None:
    """With assets in an object store, the node that runs a job reads its own copy: the
    file cached when the job was queued may be evicted meanwhile, or be on another
    node's disk. The job still transcribes the asset."""
    status, asset = await client.call("POST", "/assets?name=words.wav",
                                      data=spoken[0].read_bytes())
    assert status in (200, 201), asset
    store = client.app[ASSETS]
    store.objects = LocalObjectStore(tmp_path / "bucket")
    stored = store.asset(asset["id"])
    await asset_objects.publish(store, stored, client.project_id)
    Path(stored.path).unlink()  # evicted from this node's cache
    status, body = await client.call("POST", f"/assets/{asset['id']}/transcribe",
                                     json={"language": "en"})
    assert status == 202, body
    job = await client.finished(body["job"]["id"])
    assert (job["status"], job["error"], job["source"]) == ("done", None, asset["id"])
    words = [w["word"].strip(".,").lower() for s in job["result"]["segments"]
             for w in s["words"]]
    assert words == WORDS


@pytest.mark.parametrize("retimed", [{"stretch": 1.5}, {"follow_tempo": True,
                                                        "source_bpm": 100.0},
                                     {"warp": [[0, 48000], [48000, 120000]]}])
async def test_a_text_edit_of_a_stretched_clip_is_refused_and_changes_nothing(
        client: Client, retimed: dict) -> None:
    """The planner cuts the source by its frames; a stretched clip plays them elsewhere
    (a warped one ignores its offset), so the cut would play the wrong audio."""
    words = [{"word": f" w{i}", "start": 0.5 * i, "end": 0.5 * i + 0.3} for i in range(4)]
    transcript = Transcript.from_dict({
        "language": "en", "language_probability": 1.0, "duration": 2.0, "model": "test",
        "segments": [{"start": 0.0, "end": 1.8, "text": "w0 w1 w2 w3", "words": words}],
        "passages": []})
    async with client.app[ROOMS].use(client.project_id) as room:
        await room.edit(lambda d: store_transcript(d, "speech", transcript))
        await room.edit(lambda d: d.update_clip("speech", **retimed))
        before = room.document.to_session()
    status, body = await client.call("POST", "/clips/speech/transcript/edit",
                                     json={"delete": [1]})
    assert status == 400 and "stretched" in body["error"], body
    async with client.app[ROOMS].use(client.project_id) as room:
        assert room.document.to_session() == before


async def test_queueing_a_clip_checks_its_asset_without_fetching_the_audio(
        client: Client, tmp_path: Path) -> None:
    """On object storage the node that runs a job fetches its own copy of the audio; the
    node that queues it only checks that the clip plays one of the project's assets, so
    the 202 never waits for a download (a long take can take minutes)."""
    store = client.app[ASSETS]
    store.objects = LocalObjectStore(tmp_path / "bucket")
    async with client.app[ROOMS].use(client.project_id) as room:
        asset_id = asset_id_of(find_clip(room.document, "speech").clip.source)
    stored = store.asset(asset_id)
    await asset_objects.publish(store, stored, client.project_id)
    Path(stored.path).unlink()  # not in this node's cache
    fetch_allowed = asyncio.Event()
    download = store.objects.download

    async def held_download(key: str, path: Path) -> int:
        await fetch_allowed.wait()
        return await download(key, path)

    store.objects.download = held_download
    async with asyncio.timeout(20):  # the old route waited for the download: forever here
        status, body = await client.call("POST", "/clips/speech/transcribe",
                                         json={"language": "en"})
    assert status == 202, body
    fetch_allowed.set()
    job = await client.finished(body["job"]["id"])
    assert (job["status"], job["error"], job["source"]) == ("done", None, asset_id)


async def test_a_clip_whose_audio_is_gone_is_refused_at_once(client: Client) -> None:
    """The asset's description is still on the node but its audio is gone (deleted from
    the disk, or collected from the object store): the clip's and the asset's routes
    answer 409 at once rather than queueing a job that can only fail."""
    store = client.app[ASSETS]
    async with client.app[ROOMS].use(client.project_id) as room:
        asset_id = asset_id_of(find_clip(room.document, "speech").clip.source)
    Path(store.asset(asset_id).path).unlink()
    for path in ("/clips/speech/transcribe", f"/assets/{asset_id}/transcribe"):
        status, body = await client.call("POST", path, json={"language": "en"})
        assert status == 409 and "is gone" in body["error"], (path, body)
    status, jobs = await client.call("GET", "/transcription-jobs", "viewer")
    assert status == 200 and jobs == []
