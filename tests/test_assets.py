"""Project audio over HTTP: streamed upload with limits and checks, download, peaks."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import aiohttp
import numpy as np
import pytest
import pytest_asyncio
import soundfile as sf
from loopback import free_port
from nodepeer import running_server
from test_audio_io import silent_flac

from collab.tokens import Role
from dawserver import clip_renders
from dawserver.assets import ASSETS
from dawserver.config import ServerConfig
from dawserver.keys import STORE, TOKENS
from dawserver.projects import import_session
from dsp_core import audio_io
from dsp_core.audio_io import load_source
from dsp_core.session import Clip, Session, Track

pytestmark = pytest.mark.asyncio


def wav_bytes(audio: np.ndarray, rate: int = 48000, fmt: str = "WAV",
              subtype: str = "FLOAT") -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, audio.T, rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


class Api:
    def __init__(self, app, base: str, project_id: str, imported: Path) -> None:
        self.app, self.base, self.project_id, self.imported = app, base, project_id, imported
        self.http = aiohttp.ClientSession()

    def token(self, role: Role = Role.EDITOR) -> str:
        return self.app[TOKENS].issue(self.project_id, role, "ana")

    def url(self, path: str) -> str:
        return f"{self.base}/projects/{self.project_id}{path}"

    async def upload(self, body, role: Role = Role.EDITOR, **params) -> aiohttp.ClientResponse:
        headers = {"Authorization": f"Bearer {self.token(role)}"}
        async with self.http.post(self.url("/assets"), data=body, params=params,
                                  headers=headers) as response:
            await response.read()
            return response

    async def get(self, path: str, **params):
        params["token"] = self.token(Role.VIEWER)
        async with self.http.get(self.url(path), params=params) as response:
            body = await response.read()
            return response, body


@pytest_asyncio.fixture
async def api(tmp_path: Path):
    imported = tmp_path / "imported.wav"
    sf.write(imported, np.linspace(-0.5, 0.5, 3000, dtype=np.float32), 48000, subtype="FLOAT")
    config = ServerConfig(port=free_port(), data_dir=tmp_path / "data", engine=False)
    session = Session(name="Assets", tracks=[
        Track("t0", clips=[Clip(str(imported), 0, 3000, id="c0")])])
    async with running_server(config) as app:
        info = await import_session(app[STORE], session)
        client = Api(app, f"http://127.0.0.1:{config.port}", info.project_id, imported)
        try:
            yield client
        finally:
            await client.http.close()


def stored_files(api: Api) -> list[Path]:
    root = api.app[ASSETS].root
    return sorted(p for p in root.rglob("*") if p.is_file() and "projects" not in p.parts)


async def test_an_upload_is_stored_by_hash_with_peaks_and_downloads_unchanged(api: Api) -> None:
    audio = np.sin(np.arange(20000, dtype=np.float32) / 7)[None, :] * 0.8
    data = wav_bytes(audio)
    response = await api.upload(data, name="take.wav")
    assert response.status == 201
    asset = await response.json()
    assert asset["id"] == hashlib.sha256(data).hexdigest()
    assert (asset["frames"], asset["channels"], asset["sample_rate"]) == (20000, 1, 48000)
    assert asset["source"] == asset["id"] and "path" not in asset  # no server path leaves
    response, body = await api.get(f"/assets/{asset['id']}")
    assert response.status == 200 and body == data
    response, body = await api.get("/assets")
    assert [a["id"] for a in await response.json()] == [asset["id"]]
    again = await api.upload(data)
    assert again.status == 201
    assert len([p for p in stored_files(api) if p.suffix == ".wav"]) == 1


async def test_multipart_flac_upload_is_accepted(api: Api) -> None:
    audio = np.random.default_rng(1).uniform(-0.5, 0.5, (2, 5000)).astype(np.float32)
    form = aiohttp.FormData()
    form.add_field("file", wav_bytes(audio, fmt="FLAC", subtype="PCM_24"),
                   filename="stereo.flac", content_type="audio/flac")
    response = await api.upload(form)
    assert response.status == 201
    asset = await response.json()
    assert (asset["format"], asset["channels"], asset["name"]) == ("flac", 2, "stereo.flac")


async def test_peaks_match_numpy_min_max(api: Api) -> None:
    audio = np.random.default_rng(2).uniform(-1, 1, (2, 10_000)).astype(np.float32)
    asset = await (await api.upload(wav_bytes(audio))).json()
    response, _ = await api.get(f"/assets/{asset['id']}/peaks", frames_per_peak="256")
    peaks = await response.json()
    assert peaks["levels"][0] == 64 and peaks["count"] == 40
    for c in range(2):
        for i in (0, 17, 39):
            chunk = audio[c, i * 256:(i + 1) * 256]
            assert peaks["min"][c][i] == pytest.approx(chunk.min(), abs=1e-5)
            assert peaks["max"][c][i] == pytest.approx(chunk.max(), abs=1e-5)
    response, body = await api.get(f"/assets/{asset['id']}/peaks", frames_per_peak="64",
                                   format="binary", start="3", count="2")
    pairs = np.frombuffer(body, "<f4").reshape(2, 2, 2)
    assert response.headers["X-Peaks-Count"] == "2"
    assert pairs[1, 0, 0] == audio[1, 192:256].min() and pairs[1, 1, 1] == audio[1, 256:320].max()


async def test_an_oversized_upload_gets_413_and_leaves_nothing(api: Api) -> None:
    api.app[ASSETS].max_bytes = 10_000
    before = stored_files(api)
    response = await api.upload(wav_bytes(np.zeros((1, 8000), np.float32)))
    assert response.status == 413
    assert "over the 10000-byte limit" in (await response.json())["error"]

    async def unsized():
        for _ in range(10):
            yield b"\0" * 4096

    response = await api.upload(unsized())
    assert response.status == 413
    assert stored_files(api) == before


@pytest.mark.parametrize("counted, message", [
    (True, "its header declares 16777216 frames"),
    (False, "decodes to more than 2097152 frames"),
], ids=["header", "no-count"])
async def test_a_flac_decoding_past_the_limit_gets_413_and_leaves_nothing(
        api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, counted: bool,
        message: str) -> None:
    """64 KB of FLAC silence is 2^24 stereo frames, 128 MiB decoded: over a 16 MiB limit
    it is refused from its header, or while decoding when the header gives no count (the
    default limit, 3 GiB, is lowered here so the test decodes little)."""
    monkeypatch.setattr(audio_io, "MAX_DECODED_BYTES", 16 << 20)
    body = silent_flac(tmp_path / "bomb.flac", 1 << 24, counted).read_bytes()
    assert len(body) < 100_000
    response = await api.upload(body, name="silence.flac")
    assert response.status == 413
    error = (await response.json())["error"]
    assert error.startswith(f"silence.flac: {message}") and "at most 16 MiB" in error
    assert str(api.app[ASSETS].root) not in error
    assert stored_files(api) == []
    assert list((api.app[ASSETS].root / "tmp").iterdir()) == []


@pytest.mark.parametrize("body, message", [
    (b"this is not audio at all" * 100, "not a readable WAV/FLAC/AIFF file"),
    (b"", "empty"),
    (wav_bytes(np.zeros((1, 48000), np.float32))[:3000], "truncated"),
    (wav_bytes(np.full((1, 100), np.nan, np.float32)), "NaN"),
], ids=["text", "empty", "truncated", "nan"])
async def test_corrupt_audio_gets_415_with_a_clear_message_and_leaves_nothing(
        api: Api, body: bytes, message: str) -> None:
    response = await api.upload(body, name="bad.wav")
    assert response.status == 415
    error = (await response.json())["error"]
    assert message in error
    assert str(api.app[ASSETS].root) not in error
    assert stored_files(api) == []


async def test_a_viewer_cannot_upload(api: Api) -> None:
    response = await api.upload(wav_bytes(np.zeros((1, 100), np.float32)), role=Role.VIEWER)
    assert response.status == 403


async def test_clip_sources_download_and_have_peaks_only_as_project_assets(api: Api) -> None:
    # a server path in a clip (an imported project's file, any other file) is never served
    for source in (str(api.imported), "/etc/passwd"):
        for route in ("/audio", "/peaks"):
            response, body = await api.get(route, source=source, frames_per_peak="1024")
            assert response.status == 404, (route, source)
            assert b"by the id of one of the project's assets" in body
    response = await api.upload(wav_bytes(np.linspace(-0.5, 0.5, 3000, dtype=np.float32)[None]))
    asset = await response.json()
    response, body = await api.get("/peaks", source=asset["source"], frames_per_peak="1024")
    peaks = json.loads(body)
    assert peaks["count"] == 3 and peaks["max"][0][2] == pytest.approx(0.5, abs=1e-5)
    response, body = await api.get("/audio", source=asset["id"])
    assert response.status == 200 and sf.info(io.BytesIO(body)).frames == 3000
    # another project's asset (the store is shared): 404 like a missing one
    other = await import_session(api.app[STORE], Session(name="Other"))
    elsewhere = api.imported.with_name("theirs.wav")
    sf.write(elsewhere, np.full(2000, 0.25, dtype=np.float32), 48000, subtype="FLOAT")
    theirs = api.app[ASSETS].ingest_file(elsewhere, project_id=other.project_id)
    for route in ("/audio", "/peaks", f"/assets/{theirs.id}"):
        response, _ = await api.get(route, source=theirs.id, frames_per_peak="1024")
        assert response.status == 404, route
    response, _ = await api.get("/audio", source=theirs.path)  # its store path: the same
    assert response.status == 404


async def test_deleting_a_project_deletes_its_stretch_renders(api) -> None:
    """A stretched clip's render is a processed copy of the project's audio: deleting
    the project (or erasing its owner) deletes it and the marks of its use."""
    audio = (0.3 * np.sin(np.arange(48000) / 10)).astype(np.float32)[None]
    assert (await api.upload(wav_bytes(audio), name="voice.wav")).status == 201
    asset_id = (await (await api.http.get(api.url("/assets"), params={
        "token": api.token()})).json())[0]["id"]
    clip = Clip(asset_id, 0, 96000, id="c1", stretch=2.0)
    store = api.app[ASSETS]
    path = store.asset(asset_id).path
    render = await clip_renders.obtain(
        clip, Session(name="x", tracks=[Track("t1", clips=[clip])]), 48000, store=store,
        project_id=api.project_id, load=lambda _source, rate: load_source(path, rate))
    assert render is not None and render.found == "rendered"

    def derived() -> list[Path]:
        return [p for p in store.root.rglob("*") if p.is_file() and "derived" in str(p)]

    assert len(derived()) >= 3  # the render, its project's mark and its use's mark
    async with api.http.delete(f"{api.base}/projects/{api.project_id}", headers={
            "Authorization": f"Bearer {api.token(Role.OWNER)}"}) as answer:
        assert answer.status == 200, await answer.text()
    assert derived() == []


async def test_a_project_never_sees_anothers_name_for_the_same_bytes(api: Api) -> None:
    """Identical bytes are stored once, but each project shows the name it uploaded them
    under: a label's "unreleased-single-final.wav" never shows to another project that
    uploads the same file (in the upload's answer, the list, the info or the download)."""
    data = wav_bytes(np.sin(np.arange(9000, dtype=np.float32) / 5)[None, :] * 0.5)
    first = await api.upload(data, name="unreleased-single-final.wav")
    assert first.status == 201
    other = (await import_session(api.app[STORE], Session(name="Other"))).project_id
    token = api.app[TOKENS].issue(other, Role.EDITOR, "bo")
    base = f"{api.base}/projects/{other}"
    async with api.http.post(f"{base}/assets", data=data, params={"name": "beat.wav"},
                             headers={"Authorization": f"Bearer {token}"}) as response:
        assert response.status == 201
        asset = await response.json()
    assert asset["name"] == "beat.wav"
    for path in ("/assets", f"/assets/{asset['id']}/info", f"/assets/{asset['id']}"):
        async with api.http.get(f"{base}{path}", params={"token": token}) as response:
            assert response.status == 200, path
            shown = await response.read()
            assert b"unreleased" not in shown, path
            assert "unreleased" not in response.headers.get("Content-Disposition", ""), path
    async with api.http.get(f"{base}/assets/{asset['id']}/info",
                            params={"token": token}) as response:
        assert (await response.json())["name"] == "beat.wav"
    response, body = await api.get(f"/assets/{asset['id']}/info")  # the first project's own
    assert json.loads(body)["name"] == "unreleased-single-final.wav"
