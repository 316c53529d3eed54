"""Animated WebP uploads: read and decoded whole by Pillow, kept as images with their
length, thumbnailed by their first frame, and judged by each network's rules as an
animated GIF is (alone on X, refused where a network publishes still images only)."""

from __future__ import annotations

from business.social.networks.base import MediaItem
from business.social.validation import errors, validate


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
