"""Uploading cover art and audio into the account's own distribution folder over HTTP.

``PUT /api/distribution/files/{file_name}`` (the body is the file), ``GET
/api/distribution/files`` and ``DELETE /api/distribution/files/{file_name}``: what a
release may then name, another account never sees or touches.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from distribution_helpers import make_art, make_audio, release_dict
from PIL import Image

from business.distribution import files as account_files
from business.distribution import plugin
from dawserver.plugin_api import Principal
from dawserver.plugins import PLUGIN_CONTEXT_KEY, install, load_plugins

FILES = "/api/distribution/files"
Test = Callable[[TestClient, Path], Awaitable[None]]


def _identify(request: web.Request) -> Principal | None:
    """The account of ``X-Account``, with the role of ``X-Role`` (owner unless told)."""
    account = request.headers.get("X-Account")
    role = request.headers.get("X-Role", "owner")
    return Principal(account, role, account) if account else None


def _serve(tmp_path: Path, test: Test) -> None:
    data = tmp_path / "data"

    async def go() -> None:
        config = {"data_dir": data, "plugins": {"distribution": {"presave_check_s": 3600}}}
        app = web.Application()
        install(app, config, manager=load_plugins(config), identify=_identify)
        async with TestClient(TestServer(app)) as client:
            await test(client, data)

    asyncio.run(go())


async def _put(client: TestClient, account: str, name: str, body: Any,
               content_type: str = "application/octet-stream", **headers: str
               ) -> tuple[int, dict[str, Any]]:
    answer = await client.put(f"{FILES}/{name}", data=body, headers={
        "X-Account": account, "Content-Type": content_type, **headers})
    if answer.content_type != "application/json":  # the router's own 404, as text
        return answer.status, {"error": await answer.text()}
    return answer.status, await answer.json()


async def _call(client: TestClient, method: str, path: str, account: str, **headers: str
                ) -> tuple[int, Any]:
    answer = await client.request(method, path, headers={"X-Account": account, **headers})
    return answer.status, await answer.json()


def _png(size: int = 64) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (size, size), (200, 30, 90)).save(out, format="PNG")
    return out.getvalue()


def test_files_are_uploaded_listed_replaced_and_deleted(tmp_path: Path) -> None:
    jpeg = make_art(tmp_path / "cover.jpg", size=64).read_bytes()
    flac = make_audio(tmp_path / "take.flac", seconds=0.5).read_bytes()

    async def test(client: TestClient, data: Path) -> None:
        folder = (data / "distribution" / "ada").resolve()
        status, made = await _put(client, "ada", "cover.jpg", jpeg, "image/jpeg")
        assert status == 201, made
        assert made == {"name": "cover.jpg", "size": len(jpeg),
                        "path": str(folder / "cover.jpg")}
        assert Path(made["path"]).read_bytes() == jpeg
        status, made = await _put(client, "ada", "Take 1 (final).flac", flac)
        assert status == 201, made
        status, listed = await _call(client, "GET", FILES, "ada", **{"X-Role": "viewer"})
        assert status == 200 and listed == [
            {"name": "Take 1 (final).flac", "size": len(flac),
             "path": str(folder / "Take 1 (final).flac")},
            {"name": "cover.jpg", "size": len(jpeg), "path": str(folder / "cover.jpg")}]

        png = _png()  # the same name again replaces the file: 200
        status, made = await _put(client, "ada", "cover.jpg", png, "image/png")
        assert status == 200 and made["size"] == len(png), made
        assert (folder / "cover.jpg").read_bytes() == png

        status, gone = await _call(client, "DELETE", f"{FILES}/Take 1 (final).flac", "ada")
        assert status == 200 and gone["name"] == "Take 1 (final).flac", gone
        status, listed = await _call(client, "GET", FILES, "ada")
        assert [f["name"] for f in listed] == ["cover.jpg"]
        status, missing = await _call(client, "DELETE", f"{FILES}/Take 1 (final).flac", "ada")
        assert status == 404 and "Take 1 (final).flac" in missing["error"], missing
        assert sorted(p.name for p in folder.iterdir()) == ["cover.jpg"]  # no part file

    _serve(tmp_path, test)


def test_a_release_names_its_uploads_but_never_another_accounts(tmp_path: Path) -> None:
    art = make_art(tmp_path / "cover.jpg")
    audio = make_audio(tmp_path / "track.wav", seconds=1.0)

    async def test(client: TestClient, data: Path) -> None:
        status, cover = await _put(client, "ada", "cover.jpg", art.read_bytes(), "image/jpeg")
        assert status == 201, cover
        status, track = await _put(client, "ada", "track.wav", audio.read_bytes(), "audio/wav")
        assert status == 201, track
        raw = release_dict(tmp_path, art=Path(cover["path"]), audio=[Path(track["path"])])
        raw["release_date"] = (dt.date.today() + dt.timedelta(days=21)).isoformat()
        made = await client.post("/api/distribution/releases", json=raw,
                                 headers={"X-Account": "ada"})
        assert made.status == 201, await made.json()
        status, report = await _call(client, "POST", "/api/distribution/releases/rel-1/check",
                                     "ada")
        assert status == 200 and report["passed"], report
        # eve names ada's uploads: refused, and nothing is stored
        refused = await client.post("/api/distribution/releases", json=raw,
                                    headers={"X-Account": "eve"})
        error = (await refused.json())["error"]
        assert refused.status == 400 and "artwork_path" in error, error
        assert "tracks[0].audio_path" in error
        status, _ = await _call(client, "GET", "/api/distribution/releases/rel-1", "eve")
        assert status == 404

    _serve(tmp_path, test)


def test_another_account_never_sees_nor_touches_the_files(tmp_path: Path) -> None:
    jpeg = make_art(tmp_path / "cover.jpg", size=64).read_bytes()

    async def test(client: TestClient, data: Path) -> None:
        status, made = await _put(client, "ada", "cover.jpg", jpeg, "image/jpeg")
        assert status == 201, made
        assert await _call(client, "GET", FILES, "eve") == (200, [])
        status, missing = await _call(client, "DELETE", f"{FILES}/cover.jpg", "eve")
        assert status == 404, missing
        png = _png()  # eve's file of that name is eve's own
        status, hers = await _put(client, "eve", "cover.jpg", png, "image/png")
        assert status == 201 and hers["path"] != made["path"], hers
        assert Path(made["path"]).read_bytes() == jpeg
        assert (await _call(client, "GET", FILES, "ada"))[1] == [made]
        # a viewer of ada's account lists her files but neither uploads nor deletes
        viewer = {"X-Role": "viewer"}
        answer = await client.put(f"{FILES}/x.png", data=png, headers={
            "X-Account": "ada", "Content-Type": "image/png", **viewer})
        assert answer.status == 403
        assert (await _call(client, "DELETE", f"{FILES}/cover.jpg", "ada", **viewer))[0] == 403
        assert (await _call(client, "GET", FILES, "ada", **viewer))[1] == [made]

    _serve(tmp_path, test)


def test_bad_names_other_types_and_large_files_are_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    png = _png()
    wav = make_audio(tmp_path / "take.wav", seconds=1.0).read_bytes()  # about 260 KB
    monkeypatch.setattr(account_files, "MAX_FILE_BYTES", 100_000)

    async def chunked(body: bytes) -> AsyncIterator[bytes]:  # no Content-Length
        for start in range(0, len(body), 16_384):
            yield body[start:start + 16_384]

    async def test(client: TestClient, data: Path) -> None:
        folder = data / "distribution" / "ada"
        for name in (".hidden.png", "..", "...", "a%5Cb.png", "a%2Fb.png", "%2E%2E",
                     "nul%00.png", " padded.png", "x" * 201 + ".png"):
            status, refused = await _put(client, "ada", name, png, "image/png")
            assert status in (400, 404), (name, status, refused)
            if status == 400:
                assert "plain name" in refused["error"], refused
        status, refused = await _put(client, "ada", ".hidden.png", png, "image/png")
        assert status == 400, refused  # the router does reach the name check
        for body in (b"", b"just some text, not art", b"GIF89a" + png[6:],
                     b"RIFF\x00\x00\x00\x00AVI LIST" + wav[16:1000]):
            status, refused = await _put(client, "ada", "cover.png", body)
            assert status == 415 and "JPEG or PNG" in refused["error"], refused
        status, refused = await _put(client, "ada", "take.wav", wav, "audio/wav")
        assert status == 413 and "100,000" in refused["error"], refused  # declared length
        status, refused = await _put(client, "ada", "take.wav", chunked(wav), "audio/wav")
        assert status == 413 and "100,000" in refused["error"], refused  # streamed past it
        assert not folder.exists() or list(folder.iterdir()) == []  # nothing kept
        status, made = await _put(client, "ada", "small.png", chunked(png), "image/png")
        assert status == 201 and made["size"] == len(png), made

    _serve(tmp_path, test)


def test_erasing_a_person_deletes_their_files_and_no_one_elses(tmp_path: Path) -> None:
    jpeg = make_art(tmp_path / "cover.jpg", size=64).read_bytes()

    async def test(client: TestClient, data: Path) -> None:
        for account in ("ada", "eve"):
            status, made = await _put(client, account, "cover.jpg", jpeg, "image/jpeg")
            assert status == 201, made
        context = client.app[PLUGIN_CONTEXT_KEY]
        for _ in range(2):  # a retried erasure finds nothing more to do
            await plugin.account_erased(context, "ada", "pz-1", ["Ada"])
            assert not (data / "distribution" / "ada").exists()
        assert (await _call(client, "GET", FILES, "ada"))[1] == []
        assert [f["name"] for f in (await _call(client, "GET", FILES, "eve"))[1]] == [
            "cover.jpg"]

    _serve(tmp_path, test)
