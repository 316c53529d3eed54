"""The social plug-in's own media uploads: images and videos streamed in, read from their
content by ffprobe and ffmpeg, refused with 413, 415 or 422 when they are not what a post
can carry, attached to composed and bulk posts and published through the fake X."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import io
import json
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from social_fakes import CLIENT_ID, CLIENT_SECRET, until
from social_helpers import InTestNetwork, social_app, who

from business.social import uploads
from business.social.fakes import FAKES, FakeNetworks
from business.social.models import ChannelTokens
from business.social.plugin import account_erased
from business.social.privacy import export_account
from business.social.services import services
from business.social.uploads import upload_file, upload_folder
from business.social.waveform_jobs import media_file
from dawserver import router
from dawserver.file_answer import FileAnswer
from dawserver.plugin_api import Pseudonymiser

pytestmark = pytest.mark.timeout(120)
ADA = who("acc", "p_ada", "editor")
VIEWER = who("acc", "p_vi", "viewer")
OTHER = who("other", "p_bo", "owner")


def made(folder: Path) -> dict[str, Path]:
    """Real media made by ffmpeg: a PNG (1200x800), a JPEG (800x800), an animated GIF, a
    WebP (300x200), an MP4 (2 s, 640x360), a MOV (1 s) and a WAV."""
    folder.mkdir(parents=True, exist_ok=True)
    recipes = {
        "png": ("cover.png", ["-f", "lavfi", "-i", "testsrc=s=1200x800", "-frames:v", "1"]),
        "jpeg": ("photo.jpg", ["-f", "lavfi", "-i", "testsrc=s=800x800", "-frames:v", "1"]),
        "gif": ("loop.gif", ["-f", "lavfi", "-i", "testsrc=s=120x120:d=0.5"]),
        "webp": ("still.webp", ["-f", "lavfi", "-i", "testsrc=s=300x200", "-frames:v", "1"]),
        "mp4": ("clip.mp4", ["-f", "lavfi", "-i", "testsrc=s=640x360:d=2", "-f", "lavfi",
                             "-i", "sine=d=2", "-shortest", "-c:v", "libx264",
                             "-pix_fmt", "yuv420p", "-c:a", "aac"]),
        "mov": ("take.mov", ["-f", "lavfi", "-i", "testsrc=s=320x240:d=1", "-c:v", "libx264",
                             "-pix_fmt", "yuv420p"]),
        "wav": ("bounce.wav", ["-f", "lavfi", "-i", "sine=d=1"]),
    }
    found = {}
    for key, (name, args) in recipes.items():
        path = folder / name
        subprocess.run(["ffmpeg", "-v", "error", "-y", *args, str(path)], check=True,
                       timeout=60)
        found[key] = path
    return found


async def upload(client: Any, data: bytes, content_type: str, name: str = "",
                 headers: dict[str, str] = ADA) -> Any:
    return await client.post("/api/social/media", params={"name": name} if name else {},
                             data=data, headers={**headers, "Content-Type": content_type})


async def uploaded(client: Any, path: Path, content_type: str,
                   headers: dict[str, str] = ADA) -> dict[str, Any]:
    answer = await upload(client, path.read_bytes(), content_type, path.name, headers)
    assert answer.status == 201, await answer.text()
    return await answer.json()


def at(minutes: float) -> str:
    """An ISO time ``minutes`` from now, on the minute, with its offset."""
    when = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=minutes)
    return when.replace(second=0, microsecond=0).isoformat()


def test_images_and_videos_are_read_from_their_content_listed_and_found(
        tmp_path: Path, db_url: str) -> None:
    files = made(tmp_path / "files")

    async def go() -> None:
        async with social_app(tmp_path, db_url) as (client, context):
            answer = await upload(client, files["png"].read_bytes(), "image/png", "cover.png")
            assert answer.status == 201, await answer.text()
            png = await answer.json()
            assert answer.headers["Location"] == f"/api/social/media/{png['media_id']}"
            assert png["media_id"].startswith("md_")
            assert (png["name"], png["uploaded_by"]) == ("cover.png", "p_ada")
            assert png["media"] == {
                "asset_id": png["media_id"], "kind": "image", "content_type": "image/png",
                "size_bytes": files["png"].stat().st_size, "duration_s": None,
                "width": 1200, "height": 800}
            kept = upload_file(context.data_dir, "acc", png["media_id"])
            assert kept is not None and kept.read_bytes() == files["png"].read_bytes()
            assert await media_file(context, "acc", png["media_id"]) == str(kept)

            # the content decides, not the name nor the declared type
            jpeg = await uploaded(client, files["jpeg"], "image/png")
            assert (jpeg["media"]["content_type"], jpeg["media"]["width"]) == ("image/jpeg",
                                                                               800)
            gif = await uploaded(client, files["gif"], "image/gif")
            assert gif["media"]["content_type"] == "image/gif"
            webp = await uploaded(client, files["webp"], "image/webp")
            assert (webp["media"]["content_type"], webp["media"]["width"],
                    webp["media"]["height"]) == ("image/webp", 300, 200)
            mp4 = await uploaded(client, files["mp4"], "video/mp4")
            assert (mp4["media"]["kind"], mp4["media"]["content_type"], mp4["media"]["width"],
                    mp4["media"]["height"]) == ("video", "video/mp4", 640, 360)
            assert 1.9 <= mp4["media"]["duration_s"] <= 2.2
            mov = await uploaded(client, files["mov"], "video/quicktime")
            assert mov["media"]["content_type"] == "video/quicktime"

            listed = await (await client.get("/api/social/media", headers=VIEWER)).json()
            assert {m["media_id"] for m in listed} == {
                u["media_id"] for u in (png, jpeg, gif, webp, mp4, mov)}
            one = await client.get(f"/api/social/media/{png['media_id']}", headers=VIEWER)
            assert (await one.json()) == png
            # a viewer reads the library but uploads nothing
            assert (await upload(client, files["png"].read_bytes(), "image/png",
                                 headers=VIEWER)).status == 403

    asyncio.run(go())


def test_what_is_no_image_or_video_or_too_big_is_refused_and_nothing_is_kept(
        tmp_path: Path) -> None:
    files = made(tmp_path / "files")
    png = files["png"].read_bytes()

    async def go() -> None:
        settings = {"media_uploads": {"max_bytes": 300_000, "max_image_bytes": 100_000}}
        async with social_app(tmp_path, f"sqlite://{tmp_path / 's.sqlite3'}",
                              settings=settings) as (client, context):
            async def refused(data: bytes, content_type: str, status: int,
                              says: str) -> None:
                answer = await upload(client, data, content_type, "notes.png")
                assert answer.status == status, await answer.text()
                assert says in (await answer.json())["error"]

            await refused(b"Track list:\n1. Night Drive\n" * 20, "image/png", 415,
                          "'notes.png' is no image or video")
            await refused(files["wav"].read_bytes(), "image/png", 415, "upload JPEG, PNG")
            await refused(png[:len(png) // 2], "image/png", 422, "truncated")
            jpeg = files["jpeg"].read_bytes()
            await refused(jpeg[:len(jpeg) // 2], "image/jpeg", 422, "truncated")
            mp4 = files["mp4"].read_bytes()
            await refused(mp4[:len(mp4) // 2], "video/mp4", 422, "truncated")
            await refused(b"", "image/png", 422, "is empty")
            # past the limit by its declared length, and streamed without one
            await refused(b"\0" * 400_000, "video/mp4", 413, "at most 300,000 bytes")

            async def chunked() -> AsyncIterator[bytes]:
                for _ in range(40):
                    yield b"\0" * 10_000

            streamed = await client.post("/api/social/media", data=chunked(),
                                         headers={**ADA, "Content-Type": "video/mp4"})
            assert streamed.status == 413, await streamed.text()
            assert "past 300,000 bytes" in (await streamed.json())["error"]
            # an image over the image limit (a video of its size would be taken)
            big = files["png"].parent / "big.png"
            subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                            "nullsrc=s=400x400,geq=random(1)*255:128:128", "-frames:v",
                            "1", str(big)], check=True, timeout=60)
            assert 100_000 < big.stat().st_size < 300_000
            await refused(big.read_bytes(), "image/png", 413, "images take at most")

            listed = await (await client.get("/api/social/media", headers=ADA)).json()
            assert listed == []
            folder = upload_folder(context.data_dir, "acc")
            assert folder is not None and list(folder.iterdir()) == []

    asyncio.run(go())


def test_uploads_take_turns_at_being_read(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading a file runs ffprobe and ffmpeg: five uploads at once are read two at a
    time, each one still read and kept."""
    files = made(tmp_path / "files")
    reading, most = 0, 0
    real = uploads.identify

    async def slow(path: Path, name: str) -> dict[str, Any]:
        nonlocal reading, most
        reading += 1
        most = max(most, reading)
        try:
            await asyncio.sleep(0.2)
            return await real(path, name)
        finally:
            reading -= 1

    monkeypatch.setattr(uploads, "identify", slow)

    async def go() -> None:
        async with social_app(tmp_path, f"sqlite://{tmp_path / 's.sqlite3'}") as (
                client, _context):
            answers = await asyncio.gather(*(
                upload(client, files["png"].read_bytes(), "image/png", f"cover-{n}.png")
                for n in range(5)))
            assert [a.status for a in answers] == [201] * 5
            assert most == uploads.READS_AT_ONCE == 2

    asyncio.run(go())


def test_another_accounts_media_id_looks_like_an_unknown_one(tmp_path: Path,
                                                             db_url: str) -> None:
    files = made(tmp_path / "files")

    async def go() -> None:
        x = InTestNetwork("x")
        async with social_app(tmp_path, db_url, x) as (
                client, context):
            theirs = (await uploaded(client, files["png"], "image/png", OTHER))["media_id"]
            unknown = "md_" + "0" * 24
            for media_id in (theirs, unknown):
                got = await client.get(f"/api/social/media/{media_id}", headers=ADA)
                gone = await client.delete(f"/api/social/media/{media_id}", headers=ADA)
                assert (got.status, gone.status) == (404, 404)
                assert (await got.json())["error"] == (
                    f"there is no uploaded media {media_id!r} in this account: check the "
                    "id (GET /api/social/media lists them)")
                assert await media_file(context, "acc", media_id) is None
            assert await media_file(context, "other", theirs) is not None
            assert await (await client.get("/api/social/media", headers=ADA)).json() == []

            channel = await insert_channel(context, "acc", "x")
            csv = (f"datetime,channel,text,media\n{at(60 * 24)},{channel},Theirs,{theirs}\n"
                   f"{at(60 * 24)},{channel},Unknown,{unknown}\n")
            report = await (await client.post("/api/social/bulk", data=csv.encode(), headers={
                **ADA, "Content-Type": "text/csv"})).json()
            assert [(e["row"], e["code"]) for e in report["errors"]] == [
                (2, "unknown_media"), (3, "unknown_media")]
            first, second = (e["message"] for e in report["errors"])
            assert first.replace(theirs, unknown) == second

    asyncio.run(go())


async def insert_channel(context: Any, account: str, network: str,
                         fake: Any = None) -> str:
    """A channel of ``account`` holding fresh tokens of ``fake`` (as a connect stores
    them; a made-up grant without one); its id."""
    module = services(context)
    box, now = module.channels.box, time.time()
    if fake is not None:
        answer = fake.new_tokens(fake.user, "post")
        user = fake.user
        remote, name, handle = user.id, user.name, user.handle
    else:
        answer = {"access_token": "at", "refresh_token": "rt", "expires_in": 3600}
        remote, name, handle = "remote-1", "Ada", "@ada"
    sealed = ChannelTokens(box.seal(answer["access_token"]),
                           box.seal(answer.get("refresh_token") or answer["access_token"]),
                           now + float(answer["expires_in"]), "post", 1, now, now)
    async with module.store.db.transaction() as tx:
        return await module.store.insert_channel(tx, account, network, remote, name, handle,
                                                 sealed, "p_ada", now)


@contextlib.asynccontextmanager
async def publishing_to_x(tmp_path: Path) -> AsyncIterator[tuple[Any, Any, Any, str]]:
    """The plug-ins on SQLite, the social plug-in dispatching to a fake X; (client,
    context, the fake, Ada's X channel)."""
    fake = FAKES["x"](client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    async with FakeNetworks([fake]) as networks:
        settings = {"networks": {"x": {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                                       "base_url": networks.base_url("x"),
                                       "timeout_s": 10.0}},
                    "dispatch": {"backoff_base": 0.05, "backoff_cap": 0.2, "sweep_s": 0.5}}
        async with social_app(tmp_path, f"sqlite://{tmp_path / 's.sqlite3'}",
                              settings=settings) as (client, context):
            channel = await insert_channel(context, "acc", "x", fake)
            yield client, context, fake, channel


def x_uploads(fake: Any, post: dict[str, Any]) -> list[tuple[str, bytes]]:
    """The media of a post on the fake X: (type, bytes) each."""
    found = []
    for media_id in post["media"]:
        media = fake.media[media_id]
        chunks = media["chunks"]
        found.append((media["type"], b"".join(chunks[i] for i in sorted(chunks))))
    return found


async def published(client: Any, post_id: str) -> dict[str, Any]:
    """The post once it left its scheduled state."""
    async def done() -> bool:
        answer = await (await client.get(f"/api/social/posts/{post_id}", headers=ADA)).json()
        return answer["state"] not in ("scheduled", "publishing")

    await until(done, timeout=30)
    return await (await client.get(f"/api/social/posts/{post_id}", headers=ADA)).json()


def test_a_bulk_row_naming_an_uploaded_image_is_scheduled_and_published_on_x(
        tmp_path: Path) -> None:
    """A bulk file names uploads by id; each meets X's rules as the composer's media do
    (no GIF beside other media, no images beside a video), and the row's image reaches X
    byte for byte."""
    files = made(tmp_path / "files")

    async def go() -> None:
        async with publishing_to_x(tmp_path) as (client, context, fake, channel):
            png = await uploaded(client, files["png"], "image/png")
            gif = await uploaded(client, files["gif"], "image/gif")
            mp4 = await uploaded(client, files["mp4"], "video/mp4")
            module = services(context)
            # the rows are due a minute ago: the bulk upload's clock runs an hour behind
            earlier = lambda: time.time() - 3600  # noqa: E731
            module.channels.clock = module.posts.clock = earlier
            csv = ("datetime,channel,text,media\n"
                   f"{at(-1)},{channel},The cover,{png['media_id']}\n"
                   f"{at(-1)},{channel},Loop and cover,{gif['media_id']} {png['media_id']}\n"
                   f"{at(-1)},{channel},Clip and cover,{mp4['media_id']} {png['media_id']}\n")
            answer = await client.post("/api/social/bulk", data=csv.encode(),
                                       headers={**ADA, "Content-Type": "text/csv"})
            assert answer.status == 200, await answer.text()
            report = await answer.json()
            assert [(e["row"], e["column"], e["code"]) for e in report["errors"]] == [
                (3, "media", "gif_alone"), (4, "media", "mixed_media")]
            [post_id] = report["post_ids"]
            post = await published(client, post_id)
            assert post["media"] == [png["media"]]
            assert post["state"] == "published", post["targets"][0]["error"]
            [tweet] = [p for p in fake.posts if p["text"] == "The cover"]
            assert x_uploads(fake, tweet) == [("image/png", files["png"].read_bytes())]

    asyncio.run(go())


def test_a_composed_post_with_an_uploaded_image_is_checked_and_published_on_x(
        tmp_path: Path) -> None:
    files = made(tmp_path / "files")

    async def go() -> None:
        async with publishing_to_x(tmp_path) as (client, context, fake, channel):
            jpeg = await uploaded(client, files["jpeg"], "image/jpeg")
            gif = await uploaded(client, files["gif"], "image/gif")
            both = {"text": "Loop", "media": [gif["media"], jpeg["media"]],
                    "targets": [{"channel_id": channel}]}
            check = await (await client.post("/api/social/compose/check", json=both,
                                              headers=ADA)).json()
            assert [p["code"] for p in check["channels"][0]["problems"]] == ["gif_alone"]

            module = services(context)
            module.posts.clock = lambda: time.time() - 3600
            answer = await client.post("/api/social/posts", headers=ADA, json={
                "text": "New photo", "media": [jpeg["media"]], "publish_at": at(-1),
                "targets": [{"channel_id": channel}]})
            assert answer.status == 201, await answer.text()
            post_id = (await answer.json())["post_id"]
            submitted = await client.post(f"/api/social/posts/{post_id}/submit", json={},
                                          headers=ADA)
            assert submitted.status == 200, await submitted.text()
            post = await published(client, post_id)
            assert post["state"] == "published", post["targets"][0]["error"]
            [tweet] = [p for p in fake.posts if p["text"] == "New photo"]
            assert x_uploads(fake, tweet) == [("image/jpeg", files["jpeg"].read_bytes())]

    asyncio.run(go())


def test_a_composed_post_carries_its_uploads_as_they_were_read(tmp_path: Path) -> None:
    """The composer's word about an upload is not taken: a 6 MB PNG described as a tiny
    JPEG is checked and stored as the PNG it is (too large for X), and another account's
    upload answers 404 as an unknown one."""
    files = made(tmp_path / "files")
    big = files["png"].parent / "noise.png"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                    "nullsrc=s=2200x2200,geq=random(1)*255:128:128", "-frames:v", "1",
                    str(big)], check=True, timeout=60)

    async def go() -> None:
        x = InTestNetwork("x")
        async with social_app(tmp_path, f"sqlite://{tmp_path / 's.sqlite3'}", x) as (
                client, context):
            channel = await insert_channel(context, "acc", "x")
            noise = await uploaded(client, big, "image/png")
            assert noise["media"]["size_bytes"] > 5 * 1000 * 1000
            told = {**noise["media"], "content_type": "image/jpeg", "size_bytes": 1000,
                    "width": 10, "height": 10}
            post = {"text": "Noise", "targets": [{"channel_id": channel, "media": [told]}]}
            check = await (await client.post("/api/social/compose/check", json=post,
                                              headers=ADA)).json()
            assert [p["code"] for p in check["channels"][0]["problems"]] == [
                "image_too_large"]
            refused = await client.post("/api/social/posts", json=post, headers=ADA)
            assert refused.status == 422
            assert [p["code"] for p in (await refused.json())["problems"]] == [
                "image_too_large"]
            # and the other way: a small PNG said to be a huge BMP is the PNG it is
            cover = await uploaded(client, files["png"], "image/png")
            said = {**cover["media"], "content_type": "image/bmp", "size_bytes": 10**9}
            draft = await (await client.post("/api/social/posts", headers=ADA, json={
                "text": "Cover", "targets": [{"channel_id": channel, "media": [said]}]})
                           ).json()
            assert draft["targets"][0]["media"] == [cover["media"]]
            edited = await (await client.patch(
                f"/api/social/posts/{draft['post_id']}", headers=ADA,
                json={"media": [said], "targets": [{"channel_id": channel}]})).json()
            assert edited["media"] == [cover["media"]]

            theirs = await uploaded(client, files["png"], "image/png", OTHER)
            for path in ("/api/social/compose/check", "/api/social/posts"):
                answer = await client.post(path, headers=ADA, json={
                    "text": "Theirs", "media": [theirs["media"]],
                    "targets": [{"channel_id": channel}]})
                assert answer.status == 404, await answer.text()
                assert theirs["media_id"] in (await answer.json())["error"]

    asyncio.run(go())


def test_an_upload_a_post_may_still_publish_is_not_deleted(tmp_path: Path,
                                                           db_url: str) -> None:
    files = made(tmp_path / "files")

    async def go() -> None:
        x = InTestNetwork("x")
        async with social_app(tmp_path, db_url, x) as (
                client, context):
            png = await uploaded(client, files["png"], "image/png")
            channel = await insert_channel(context, "acc", "x")
            draft = await (await client.post("/api/social/posts", headers=ADA, json={
                "text": "Soon", "targets": [{"channel_id": channel, "media": [png["media"]]}]}
                                             )).json()
            media_id = png["media_id"]
            refused = await client.delete(f"/api/social/media/{media_id}", headers=ADA)
            assert refused.status == 409
            assert draft["post_id"] in (await refused.json())["error"]
            assert upload_file(context.data_dir, "acc", media_id) is not None
            # expired waiting for approval, it may be edited and sent again: still in use
            await context.database().execute(
                "UPDATE social_posts SET state = 'expired' WHERE post_id = ?", draft["post_id"])
            refused = await client.delete(f"/api/social/media/{media_id}", headers=ADA)
            assert refused.status == 409, await refused.text()

            assert (await client.delete(f"/api/social/posts/{draft['post_id']}",
                                        headers=ADA)).status == 200
            gone = await client.delete(f"/api/social/media/{media_id}", headers=ADA)
            assert gone.status == 200, await gone.text()
            assert (await gone.json())["media_id"] == media_id
            assert upload_file(context.data_dir, "acc", media_id) is None
            assert (await client.get(f"/api/social/media/{media_id}", headers=ADA)
                    ).status == 404

    asyncio.run(go())


def test_a_persons_uploads_are_in_their_export_and_erased_with_them(tmp_path: Path,
                                                                    db_url: str) -> None:
    files = made(tmp_path / "files")

    async def go() -> None:
        async with social_app(tmp_path, db_url) as (
                client, context):
            own = await uploaded(client, files["png"], "image/png",
                                 who("p_ada", "p_ada", "owner"))
            for_label = await uploaded(client, files["jpeg"], "image/jpeg",
                                       who("label", "p_ada", "editor"))
            db = context.database()
            exported = await export_account(db, "p_ada")
            assert [m["media_id"] for m in exported["media_uploads"]] == [own["media_id"]]
            assert exported["media_uploads"][0]["content_type"] == "image/png"
            assert [m["media_id"] for m in exported["elsewhere"]["media_uploaded"]] == [
                for_label["media_id"]]
            json.dumps(exported)

            pz = Pseudonymiser("p_ada", ("Ada Beats",))
            await account_erased(context, "p_ada", pz.pseudonym, ["Ada Beats"])
            assert await db.fetchval("SELECT COUNT(*) FROM social_media_uploads "
                                     "WHERE account_id = 'p_ada'") == 0
            assert upload_file(context.data_dir, "p_ada", own["media_id"]) is None
            kept = await (await client.get(f"/api/social/media/{for_label['media_id']}",
                                           headers=who("label", "p_dee", "owner"))).json()
            assert kept["uploaded_by"] == pz.pseudonym

    asyncio.run(go())


def test_an_upload_is_downloaded_streamed_with_its_type_etag_and_ranges(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The composer's previews: the bytes as uploaded, with their type and length, a 304
    for a current ETag, ranges (206, 416) for seeking a video; streamed from the file by
    the core's file answer, never read whole; another account's id is an unknown one."""
    files = made(tmp_path / "files")
    streamed: list[Path] = []
    real = FileAnswer

    class Watched(real):  # type: ignore[misc, valid-type]
        def __init__(self, path: Any, *args: Any, **kwargs: Any) -> None:
            streamed.append(Path(path))
            super().__init__(path, *args, **kwargs)

    monkeypatch.setattr(router, "FileAnswer", Watched)

    async def go() -> None:
        async with social_app(tmp_path, f"sqlite://{tmp_path / 's.sqlite3'}") as (
                client, context):
            png = await uploaded(client, files["png"], "image/png")
            mp4 = await uploaded(client, files["mp4"], "video/mp4")
            for upload_, path, content_type in ((png, files["png"], "image/png"),
                                                (mp4, files["mp4"], "video/mp4")):
                data = path.read_bytes()
                url = upload_["content_url"]
                assert url == f"/api/social/media/{upload_['media_id']}/content"
                answer = await client.get(url, headers=VIEWER)  # reading is enough
                assert answer.status == 200, await answer.text()
                assert await answer.read() == data
                assert answer.headers["Content-Type"] == content_type
                assert answer.headers["Content-Length"] == str(len(data))
                assert answer.headers["Accept-Ranges"] == "bytes"
                assert answer.headers["Cache-Control"] == "private, no-cache"
                assert answer.headers["X-Content-Type-Options"] == "nosniff"
                assert answer.headers["Content-Disposition"].startswith(
                    f'inline; filename="{path.name}"')
                etag = answer.headers["ETag"]
                assert streamed[-1] == upload_file(context.data_dir, "acc",
                                                   upload_["media_id"])

                same = await client.get(url, headers={**ADA, "If-None-Match": etag})
                assert (same.status, await same.read()) == (304, b"")
                assert same.headers["ETag"] == etag
                changed = await client.get(url, headers={**ADA, "If-None-Match": '"old"'})
                assert changed.status == 200 and await changed.read() == data

                for asked, start, end in (("bytes=0-99", 0, 99), ("bytes=100-", 100,
                                                                  len(data) - 1),
                                          ("bytes=-10", len(data) - 10, len(data) - 1)):
                    part = await client.get(url, headers={**ADA, "Range": asked})
                    assert part.status == 206, asked
                    assert await part.read() == data[start:end + 1]
                    assert part.headers["Content-Range"] == f"bytes {start}-{end}/{len(data)}"
                    assert part.headers["Content-Length"] == str(end - start + 1)
                    assert part.headers["Content-Type"] == content_type
                past = await client.get(url, headers={**ADA,
                                                      "Range": f"bytes={len(data)}-"})
                assert past.status == 416
                assert past.headers["Content-Range"] == f"bytes */{len(data)}"
                head = await client.head(url, headers=ADA)
                assert head.status == 200 and head.headers["Content-Length"] == str(len(data))

            # another account's upload reads as an unknown one, for reading and thumbnails
            theirs = (await uploaded(client, files["png"], "image/png", OTHER))["media_id"]
            unknown = "md_" + "0" * 24
            for ending in ("content", "thumbnail"):
                said = []
                for media_id in (theirs, unknown):
                    got = await client.get(f"/api/social/media/{media_id}/{ending}",
                                           headers=ADA)
                    assert got.status == 404
                    said.append((await got.json())["error"].replace(media_id, "?"))
                assert said[0] == said[1]
            assert (await client.get(f"/api/social/media/{theirs}/content",
                                     headers=OTHER)).status == 200

            # a deleted upload is gone
            assert (await client.delete(f"/api/social/media/{png['media_id']}",
                                        headers=ADA)).status == 200
            assert (await client.get(png["content_url"], headers=ADA)).status == 404

    asyncio.run(go())


def test_the_accounts_upload_quota_refuses_what_would_pass_it_and_deletes_free_it(
        tmp_path: Path, db_url: str) -> None:
    files = made(tmp_path / "files")
    png = files["png"].read_bytes()
    size = len(png)
    quota = 2 * size + size // 2

    async def go() -> None:
        settings = {"media_uploads": {"quota_bytes": quota}}
        async with social_app(tmp_path, db_url, settings=settings) as (client, context):
            async def usage() -> tuple[int, int, list[str]]:
                answer = await client.get("/api/social/media", headers=VIEWER)
                assert answer.status == 200
                return (int(answer.headers["Quota-Used-Bytes"]),
                        int(answer.headers["Quota-Limit-Bytes"]),
                        [m["media_id"] for m in await answer.json()])

            assert await usage() == (0, quota, [])
            first = await uploaded(client, files["png"], "image/png")
            second = await uploaded(client, files["png"], "image/png")
            used, limit, listed = await usage()
            assert (used, limit) == (2 * size, quota)
            assert sorted(listed) == sorted(u["media_id"] for u in (first, second))
            # another account's quota is its own
            await uploaded(client, files["png"], "image/png", OTHER)

            refused = await upload(client, png, "image/png", "third.png")
            assert refused.status == 413, await refused.text()
            body = await refused.json()
            assert (body["used_bytes"], body["limit_bytes"], body["upload_bytes"]) == (
                2 * size, quota, size)
            assert "would pass the account's upload quota" in body["error"]

            async def chunked() -> AsyncIterator[bytes]:
                for start in range(0, size, 4096):
                    yield png[start:start + 4096]

            streamed = await client.post("/api/social/media", data=chunked(),
                                         headers={**ADA, "Content-Type": "image/png"})
            assert streamed.status == 413, await streamed.text()
            body = await streamed.json()
            assert (body["used_bytes"], body["limit_bytes"]) == (2 * size, quota)
            assert "past the" in body["error"] and "upload_bytes" not in body
            # nothing of either is kept: no row, no file, no part
            assert (await usage())[0] == 2 * size
            folder = upload_folder(context.data_dir, "acc")
            assert folder is not None
            assert sorted(p.name for p in folder.iterdir()) == sorted(
                f"{u['media_id']}.png" for u in (first, second))

            # deleting frees its bytes; of two uploads at once with room for one, one is
            # kept and the other refused whole
            assert (await client.delete(f"/api/social/media/{first['media_id']}",
                                        headers=ADA)).status == 200
            assert (await usage())[0] == size
            answers = await asyncio.gather(*(upload(client, png, "image/png", f"{n}.png")
                                             for n in range(2)))
            assert sorted(a.status for a in answers) == [201, 413], [
                await a.text() for a in answers]
            used, _, kept = await usage()
            assert used == 2 * size <= quota and len(kept) == 2
            assert sorted(p.name for p in folder.iterdir()) == sorted(
                f"{media_id}.png" for media_id in kept)

    asyncio.run(go())


def test_an_images_thumbnail_is_a_small_upright_webp(tmp_path: Path) -> None:
    files = made(tmp_path / "files")
    # a phone photo: stored 400x200, its EXIF orientation 6 shows it turned upright
    phone = tmp_path / "files" / "phone.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (400, 200), (200, 30, 30)).save(phone, "JPEG", exif=exif.tobytes())

    async def go() -> None:
        async with social_app(tmp_path, f"sqlite://{tmp_path / 's.sqlite3'}") as (
                client, context):
            png = await uploaded(client, files["png"], "image/png")
            assert png["thumbnail_url"] == f"/api/social/media/{png['media_id']}/thumbnail"
            answer = await client.get(png["thumbnail_url"], headers=VIEWER)
            assert answer.status == 200, await answer.text()
            assert answer.headers["Content-Type"] == "image/webp"
            data = await answer.read()
            with Image.open(io.BytesIO(data)) as shown:
                assert (shown.format, shown.size) == ("WEBP", (320, 213))
            kept = uploads.thumbnail_file(context.data_dir, "acc", png["media_id"])
            assert kept is not None and kept.read_bytes() == data
            again = await client.get(png["thumbnail_url"], headers={
                **ADA, "If-None-Match": answer.headers["ETag"]})
            assert again.status == 304
            part = await client.get(png["thumbnail_url"], headers={**ADA, "Range": "bytes=0-9"})
            assert (part.status, await part.read()) == (206, data[:10])

            turned = await uploaded(client, phone, "image/jpeg")
            answer = await client.get(turned["thumbnail_url"], headers=ADA)
            with Image.open(io.BytesIO(await answer.read())) as shown:
                assert shown.size == (160, 320)

            mp4 = await uploaded(client, files["mp4"], "video/mp4")

            # the thumbnail goes with its upload, and takes none of the quota
            listed = await client.get("/api/social/media", headers=ADA)
            assert int(listed.headers["Quota-Used-Bytes"]) == sum(
                u["media"]["size_bytes"] for u in (png, turned, mp4))
            assert (await client.delete(f"/api/social/media/{png['media_id']}",
                                        headers=ADA)).status == 200
            assert not kept.exists()

    asyncio.run(go())
