"""Animated WebP uploads: read and decoded whole by Pillow, kept as images with their
length, thumbnailed by their first frame, and judged by each network's rules as an
animated GIF is (alone on X, refused where a network publishes still images only)."""

from __future__ import annotations

import asyncio
import io
import subprocess
from pathlib import Path

import pytest
from PIL import Image
from social_helpers import InTestNetwork, social_app
from test_social_uploads import ADA, insert_channel, upload, uploaded

from business.social import uploads
from business.social.networks.base import MediaItem
from business.social.uploads import upload_folder
from business.social.validation import errors, validate

pytestmark = pytest.mark.timeout(120)
COLOURS = ((220, 20, 20), (20, 200, 20), (20, 20, 220))


def animation(path: Path, size: tuple[int, int] = (96, 64),
              durations: tuple[int, ...] = (100, 200, 300)) -> Path:
    """An animated WebP made by Pillow: a red, a green and a blue frame."""
    frames = [Image.new("RGB", size, COLOURS[i % 3]) for i in range(len(durations))]
    frames[0].save(path, "WEBP", save_all=True, append_images=frames[1:],
                   duration=list(durations), loop=0, lossless=True)
    return path


def image(content_type: str = "image/jpeg", duration_s: float | None = None) -> MediaItem:
    """An image as a composed post carries it; a duration makes it an animation."""
    return MediaItem("image", content_type, 500_000, f"/media/a.{content_type[6:]}", duration_s,
                     480, 480)


def codes(network: str, *media: MediaItem) -> list[str]:
    return [p.code for p in errors(validate(network, "Loop", media))]


def test_an_animated_webp_meets_the_rules_an_animated_gif_meets() -> None:
    loop, still = image("image/webp", 1.2), image("image/webp")
    gif, photo = image("image/gif"), image()
    # X takes WebP and GIF, each animation alone
    assert codes("x", loop) == codes("x", gif) == codes("x", still, photo) == []
    assert codes("x", loop, photo) == codes("x", gif, photo) == ["gif_alone"]
    [alone] = errors(validate("x", "Loop", [loop, photo]))
    assert "remove the other media or the animation" in alone.message
    # Bluesky takes WebP and GIF images: the animation too
    assert codes("bluesky", loop, photo) == codes("bluesky", gif, photo) == []
    # TikTok takes WebP photos but no GIF: still images only
    assert codes("tiktok", still) == []
    assert codes("tiktok", loop) == ["animated_image"]
    [refused] = errors(validate("tiktok", "Loop", [loop]))
    assert refused.field == "media[0]"
    assert refused.message == ("TikTok publishes still images only; a.webp is an animated "
                               "WEBP: attach a still image, or the animation as a video.")
    # a network that takes no WebP says so, as for a still one
    for network in ("instagram", "facebook", "linkedin", "threads"):
        assert codes(network, loop) == codes(network, still) == ["media_type"], network


def test_an_animated_webp_is_taken_decoded_whole_and_thumbnailed_by_its_first_frame(
        tmp_path: Path) -> None:
    loop = animation(tmp_path / "loop.webp")
    sticker = tmp_path / "sticker.webp"  # as ffmpeg's libwebp_anim writes one
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                    "testsrc=s=64x64:d=0.5:r=10", "-loop", "0", str(sticker)], check=True,
                   timeout=60)

    async def go() -> None:
        async with social_app(tmp_path, f"sqlite://{tmp_path / 's.sqlite3'}",
                              InTestNetwork("x"), InTestNetwork("tiktok")) as (
                client, context):
            taken = await uploaded(client, loop, "image/webp")
            assert taken["media"] == {
                "asset_id": taken["media_id"], "kind": "image", "content_type": "image/webp",
                "size_bytes": loop.stat().st_size, "duration_s": 0.6, "width": 96,
                "height": 64}
            other = (await uploaded(client, sticker, "image/webp"))["media"]
            assert (other["width"], other["height"], other["duration_s"]) == (64, 64, 0.5)

            answer = await client.get(taken["thumbnail_url"], headers=ADA)
            assert answer.status == 200, await answer.text()
            with Image.open(io.BytesIO(await answer.read())) as shown:
                assert (shown.format, shown.size, getattr(shown, "n_frames", 1)) == (
                    "WEBP", (96, 64), 1)
                red, green, blue = shown.convert("RGB").getpixel((48, 32))
                assert red > 180 and green < 60 and blue < 60  # the first frame

            # the rules see the animation as it was read: alone on X, not on TikTok
            still = tmp_path / "still.webp"
            Image.new("RGB", (96, 64), COLOURS[0]).save(still, "WEBP")
            photo = await uploaded(client, still, "image/webp")
            assert photo["media"]["duration_s"] is None
            x = await insert_channel(context, "acc", "x")
            tiktok = await insert_channel(context, "acc", "tiktok")
            said = {"text": "Loop", "media": [taken["media"], photo["media"]],
                    "targets": [{"channel_id": x}, {"channel_id": tiktok,
                                                    "media": [taken["media"]]}]}
            check = await (await client.post("/api/social/compose/check", json=said,
                                              headers=ADA)).json()
            found = {c["channel_id"]: [p["code"] for p in c["problems"]]
                     for c in check["channels"]}
            assert found == {x: ["gif_alone"], tiktok: ["animated_image"]}

    asyncio.run(go())


def test_a_damaged_or_too_large_animated_webp_is_refused_and_nothing_is_kept(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = animation(tmp_path / "loop.webp").read_bytes()
    start = data.rfind(b"VP8L") + 8  # the last frame's bitstream, its signature spoilt
    damaged = data[:start] + b"\0" + data[start + 1:]

    async def go() -> None:
        async with social_app(tmp_path, f"sqlite://{tmp_path / 's.sqlite3'}") as (
                client, context):
            async def refused(body: bytes, status: int, says: str) -> None:
                answer = await upload(client, body, "image/webp", "loop.webp")
                assert answer.status == status, await answer.text()
                assert says in (await answer.json())["error"]

            await refused(data[:len(data) // 2], 422,
                          "'loop.webp' is a damaged or truncated animated WebP")
            await refused(damaged, 422, "damaged or truncated")
            # a decompression bomb: its frames' pixels together, and one frame's
            monkeypatch.setattr(uploads, "MAX_ANIMATION_PIXELS", 3 * 96 * 64 - 1)
            await refused(data, 422, "has 3 frames of 96x64, over 18,431 pixels in all")
            monkeypatch.setattr(uploads, "MAX_PIXELS", 96 * 64 - 1)
            await refused(data, 422, "is 96x64, over 6,143 pixels")
            folder = upload_folder(context.data_dir, "acc")
            assert folder is not None and list(folder.iterdir()) == []

    asyncio.run(go())
