"""The sample library over HTTP: uploads, search, previews, index jobs, into a project."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import aiohttp
import numpy as np
import pytest
import pytest_asyncio
import samples_audio as audio
import soundfile as sf
from loopback import free_port
from nodepeer import running_server
from test_audio_io import silent_flac

from collab.tokens import Role
from dawserver.config import ServerConfig
from dawserver.keys import ROOMS, STORE, TOKENS
from dawserver.projects import import_session
from dawserver.sample_service import ENV_ROOTS, SAMPLES
from dawserver.sample_uploads import UploadTooLarge, store_upload
from dsp_core import audio_io
from dsp_core.session import Session, Track

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(120)]
RATE = audio.RATE


def wav(data: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, data.T, RATE, format="WAV", subtype="FLOAT")
    return buffer.getvalue()


class Client:
    """One project's token: on a server without accounts, the project is the account."""

    def __init__(self, app, base: str, project_id: str, http: aiohttp.ClientSession) -> None:  # noqa: ANN001
        self.app, self.base, self.project_id, self.http = app, base, project_id, http

    def headers(self, role: Role = Role.EDITOR) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.app[TOKENS].issue(self.project_id, role, 'ana')}"}

    async def call(self, method: str, path: str, *, role: Role = Role.EDITOR, **kwargs):  # noqa: ANN003, ANN201
        async with self.http.request(method, self.base + path, headers=self.headers(role),
                                     **kwargs) as response:
            body = await response.read()
            if response.content_type == "application/json":
                return response.status, await response.json(), response.headers
            return response.status, body, response.headers

    async def upload(self, name: str, data: np.ndarray) -> dict:
        return await self.upload_bytes(name, wav(data))

    async def upload_bytes(self, name: str, data: bytes) -> dict:
        status, body, _ = await self.call("POST", "/samples/uploads", params={"name": name},
                                          data=data)
        assert status == 200, body
        return body


@pytest_asyncio.fixture
async def clients(tmp_path: Path):
    config = ServerConfig(port=free_port(), data_dir=tmp_path / "data", engine=False)
    async with running_server(config) as app, aiohttp.ClientSession() as http:
        made = []
        for name in ("A", "B"):
            info = await import_session(app[STORE], Session(name=name, tracks=[Track("t0")]))
            made.append(Client(app, f"http://127.0.0.1:{config.port}", info.project_id, http))
        yield made


async def test_uploads_are_analysed_and_searchable_by_their_owner_only(clients) -> None:  # noqa: ANN001
    a, b = clients
    kick = await a.upload("Kick_Punchy.wav", audio.kick())
    loop = await a.upload("Chords_Am.wav", audio.am_chord())
    assert (kick["type"], kick["class"]) == ("one-shot", "kick")
    assert loop["key"] == "A minor" and abs(loop["bpm"] - 120) <= 1
    status, page, _ = await a.call("GET", "/samples", role=Role.VIEWER,
                                   params={"q": "kick"})
    assert status == 200 and [s["id"] for s in page["samples"]] == [kick["id"]]
    status, page, _ = await a.call("GET", "/samples", params={
        "bpm_min": "59", "bpm_max": "61", "half_double": "true", "key": "C",
        "relative": "true", "type": "loop"})
    assert [s["id"] for s in page["samples"]] == [loop["id"]]
    status, page, _ = await a.call("GET", "/samples", params={"class": "kick"})
    assert [s["id"] for s in page["samples"]] == [kick["id"]]
    # B sees none of A's samples, and A's ids are not found for B
    status, page, _ = await b.call("GET", "/samples")
    assert status == 200 and page["total"] == 0
    for path in (f"/samples/{kick['id']}", f"/samples/{kick['id']}/preview"):
        status, body, _ = await b.call("GET", path)
        assert status == 404, body
    status, body, _ = await b.call("POST", f"/projects/{b.project_id}/samples",
                                   json={"sample_id": kick["id"]})
    assert status == 404, body


async def test_bad_queries_and_uploads_say_what_to_do(clients) -> None:  # noqa: ANN001
    a, _ = clients
    status, body, _ = await a.call("GET", "/samples", params={"class": "tuba"})
    assert status == 400 and "kick" in body["error"]
    status, body, _ = await a.call("GET", "/samples", params={"key": "H#"})
    assert status == 400 and "not a key" in body["error"]
    status, body, _ = await a.call("POST", "/samples/uploads", params={"name": "x.wav"},
                                   data=b"not audio")
    assert status == 415, body
    status, body, _ = await a.call("POST", "/samples/uploads", role=Role.VIEWER,
                                   params={"name": "x.wav"}, data=wav(audio.kick()))
    assert status == 403, body


async def test_a_very_long_upload_name_is_cut_to_fit_a_file_name(clients) -> None:  # noqa: ANN001
    a, _ = clients
    kick = await a.upload("K" * 300 + ".wav", audio.kick())
    assert kick["name"] == "K" * 200 + ".wav", kick["name"]
    other = await a.upload("K" * 300 + ".wav", audio.hat())  # a taken name: its variant
    assert other["name"] == "K" * 200 + " (2).wav", other["name"]


async def test_a_dot_named_upload_is_not_hidden_and_survives_a_reindex(
        clients) -> None:  # noqa: ANN001
    a, _ = clients
    kick = await a.upload(".Kick.wav", audio.kick())
    assert kick["name"] == "Kick.wav"
    folder = a.app[SAMPLES].upload_folder(a.project_id)
    report = await a.app[SAMPLES].library.index_folder(a.project_id, folder)
    assert (report.unchanged, report.removed) == (1, 0), report
    status, body, _ = await a.call("GET", f"/samples/{kick['id']}")
    assert status == 200 and body["name"] == "Kick.wav", body


async def test_an_upload_that_cannot_be_analysed_leaves_no_file(clients,  # noqa: ANN001
                                                                monkeypatch) -> None:  # noqa: ANN001
    import samples.library as library_module

    def broken(data, rate: int):  # noqa: ANN001, ANN202
        raise ValueError("an analysis fault")

    a, _ = clients
    monkeypatch.setattr(library_module, "analyse", broken)
    status, body, _ = await a.call("POST", "/samples/uploads", params={"name": "Hat.wav"},
                                   data=wav(audio.hat()))
    assert status == 422 and "Hat.wav" in body["error"], body
    assert list(a.app[SAMPLES].upload_folder(a.project_id).iterdir()) == []
    monkeypatch.undo()
    status, page, _ = await a.call("GET", "/samples")
    assert status == 200 and page["total"] == 0


async def test_an_upload_decoding_past_the_limit_is_refused_and_leaves_no_file(
        clients, tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    """``POST /samples/uploads`` stores through :func:`store_upload`: a FLAC of 2^24
    silent stereo frames (128 MiB decoded) is refused over a 16 MiB limit (413), no file
    kept."""
    monkeypatch.setattr(audio_io, "MAX_DECODED_BYTES", 16 << 20)
    body = silent_flac(tmp_path / "bomb.flac", 1 << 24).read_bytes()
    folder = tmp_path / "uploads"
    folder.mkdir()
    with pytest.raises(UploadTooLarge, match=r"^Pad\.flac: its header declares 16777216"):
        store_upload(folder, "Pad.flac", body)
    assert list(folder.iterdir()) == []
    a, _ = clients
    status, answer, _ = await a.call("POST", "/samples/uploads", params={"name": "Pad.flac"},
                                     data=body)
    assert status == 413 and "16777216" in answer["error"], answer
    assert list(a.app[SAMPLES].upload_folder(a.project_id).iterdir()) == []


async def test_an_upload_never_replaces_the_file_of_a_sample_already_kept(
        clients) -> None:  # noqa: ANN001
    """Uploads are checked before they take a name: a corrupt upload under a kept
    sample's name leaves its file whole, other audio under that name is kept beside it
    as "name (2)", and the same bytes again are the same sample."""
    a, _ = clients
    kick_wav = wav(audio.kick())  # encoded once: a float WAV's PEAK chunk holds the time
    kick = await a.upload_bytes("Kick.wav", kick_wav)

    async def preview_frames(sample_id: str) -> int:
        status, body, _ = await a.call("GET", f"/samples/{sample_id}/preview",
                                       role=Role.VIEWER)
        assert status == 200, body
        return sf.read(io.BytesIO(body))[0].shape[0]

    kept = await preview_frames(kick["id"])
    assert kept == audio.kick().shape[-1]
    status, body, _ = await a.call("POST", "/samples/uploads", params={"name": "Kick.wav"},
                                   data=kick_wav[:60])
    assert status == 415 and "Kick.wav" in body["error"], body
    assert ".part" not in body["error"] and "/tmp" not in body["error"], body
    chord = await a.upload("Kick.wav", audio.am_chord())
    assert chord["id"] != kick["id"] and chord["name"].startswith("Kick (2)"), chord
    assert await preview_frames(kick["id"]) == kept
    again = await a.upload_bytes("Kick.wav", kick_wav)
    assert again["id"] == kick["id"]
    leftovers = [p.name for p in a.app[SAMPLES].upload_folder(a.project_id).iterdir()
                 if p.name.startswith(".")]
    assert leftovers == []


async def test_pages_follow_cursors(clients) -> None:  # noqa: ANN001
    a, _ = clients
    for n in range(3):
        await a.upload(f"Hit {n}.wav", audio.kick() * np.float32(0.5 + n / 10))
    seen, cursor = [], None
    while True:
        params = {"q": "hit", "limit": "2", **({"cursor": cursor} if cursor else {})}
        _, page, _ = await a.call("GET", "/samples", params=params)
        seen += [s["id"] for s in page["samples"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 3
    status, body, _ = await a.call("GET", "/samples", params={"cursor": "garbage!"})
    assert status == 400 and "cursor" in body["error"]


async def test_a_preview_is_stretched_to_the_project_tempo(clients) -> None:  # noqa: ANN001
    a, _ = clients
    loop = await a.upload("Chords_Am.wav", audio.am_chord(4.0))
    status, body, headers = await a.call("GET", f"/samples/{loop['id']}/preview",
                                         role=Role.VIEWER, params={"tempo": "90", "key": "Bm"})
    assert status == 200, body
    assert headers["X-Preview-Method"] == "rubberband" and headers["X-Semitones"] == "2"
    data, rate = sf.read(io.BytesIO(body))
    assert abs(len(data) / rate - 4.0 * 120 / 90) < 0.05
    status, body, _ = await a.call("GET", f"/samples/{loop['id']}/preview",
                                   params={"tempo": "1000"})
    assert status == 400


async def test_a_sample_becomes_a_project_asset_and_a_clip(clients) -> None:  # noqa: ANN001
    a, _ = clients
    loop = await a.upload("Chords_Am.wav", audio.am_chord(4.0))
    status, added, _ = await a.call("POST", f"/projects/{a.project_id}/samples", json={
        "sample_id": loop["id"], "position_s": 1.0, "tempo": 60})
    assert status == 201, added
    status, assets, _ = await a.call("GET", f"/projects/{a.project_id}/assets")
    assert [x["id"] for x in assets] == [added["asset_id"]]
    assert abs(assets[0]["duration"] - 8.0) < 0.05  # half the tempo: twice as long
    async with a.app[ROOMS].use(a.project_id) as room:
        clips = room.document.to_json()["clips"]
        rate = room.document.sample_rate
    clip = clips[added["clip_id"]]
    assert clip["track"] == added["track_id"] and clip["position"] == rate
    status, again, _ = await a.call("POST", f"/projects/{a.project_id}/samples",
                                    json={"sample_id": loop["id"]})
    assert status == 201, again
    track_ids = {added["track_id"], again["track_id"]}
    assert len(track_ids) == 2 and "" not in track_ids
    async with a.app[ROOMS].use(a.project_id) as room:
        assert track_ids <= set(room.document.track_ids())
    status, body, _ = await a.call("POST", f"/projects/{a.project_id}/samples",
                                   role=Role.VIEWER, json={"sample_id": loop["id"]})
    assert status == 403


@pytest.mark.parametrize("position", ["Infinity", "NaN", "1e300", "86401"])
async def test_a_position_out_of_range_answers_422_and_stores_nothing(
        clients, position: str) -> None:  # noqa: ANN001
    a, _ = clients
    kick = await a.upload("Kick.wav", audio.kick())
    raw = f'{{"sample_id": "{kick["id"]}", "track_id": "t0", "position_s": {position}}}'
    status, body, _ = await a.call("POST", f"/projects/{a.project_id}/samples",
                                   data=raw.encode())
    assert status == 422 and "position_s" in str(body), body
    status, assets, _ = await a.call("GET", f"/projects/{a.project_id}/assets")
    assert status == 200 and assets == []


async def test_an_add_naming_an_unknown_track_stores_no_asset(clients) -> None:  # noqa: ANN001
    a, _ = clients
    kick = await a.upload("Kick.wav", audio.kick())
    status, body, _ = await a.call("POST", f"/projects/{a.project_id}/samples",
                                   json={"sample_id": kick["id"], "track_id": "nope"})
    assert status == 400 and "'nope'" in body["error"], body
    status, assets, _ = await a.call("GET", f"/projects/{a.project_id}/assets")
    assert status == 200 and assets == []


async def test_indexing_a_folder_is_a_job_with_progress(clients, tmp_path: Path,  # noqa: ANN001
                                                        monkeypatch) -> None:  # noqa: ANN001
    a, b = clients
    root = tmp_path / "shared"
    for n, make in enumerate((audio.kick, audio.hat, audio.snare)):
        (root / "pack").mkdir(parents=True, exist_ok=True)
        sf.write(root / "pack" / f"{make.__name__}_{n}.wav", make().T, RATE)
    status, body, _ = await a.call("POST", "/samples/index", json={"folder": str(root)})
    assert status == 400 and ENV_ROOTS in body["error"]
    monkeypatch.setenv(ENV_ROOTS, str(root))
    status, job, headers = await a.call("POST", "/samples/index",
                                        json={"folder": str(root / "pack")})
    assert status == 202, job
    async with asyncio.timeout(60):
        while job["state"] not in ("done", "failed", "dead"):
            await asyncio.sleep(0.2)
            _, job, _ = await a.call("GET", headers["Location"])
    assert job["state"] == "done" and job["progress"] == 1.0, job
    assert job["result"]["added"] == 3
    _, page, _ = await a.call("GET", "/samples", params={"type": "one-shot"})
    assert {s["class"] for s in page["samples"]} == {"kick", "hat", "snare"}
    status, _, _ = await b.call("GET", headers["Location"])
    assert status == 404
    assert len(a.app[SAMPLES].library.index) == 3
