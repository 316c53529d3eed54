"""Video thumbnails: an uploaded MP4's or MOV's poster frame taken by ffmpeg (1 s in or a
tenth of its length, whichever is less, else its first frame), upright, at most 320
pixels a side, kept as a WebP beside the upload until it is deleted; a video none of
whose frames decodes answers 422."""

from __future__ import annotations

import asyncio
import io
import subprocess
from pathlib import Path

import pytest
from PIL import Image
from social_helpers import social_app
from test_social_uploads import ADA, VIEWER, uploaded

from business.social import uploads
from business.social.uploads import poster_time, thumbnail_file, upload_folder

pytestmark = pytest.mark.timeout(120)


def ffmpeg(path: Path, *args: str) -> Path:
    """``path`` made by ffmpeg from ``args``."""
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args, str(path)], check=True, timeout=60)
    return path


def videos(folder: Path) -> dict[str, Path]:
    """A 2 s MP4 (640x360) red for its first 0.1 s and green after; a phone MOV filmed
    upright (stored 320x240, turned 90 degrees); an MP4 whose picture lasts 0.12 s of
    its 5 s (red), the rest sound only."""
    folder.mkdir(parents=True, exist_ok=True)
    turns = "geq=r='if(lt(T,0.1),255,0)':g='if(lt(T,0.1),0,255)':b=0"
    h264 = ("-c:v", "libx264", "-pix_fmt", "yuv420p")
    clip = ffmpeg(folder / "clip.mp4", "-f", "lavfi", "-i",
                  f"color=black:s=640x360:d=2:r=25,{turns}", *h264)
    stored = ffmpeg(folder / "stored.mov", "-f", "lavfi", "-i", "testsrc=s=320x240:d=1",
                    *h264)
    phone = ffmpeg(folder / "phone.mov", "-i", str(stored), "-c", "copy",
                   "-metadata:s:v:0", "rotate=90")
    blip = ffmpeg(folder / "blip.mp4", "-f", "lavfi", "-i", "color=red:s=160x120:d=0.12:r=25",
                  "-f", "lavfi", "-i", "sine=d=5", *h264, "-c:a", "aac")
    return {"clip": clip, "phone": phone, "blip": blip}


def colour(data: bytes) -> tuple[int, int, int]:
    """The colour in the middle of a thumbnail."""
    with Image.open(io.BytesIO(data)) as shown:
        return shown.convert("RGB").getpixel((shown.width // 2, shown.height // 2))


def test_the_poster_frame_is_a_tenth_in_at_most_one_second() -> None:
    assert (poster_time(2.0), poster_time(30.0), poster_time(0.4)) == (0.2, 1.0, 0.04)
    assert poster_time(None) == poster_time(0.0) == 0.0


def test_a_videos_thumbnail_is_its_upright_poster_frame_kept_until_it_is_deleted(
        tmp_path: Path) -> None:
    files = videos(tmp_path / "files")

    async def go() -> None:
        async with social_app(tmp_path, f"sqlite://{tmp_path / 's.sqlite3'}") as (
                client, context):
            clip = await uploaded(client, files["clip"], "video/mp4")
            url = f"/api/social/media/{clip['media_id']}/thumbnail"
            assert clip["thumbnail_url"] == url
            answer = await client.get(url, headers=VIEWER)
            assert answer.status == 200, await answer.text()
            assert answer.headers["Content-Type"] == "image/webp"
            assert answer.headers["Cache-Control"] == "private, no-cache"
            assert answer.headers["Content-Disposition"].startswith(
                'inline; filename="clip.webp"')
            data = await answer.read()
            with Image.open(io.BytesIO(data)) as shown:
                assert (shown.format, shown.size) == ("WEBP", (320, 180))
            red, green, _ = colour(data)
            assert green > 200 and red < 60  # taken 0.2 s in, not the red first frame
            kept = thumbnail_file(context.data_dir, "acc", clip["media_id"])
            assert kept is not None and kept.read_bytes() == data
            again = await client.get(url, headers={**ADA,
                                                   "If-None-Match": answer.headers["ETag"]})
            assert again.status == 304
            part = await client.get(url, headers={**ADA, "Range": "bytes=0-9"})
            assert (part.status, await part.read()) == (206, data[:10])

            phone = await uploaded(client, files["phone"], "video/quicktime")
            assert (phone["media"]["width"], phone["media"]["height"]) == (240, 320)
            shown = await (await client.get(phone["thumbnail_url"], headers=ADA)).read()
            with Image.open(io.BytesIO(shown)) as upright:
                assert upright.size == (240, 320)

            # the picture ends before 0.5 s of the 5 s: the first frame is taken instead
            blip = await uploaded(client, files["blip"], "video/mp4")
            assert blip["media"]["duration_s"] >= 4.9
            answer = await client.get(blip["thumbnail_url"], headers=ADA)
            assert answer.status == 200, await answer.text()
            red, green, _ = colour(await answer.read())
            assert red > 200 and green < 60

            listed = await (await client.get("/api/social/media", headers=ADA)).json()
            assert {m["thumbnail_url"] for m in listed} == {
                u["thumbnail_url"] for u in (clip, phone, blip)}
            assert (await client.delete(f"/api/social/media/{clip['media_id']}",
                                        headers=ADA)).status == 200
            assert not kept.exists()

    asyncio.run(go())


def test_a_video_none_of_whose_frames_decodes_has_no_thumbnail_and_answers_422(
        tmp_path: Path) -> None:
    """Its container reads (the upload is taken) but its pictures are zeroes."""
    clip = ffmpeg(tmp_path / "clip.mp4", "-f", "lavfi", "-i", "testsrc=s=320x240:d=1",
                  "-c:v", "libx264", "-pix_fmt", "yuv420p", "-movflags", "+faststart")
    data = clip.read_bytes()
    at = data.index(b"mdat") + 4
    dead = tmp_path / "dead.mp4"
    dead.write_bytes(data[:at] + bytes(len(data) - at))

    async def go() -> None:
        async with social_app(tmp_path, f"sqlite://{tmp_path / 's.sqlite3'}") as (
                client, context):
            upload = await uploaded(client, dead, "video/mp4")
            answer = await client.get(upload["thumbnail_url"], headers=ADA)
            assert answer.status == 422, await answer.text()
            said = (await answer.json())["error"]
            assert said.startswith("no frame of 'dead.mp4' could be decoded for a thumbnail")
            assert said.endswith("the video is damaged; its content is still served")
            assert str(context.data_dir) not in said
            assert (await client.get(upload["content_url"], headers=ADA)).status == 200
            folder = upload_folder(context.data_dir, "acc")
            assert folder is not None
            assert [p.name for p in folder.iterdir()] == [f"{upload['media_id']}.mp4"]

    asyncio.run(go())


def test_a_poster_frame_past_its_time_limit_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clip = ffmpeg(tmp_path / "clip.mp4", "-f", "lavfi", "-i", "testsrc=s=320x240:d=1",
                  "-c:v", "libx264", "-pix_fmt", "yuv420p")
    monkeypatch.setattr(uploads, "POSTER_TIMEOUT_S", 0.0)

    async def go() -> None:
        async with social_app(tmp_path, f"sqlite://{tmp_path / 's.sqlite3'}") as (
                client, _context):
            upload = await uploaded(client, clip, "video/mp4")
            answer = await client.get(upload["thumbnail_url"], headers=ADA)
            assert answer.status == 422, await answer.text()
            assert "was decoded within 0 s" in (await answer.json())["error"]

    asyncio.run(go())
