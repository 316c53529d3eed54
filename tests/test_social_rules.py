"""Per-network publishing rules and post validation (business/social/networks/rules.py)."""

from __future__ import annotations

import pytest

from business.social.networks.base import MediaItem
from business.social.networks.rules import MB, RULES, NetworkRules
from business.social.textlength import graphemes, hashtags, mentions, x_length
from business.social.validation import WARNING, errors, validate

NETWORKS = ("x", "instagram", "facebook", "tiktok", "youtube", "linkedin", "threads", "bluesky")
FAMILY = "\U0001F468\u200d\U0001F469\u200d\U0001F467\u200d\U0001F466"  # man, woman, girl, boy


def video(**changes: object) -> MediaItem:
    base = {"kind": "video", "content_type": "video/mp4", "size_bytes": 2 * MB,
            "path": "/media/clip.mp4", "duration_s": 10.0, "width": 1080, "height": 1920}
    return MediaItem(**{**base, **changes})  # type: ignore[arg-type]


def image(**changes: object) -> MediaItem:
    base = {"kind": "image", "content_type": "image/jpeg", "size_bytes": 500_000,
            "path": "/media/cover.jpg", "width": 1080, "height": 1080}
    return MediaItem(**{**base, **changes})  # type: ignore[arg-type]


def codes(problems: list) -> list[str]:
    return [p.code for p in errors(problems)]


def post(network: str, text: str, **kwargs: object) -> list:
    """Validate ``text`` on ``network`` with media the network needs (a valid video)."""
    rules = RULES[network]
    media = kwargs.pop("media", [video()] if rules.media_required else [])
    return validate(network, text, media, title="Release day", **kwargs)  # type: ignore[arg-type]


def test_every_network_has_rules_keyed_by_its_name() -> None:
    assert sorted(RULES) == sorted(NETWORKS)
    for name, rules in RULES.items():
        assert isinstance(rules, NetworkRules) and rules.network == name and rules.display_name


@pytest.mark.parametrize("network", NETWORKS)
def test_text_of_exactly_the_maximum_passes_and_one_more_is_refused(network: str) -> None:
    limit = RULES[network].max_text
    assert codes(post(network, "a" * limit)) == []
    over = errors(post(network, "a" * (limit + 1)))
    assert [p.code for p in over] == ["text_too_long"]
    assert over[0].field == "text"
    assert f"{limit + 1:,}" in over[0].message and "shorten it by 1." in over[0].message


def test_x_message_says_how_urls_count_and_by_how_much_to_shorten() -> None:
    text = "a" * 277 + " https://example.com/a-very-long-path/that/counts/as/23"
    assert x_length(text).weighted == 301
    (problem,) = errors(validate("x", text, []))
    assert problem.message == ("X allows 280 characters; this text counts 301 (URLs count 23):"
                               " shorten it by 21.")


@pytest.mark.parametrize(("unit", "weight"), [
    ("https://example.com/" + "x" * 200, 23),   # any URL counts 23
    ("example.com", 23),                        # a bare domain is a URL too
    ("\U0001F600", 2),                          # an emoji counts 2
    (FAMILY, 2),                                # a joined emoji sequence is one emoji
    ("\U0001F1EF\U0001F1F5", 2),                # a flag
    ("\U0001F44D\U0001F3FD", 2),                # thumbs up with a skin tone
    ("日", 2),                                  # CJK counts 2
    ("é", 1),                                   # Latin-1 range counts 1
    ("e\u0301", 1),                             # NFC first: e + combining acute is é
])
def test_x_weighs_urls_emoji_and_cjk_by_the_published_rules(unit: str, weight: int) -> None:
    assert x_length(unit).weighted == weight
    padded = "a" * (279 - weight) + " " + unit  # exactly 280
    assert codes(validate("x", padded, [])) == []
    assert codes(validate("x", "b" + padded, [])) == ["text_too_long"]


def test_x_counts_cjk_and_emoji_at_the_boundary() -> None:
    assert codes(validate("x", "日" * 140, [])) == []
    assert codes(validate("x", "日" * 141, [])) == ["text_too_long"]
    assert codes(validate("x", "\U0001F600" * 140, [])) == []
    over = errors(validate("x", "\U0001F600" * 141, []))
    assert "emoji and CJK characters count 2" in over[0].message


def test_text_that_only_looks_like_a_url_counts_its_characters() -> None:
    for text in ("e.g. this", "file.txt", "user@example.com", "http://localhost/x"):
        assert x_length(text).weighted == len(text), text
    assert x_length("(see https://en.wikipedia.org/wiki/A_(b))").urls == 1


def test_bluesky_counts_graphemes_a_family_emoji_is_one() -> None:
    assert graphemes(FAMILY) == 1
    assert graphemes("e\u0301") == 1 and graphemes("a\r\nb") == 3
    assert codes(validate("bluesky", "a" * 299 + FAMILY, [])) == []
    assert codes(validate("bluesky", "a" * 300 + FAMILY, [])) == ["text_too_long"]


def test_bluesky_also_limits_the_text_to_3000_bytes() -> None:
    problems = validate("bluesky", FAMILY * 300, [])  # 300 graphemes, 7,500 bytes
    assert codes(problems) == ["text_too_many_bytes"]


def test_threads_counts_an_emoji_as_its_utf8_bytes() -> None:
    assert codes(validate("threads", "a" * 496 + "\U0001F44D", [])) == []
    assert codes(validate("threads", "a" * 497 + "\U0001F44D", [])) == ["text_too_long"]


def test_tiktok_counts_utf16_units() -> None:
    assert codes(post("tiktok", "a" * 2198 + "\U0001F600")) == []
    assert codes(post("tiktok", "a" * 2199 + "\U0001F600")) == ["text_too_long"]


def test_youtube_description_bytes_title_length_and_angle_brackets() -> None:
    assert codes(post("youtube", "é" * 2500)) == []
    assert codes(post("youtube", "é" * 2501)) == ["text_too_long"]
    assert codes(validate("youtube", "x", [video()], title="T" * 100)) == []
    assert codes(validate("youtube", "x", [video()], title="T" * 101)) == ["title_too_long"]
    derived = errors(validate("youtube", "T" * 101 + "\nmore", [video()]))
    assert [p.code for p in derived] == ["title_too_long"]
    assert "first line" in derived[0].message
    assert codes(validate("youtube", "a <b>", [video()], title="ok")) == [
        "forbidden_characters"]


@pytest.mark.parametrize(("network", "limit"), [("instagram", 30), ("youtube", 60)])
def test_hashtag_limits(network: str, limit: int) -> None:
    tags = " ".join(f"#tag{n}" for n in range(limit))
    assert codes(post(network, tags)) == []
    assert codes(post(network, tags + " #one_more")) == ["too_many_hashtags"]


def test_instagram_mention_limit() -> None:
    names = " ".join(f"@artist{n}" for n in range(20))
    assert codes(post("instagram", names)) == []
    assert codes(post("instagram", names + " @more")) == ["too_many_mentions"]


def test_tags_in_urls_and_emails_do_not_count() -> None:
    assert hashtags("#one https://example.com/#frag #1 b#c #été") == ["one", "été"]
    assert mentions("@bob mail a@b.com @alice.bsky.social.") == ["bob", "alice.bsky.social"]


def test_instagram_links_are_a_warning_not_an_error() -> None:
    for problems in (post("instagram", "new single https://example.com/listen"),
                     post("instagram", "new single", link="https://example.com/listen")):
        warnings = [p for p in problems if p.code == "link_not_clickable"]
        assert warnings and warnings[0].severity == WARNING
        assert errors(problems) == []
    assert not [p for p in post("x", "https://example.com") if p.severity == WARNING]


def test_a_link_beside_an_x_post_is_counted_in_the_text() -> None:
    assert codes(validate("x", "a" * 256, [], link="https://example.com/x")) == []
    over = errors(validate("x", "a" * 257, [], link="https://example.com/x"))
    assert [p.code for p in over] == ["text_too_long"]
    assert "with the link added at the end" in over[0].message
    assert codes(validate("facebook", "a" * 63206, [], link="https://example.com")) == []
    assert codes(validate("x", "hi", [], link="not a url")) == ["invalid_link"]


def test_media_required_where_the_network_publishes_no_text_alone() -> None:
    for network in ("instagram", "tiktok", "youtube"):
        assert codes(validate(network, "hello", [], title="t")) == ["media_required"]
    assert codes(validate("x", "hello", [])) == []
    assert codes(validate("x", "", [])) == ["empty"]
    assert codes(validate("x", "", [image()])) == []


def test_media_type_size_and_shape_checks() -> None:
    assert codes(validate("instagram", "", [image(content_type="image/png")])) == [
        "media_type"]
    assert codes(validate("instagram", "", [image(size_bytes=8 * MB)])) == []
    assert codes(validate("instagram", "", [image(size_bytes=8 * MB + 1)])) == [
        "image_too_large"]
    assert codes(validate("instagram", "", [image(width=1080, height=1350)])) == []  # 4:5
    assert codes(validate("instagram", "", [image(width=1080, height=1500)])) == [
        "aspect_ratio"]
    assert codes(validate("bluesky", "", [image(size_bytes=1_000_001)])) == [
        "image_too_large"]
    assert codes(validate("linkedin", "", [image(width=7000, height=6000)])) == [
        "image_too_many_pixels"]
    assert codes(validate("youtube", "t", [image()])) == ["media_type"]


def test_video_duration_and_aspect_limits_on_x() -> None:
    assert codes(validate("x", "", [video(duration_s=140.0)])) == []
    assert codes(validate("x", "", [video(duration_s=140.5)])) == ["video_too_long"]
    assert codes(validate("x", "", [video(duration_s=0.4)])) == ["video_too_short"]
    assert codes(validate("x", "", [video(width=1000, height=3500)])) == ["aspect_ratio"]
    assert codes(validate("x", "", [video(size_bytes=512 * MB + 1)])) == ["video_too_large"]


def test_media_count_mixing_gif_and_audio() -> None:
    assert codes(validate("x", "", [image()] * 4)) == []
    assert codes(validate("x", "", [image()] * 5)) == ["too_many_media"]
    assert codes(validate("x", "", [image(), video()])) == ["mixed_media"]
    assert codes(validate("instagram", "", [image(), video()])) == []  # a carousel
    gif = image(content_type="image/gif", size_bytes=10 * MB)
    assert codes(validate("x", "", [gif])) == []  # GIFs may be 15 MB on X
    assert codes(validate("x", "", [gif, image()])) == ["gif_alone"]
    audio = MediaItem("audio", "audio/wav", 1000, "/bounce.wav")
    (problem,) = errors(validate("x", "new track", [audio]))
    assert problem.code == "audio_not_supported" and "video" in problem.message


def test_first_comment_support_and_length() -> None:
    assert codes(post("tiktok", "hi", first_comment="link in bio")) == [
        "first_comment_unsupported"]
    assert codes(validate("x", "hi", [], first_comment="a" * 280)) == []
    over = errors(validate("x", "hi", [], first_comment="a" * 281))
    assert [(p.field, p.code) for p in over] == [("first_comment", "text_too_long")]


def test_unknown_network_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown network 'myspace'"):
        validate("myspace", "hi", [])
