"""Validate one post variant against a network's rules; every problem says what to change.

``validate`` returns a list of :class:`Problem`; a problem of severity ``"warning"`` (for
example a link in an Instagram caption, which is not clickable) is shown but does not
block. The post is valid when no problem has severity ``"error"`` (see :func:`errors`).

An animated image is a GIF or an image with a duration (an animated WebP upload): where
a network wants an animated GIF alone (X) it wants any animation alone, and a network
that takes no GIF publishes still images only, so it refuses an animated WebP
(``animated_image``) even where it takes WebP (TikTok's photo posts).

On a network without link attachments (X, Instagram, TikTok, YouTube) a ``link`` that the
text does not already hold goes at the end of the text after a line break, and is
counted there.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from business.social.networks.base import MediaItem, text_with_link
from business.social.networks.rules import GIF, MB, RULES, NetworkRules
from business.social.textlength import (
    UNITS,
    find_urls,
    hashtags,
    mentions,
    text_length,
    x_length,
)

ERROR, WARNING = "error", "warning"


@dataclass(frozen=True)
class Problem:
    """What is wrong with one field of a post, and how to fix it."""

    field: str          # "text", "title", "link", "first_comment", "media", "media[2]"
    code: str           # stable, e.g. "text_too_long", "media_type", "link_not_clickable"
    message: str        # says what to change
    severity: str = ERROR


def errors(problems: Iterable[Problem]) -> list[Problem]:
    """The problems that block publishing (severity ``"error"``)."""
    return [p for p in problems if p.severity == ERROR]


def rules_for(network: str) -> NetworkRules:
    """The rules of ``network``; a clear ``ValueError`` for a network we do not know."""
    try:
        return RULES[network]
    except KeyError:
        raise ValueError(f"unknown network {network!r}: use one of {sorted(RULES)}") from None


def validate(network: str, text: str, media: Sequence[MediaItem] = (),
             link: str | None = None, first_comment: str | None = None, *,
             title: str | None = None) -> list[Problem]:
    """Every problem of one post variant on ``network`` (empty: nothing to change).

    ``title`` is YouTube's video title; without one, the text's first line is the title.
    """
    rules = rules_for(network)
    problems: list[Problem] = []
    text = text or ""
    link = link.strip() if link else None
    body = text if rules.link_attachment else text_with_link(text, link)
    if not body.strip() and not media:
        problems.append(Problem("text", "empty", "The post is empty: write some text or "
                                "attach an image or video."))
    problems += _text_problems(rules, body, "text", "this text",
                               link_added=body is not text)
    if rules.max_title is not None:
        problems += _title_problems(rules, text if title is None else title, title is None)
    problems += _tag_problems(rules, body)
    problems += _link_problems(rules, text, link)
    problems += _media_problems(rules, media)
    if first_comment is not None and first_comment.strip():
        if not rules.first_comment:
            problems.append(Problem(
                "first_comment", "first_comment_unsupported",
                f"{rules.name} does not let apps post a first comment: remove it, or move "
                f"its text into the post."))
        else:
            problems += _text_problems(rules, first_comment, "first_comment",
                                       "the first comment")
    return problems


def measure(network: str, text: str) -> tuple[int, list[str]]:
    """How long ``text`` is as ``network`` counts it (X: weighted, URLs 23), and notes on
    how it was counted."""
    rules = rules_for(network)
    if rules.text_counting != "weighted":
        return text_length(text, rules.text_counting), []
    measured = x_length(text)
    notes = []
    if measured.urls:
        notes.append("URLs count 23")
    if measured.weighted - 23 * measured.urls != len(text) - sum(
            e - s for s, e in find_urls(text)):
        notes.append("emoji and CJK characters count 2")
    return measured.weighted, notes


def _text_problems(rules: NetworkRules, text: str, field: str, what: str,
                   link_added: bool = False) -> list[Problem]:
    problems = []
    count, notes = measure(rules.network, text)
    if link_added:
        notes.append("with the link added at the end")
    if count > rules.max_text:
        detail = f" ({'; '.join(notes)})" if notes else ""
        unit = UNITS[rules.text_counting]
        problems.append(Problem(
            field, "text_too_long",
            f"{rules.name} allows {rules.max_text:,} {unit}; {what} counts {count:,}{detail}: "
            f"shorten it by {count - rules.max_text:,}."))
    if rules.max_text_bytes is not None:
        size = len(text.encode())
        if size > rules.max_text_bytes:
            problems.append(Problem(
                field, "text_too_many_bytes",
                f"{rules.name} allows {rules.max_text_bytes:,} bytes of UTF-8; {what} takes "
                f"{size:,}: shorten it by {size - rules.max_text_bytes:,} bytes."))
    if rules.no_angle_brackets and ("<" in text or ">" in text):
        problems.append(Problem(field, "forbidden_characters",
                                f"{rules.name} refuses '<' and '>' in {what}: remove them or "
                                f"write them another way (e.g. ‹ ›)."))
    return problems


def _title_problems(rules: NetworkRules, title: str, derived: bool) -> list[Problem]:
    assert rules.max_title is not None
    line = title.strip().splitlines()[0].strip() if title.strip() else ""
    source = " (the title is the text's first line unless you give one)" if derived else ""
    if not line:
        return [Problem("title", "title_missing",
                        f"{rules.name} needs a title: give one{source}.")]
    problems = []
    if len(line) > rules.max_title:
        problems.append(Problem(
            "title", "title_too_long",
            f"{rules.name} allows {rules.max_title} characters in a title; this title counts "
            f"{len(line)}: shorten it by {len(line) - rules.max_title}{source}."))
    if rules.no_angle_brackets and ("<" in line or ">" in line):
        problems.append(Problem("title", "forbidden_characters",
                                f"{rules.name} refuses '<' and '>' in a title: remove them."))
    return problems


def _tag_problems(rules: NetworkRules, text: str) -> list[Problem]:
    problems = []
    for limit, found, what, code in (
            (rules.max_hashtags, hashtags, "hashtags", "too_many_hashtags"),
            (rules.max_mentions, mentions, "mentions", "too_many_mentions")):
        if limit is None:
            continue
        n = len(found(text))
        if n > limit:
            problems.append(Problem("text", code,
                                    f"{rules.name} allows {limit} {what} in a post; this text "
                                    f"has {n}: remove {n - limit}."))
    return problems


def _link_problems(rules: NetworkRules, text: str, link: str | None) -> list[Problem]:
    problems = []
    if link is not None:
        parts = urlsplit(link)
        if parts.scheme not in ("http", "https") or "." not in parts.netloc:
            problems.append(Problem("link", "invalid_link",
                                    f"The link {link!r} is not a web address: give a full "
                                    f"URL that starts with https://."))
    if not rules.links_clickable and (link or find_urls(text)):
        problems.append(Problem(
            "link" if link else "text", "link_not_clickable",
            f"{rules.name} does not make links in posts clickable: put the link in your "
            f"profile (bio) and point to it, or remove it.", WARNING))
    return problems


def _name(item: MediaItem) -> str:
    return item.path.rstrip("/").rsplit("/", 1)[-1] or item.path


def _size(n: float) -> str:
    if n >= 1024 * MB:
        return f"{n / (1024 * MB):.3g} GB"
    if n >= MB or n == 0:
        return f"{n / MB:.3g} MB"
    return f"{n / 1024:.3g} KB"


def _seconds(s: float) -> str:
    if s >= 7200:
        return f"{s / 3600:g} hours"
    if s >= 120:
        return f"{s / 60:g} minutes"
    return f"{s:g} seconds"


def _ratio(r: float) -> str:
    return f"{round(r, 2):g}:1" if r >= 1 else f"1:{round(1 / r, 2):g}"


def _types(types: frozenset[str]) -> str:
    return ", ".join(sorted(t.split("/")[1].upper() for t in types))


def animated(item: MediaItem) -> bool:
    """Whether ``item`` is an animated image: a GIF (judged animated by its type), or
    another image with a duration (an animated WebP, as its upload reads it)."""
    return item.kind == "image" and (item.content_type == GIF or item.duration_s is not None)


def _media_problems(rules: NetworkRules, media: Sequence[MediaItem]) -> list[Problem]:
    problems: list[Problem] = []
    images = [m for m in media if m.kind == "image"]
    videos = [m for m in media if m.kind == "video"]
    if rules.media_required and not media:
        what = "a video" if not rules.image_types else "at least one image or video"
        problems.append(Problem("media", "media_required",
                                f"{rules.name} needs {what}: attach one."))
    if len(media) > rules.max_media:
        problems.append(Problem(
            "media", "too_many_media",
            f"{rules.name} allows {rules.max_media} media in a post; this post has "
            f"{len(media)}: remove {len(media) - rules.max_media}."))
    if len(videos) > rules.max_videos:
        problems.append(Problem(
            "media", "too_many_videos",
            f"{rules.name} allows {rules.max_videos} video(s) in a post; this post has "
            f"{len(videos)}: remove {len(videos) - rules.max_videos}."))
    if images and videos and not rules.mixed_media:
        problems.append(Problem("media", "mixed_media",
                                f"{rules.name} does not mix images and videos in one post: "
                                f"keep the images or the video, not both."))
    animations = [m for m in images if animated(m)]
    if rules.gif_alone and animations and len(media) > 1:
        what = "GIF" if all(m.content_type == GIF for m in animations) else "animation"
        problems.append(Problem("media", "gif_alone",
                                f"{rules.name} takes an animated GIF or WebP only on its own: "
                                f"remove the other media or the {what}."))
    for index, item in enumerate(media):
        problems += _item_problems(rules, f"media[{index}]", item)
    return problems


def _item_problems(rules: NetworkRules, field: str, item: MediaItem) -> list[Problem]:
    name = _name(item)
    if item.kind == "audio":
        return [Problem(field, "audio_not_supported",
                        f"{rules.name} does not publish audio files ({name}): render a video "
                        f"of it (a waveform video, say) and attach that.")]
    if item.kind not in ("image", "video"):
        return [Problem(field, "media_type",
                        f"{name} is {item.kind!r}, neither an image nor a video: attach an "
                        f"image or a video.")]
    problems = []
    image = item.kind == "image"
    types = rules.image_types if image else rules.video_types
    if not types:
        return [Problem(field, "media_type",
                        f"{rules.name} does not publish {item.kind}s ({name}): attach a "
                        f"video instead.")]
    if item.content_type not in types:
        problems.append(Problem(field, "media_type",
                                f"{rules.name} takes {item.kind}s as {_types(types)}; {name} "
                                f"is {item.content_type}: convert it."))
    elif image and animated(item) and GIF not in types:
        problems.append(Problem(field, "animated_image",
                                f"{rules.name} publishes still images only; {name} is an "
                                f"animated {_types(frozenset({item.content_type}))}: attach "
                                f"a still image, or the animation as a video."))
    if image:
        limit = (rules.max_gif_bytes if item.content_type == "image/gif"
                 and rules.max_gif_bytes else rules.max_image_bytes)
    else:
        limit = rules.max_video_bytes
    if item.size_bytes > limit:
        problems.append(Problem(
            field, f"{item.kind}_too_large",
            f"{rules.name} allows {item.kind}s up to {_size(limit)}; {name} is "
            f"{_size(item.size_bytes)}: make it smaller by {_size(item.size_bytes - limit)}."))
    if not image and rules.min_video_bytes and 0 < item.size_bytes < rules.min_video_bytes:
        problems.append(Problem(field, "video_too_small",
                                f"{rules.name} needs videos of at least "
                                f"{_size(rules.min_video_bytes)}; {name} is "
                                f"{_size(item.size_bytes)}."))
    if image and rules.max_image_pixels and item.width and item.height \
            and item.width * item.height > rules.max_image_pixels:
        problems.append(Problem(field, "image_too_many_pixels",
                                f"{rules.name} allows images of up to "
                                f"{rules.max_image_pixels:,} pixels; {name} has "
                                f"{item.width * item.height:,}: scale it down."))
    if not image and item.duration_s is not None:
        if rules.max_video_s is not None and item.duration_s > rules.max_video_s:
            extra = _seconds(item.duration_s - rules.max_video_s)
            problems.append(Problem(
                field, "video_too_long",
                f"{rules.name} allows videos up to {_seconds(rules.max_video_s)}; {name} lasts "
                f"{_seconds(item.duration_s)}: cut {extra}."))
        if rules.min_video_s is not None and item.duration_s < rules.min_video_s:
            problems.append(Problem(
                field, "video_too_short",
                f"{rules.name} needs videos of at least {_seconds(rules.min_video_s)}; {name} "
                f"lasts {_seconds(item.duration_s)}: make it longer."))
    allowed = rules.aspect_ratios if image else rules.video_aspect_ratios
    if allowed and item.width and item.height:
        ratio = item.width / item.height
        low, high = allowed
        if not low * 0.995 <= ratio <= high * 1.005:
            problems.append(Problem(
                field, "aspect_ratio",
                f"{rules.name} takes {item.kind}s between {_ratio(low)} and {_ratio(high)} "
                f"(width:height); {name} is {item.width}x{item.height} ({_ratio(ratio)}): "
                f"crop it."))
    return problems
