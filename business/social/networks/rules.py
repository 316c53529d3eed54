"""Per-network publishing rules: text length, tags, media types, sizes, durations, shapes.

Each figure cites where the network documents it; where a network documents none, the
comment says so and the figure is ``None`` (no check) or, for a field that must hold a
number, the choice is ours and marked as such. Limits that vary per account (X Premium's
longer posts and videos, TikTok's ``max_video_post_duration_sec`` from ``creator_info``,
YouTube's 15 minutes for unverified accounts) are not modelled: the figures are the
documented defaults for a verified, ordinary account.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

MB = 1024 * 1024
GB = 1024 * MB

JPEG, PNG, GIF, WEBP = "image/jpeg", "image/png", "image/gif", "image/webp"
BMP, TIFF = "image/bmp", "image/tiff"
MP4, MOV, WEBM = "video/mp4", "video/quicktime", "video/webm"


@dataclass(frozen=True)
class NetworkRules:
    """What one network accepts in a post.

    ``aspect_ratios`` is the allowed width/height range of images and
    ``video_aspect_ratios`` that of videos (``None``: no documented limit).
    ``text_counting`` names how ``max_text`` is counted (see
    :data:`business.social.textlength.UNITS`). A first comment is counted like the post
    (on X, Threads and Bluesky it *is* a reply post; the others document no separate
    comment limit in their publishing guides).
    """

    network: str
    max_text: int
    max_hashtags: int | None
    max_mentions: int | None
    media_required: bool
    max_media: int
    image_types: frozenset[str]
    video_types: frozenset[str]
    max_image_bytes: int
    max_video_bytes: int
    max_video_s: float | None
    min_video_s: float | None
    aspect_ratios: tuple[float, float] | None
    links_clickable: bool
    first_comment: bool
    # Beyond the shared design (additive, with defaults):
    display_name: str = ""
    text_counting: str = "chars"
    max_text_bytes: int | None = None        # a second, byte limit (Bluesky)
    max_title: int | None = None             # a separate title (YouTube)
    no_angle_brackets: bool = False          # "<" and ">" refused (YouTube)
    video_aspect_ratios: tuple[float, float] | None = None
    max_videos: int = 1
    mixed_media: bool = False                # images and videos in one post (carousels)
    max_gif_bytes: int | None = None         # GIF's own size limit (X)
    gif_alone: bool = False                  # an animated GIF must be the only media (X)
    min_video_bytes: int | None = None       # (LinkedIn)
    max_image_pixels: int | None = None      # width x height (LinkedIn)
    link_attachment: bool = False            # a link travels beside the text (card/preview)

    @property
    def name(self) -> str:
        """The network's name for messages ("X", "Instagram", ...)."""
        return self.display_name or self.network


X = NetworkRules(
    network="x", display_name="X",
    # twitter-text configuration v3 (maxWeightedTweetLength 280, URLs 23, emoji and CJK 2);
    # X developer docs, "Counting characters".
    max_text=280, text_counting="weighted",
    # X documents no limit on hashtags or mentions in a post's text.
    max_hashtags=None, max_mentions=None,
    media_required=False,
    # X API media best practices: "up to 4 photos, 1 animated GIF or 1 video in a Post".
    max_media=4, max_videos=1, mixed_media=False, gif_alone=True,
    # X API media: JPG, PNG, GIF, WEBP images; MP4 and MOV video.
    image_types=frozenset({JPEG, PNG, GIF, WEBP}), video_types=frozenset({MP4, MOV}),
    # X API media, size restrictions: image 5 MB, GIF 15 MB, video 512 MB.
    max_image_bytes=5 * MB, max_gif_bytes=15 * MB, max_video_bytes=512 * MB,
    # X API media best practices: video duration between 0.5 s and 140 s.
    min_video_s=0.5, max_video_s=140.0,
    # Images: no documented ratio (X crops previews); video: between 1:3 and 3:1.
    aspect_ratios=None, video_aspect_ratios=(1 / 3, 3.0),
    links_clickable=True,
    # A first comment is a reply: POST /2/tweets with reply.in_reply_to_tweet_id.
    first_comment=True,
)

INSTAGRAM = NetworkRules(
    network="instagram", display_name="Instagram",
    # Instagram Graph API, IG User Media reference, caption: 2,200 characters max,
    # 30 hashtags max, 20 @ tags max.
    max_text=2200, max_hashtags=30, max_mentions=20,
    # The Content Publishing API publishes images, videos (reels) and carousels: no
    # text-only posts.
    media_required=True,
    # Carousels: up to 10 images, videos or a mix (Content Publishing guide).
    max_media=10, max_videos=10, mixed_media=True,
    # IG User Media reference, image specifications: format JPEG, 8 MB max,
    # aspect ratio within 4:5 to 1.91:1.
    image_types=frozenset({JPEG}), max_image_bytes=8 * MB, aspect_ratios=(4 / 5, 1.91),
    # Reels specifications: MOV or MP4, 3 s to 15 min, aspect ratio 0.01:1 to 10:1
    # (9:16 recommended), 300 MB max (some later copies say 1 GB; we keep the stricter).
    video_types=frozenset({MP4, MOV}), max_video_bytes=300 * MB,
    min_video_s=3.0, max_video_s=15 * 60.0, video_aspect_ratios=(0.01, 10.0),
    # Links in captions are not clickable on Instagram.
    links_clickable=False,
    # POST /{ig-media-id}/comments.
    first_comment=True,
)

FACEBOOK = NetworkRules(
    network="facebook", display_name="Facebook",
    # 63,206 characters: the post limit Facebook publishes; the Graph API reference for
    # POST /{page-id}/feed documents none of its own.
    max_text=63206,
    # Facebook documents no hashtag or mention limit.
    max_hashtags=None, max_mentions=None,
    media_required=False,
    # Multi-photo posts (attached_media): Facebook documents no maximum; 10 is our cap.
    # A video is its own post (POST /{page-id}/videos): one, never mixed with photos.
    max_media=10, max_videos=1, mixed_media=False,
    # Page photos (Pages API / Page Stories photo specification): .jpeg, .bmp, .png, .gif,
    # .tiff; files can not exceed 10 MB.
    image_types=frozenset({JPEG, BMP, PNG, GIF, TIFF}), max_image_bytes=10 * MB,
    # Video API (resumable upload): up to 10 GB and 240 minutes; no documented minimum.
    video_types=frozenset({MP4, MOV}), max_video_bytes=10 * GB,
    max_video_s=240 * 60.0, min_video_s=None,
    # No documented aspect-ratio limit for feed photos or videos.
    aspect_ratios=None,
    links_clickable=True,
    # POST /{post-id}/comments.
    first_comment=True,
    # POST /{page-id}/feed takes a `link` beside the message.
    link_attachment=True,
)

TIKTOK = NetworkRules(
    network="tiktok", display_name="TikTok",
    # Content Posting API, Direct Post: the video caption (title) is at most 2,200 UTF-16
    # runes.
    max_text=2200, text_counting="utf16",
    # TikTok documents no hashtag or mention limit for the API.
    max_hashtags=None, max_mentions=None,
    # The Content Posting API posts a video or photos, never text alone.
    media_required=True,
    # Photo posts: up to 35 images; a video post has one video; never mixed.
    max_media=35, max_videos=1, mixed_media=False,
    # Content Posting API photo restrictions: JPG, JPEG or WEBP, 20 MB per image.
    image_types=frozenset({JPEG, WEBP}), max_image_bytes=20 * MB,
    # Media Transfer Guide, video restrictions: MP4 (recommended), WebM, MOV; up to 4 GB;
    # up to 10 minutes (an account's creator_info may allow less). No minimum documented.
    video_types=frozenset({MP4, WEBM, MOV}), max_video_bytes=4 * GB,
    max_video_s=600.0, min_video_s=None,
    # Documented as sizes (360 px to 4096 px a side), not as a ratio.
    aspect_ratios=None,
    # Links in TikTok captions are not clickable.
    links_clickable=False,
    # The Content Posting API has no endpoint to comment.
    first_comment=False,
)

YOUTUBE = NetworkRules(
    network="youtube", display_name="YouTube",
    # YouTube Data API v3, videos resource: snippet.description at most 5,000 bytes,
    # snippet.title at most 100 characters; neither may contain "<" or ">".
    max_text=5000, text_counting="utf8_bytes", max_title=100, no_angle_brackets=True,
    # YouTube Help, hashtag policies: over 60 hashtags and YouTube ignores them all.
    max_hashtags=60,
    # YouTube documents no mention limit.
    max_mentions=None,
    # videos.insert uploads one video; a post without one is not a YouTube post.
    media_required=True, max_media=1, max_videos=1,
    # Images are thumbnails (thumbnails.set), not posts.
    image_types=frozenset(), max_image_bytes=0,
    # videos.insert accepts video/*; these are the common containers.
    video_types=frozenset({MP4, MOV, WEBM, "video/x-msvideo", "video/x-matroska",
                           "video/mpeg", "video/3gpp", "video/x-flv", "video/x-ms-wmv"}),
    # YouTube Help, "Upload videos longer than 15 minutes": 256 GB or 12 hours, whichever
    # is less (verified accounts). No documented minimum or aspect ratio.
    max_video_bytes=256 * GB, max_video_s=12 * 3600.0, min_video_s=None,
    aspect_ratios=None,
    links_clickable=True,
    # commentThreads.insert (50 quota units).
    first_comment=True,
)

LINKEDIN = NetworkRules(
    network="linkedin", display_name="LinkedIn",
    # Posts API: commentary up to 3,000 characters.
    max_text=3000,
    # LinkedIn documents no hashtag or mention limit.
    max_hashtags=None, max_mentions=None,
    media_required=False,
    # MultiImage API: up to 20 images; a video post has one video; never mixed.
    max_media=20, max_videos=1, mixed_media=False,
    # Images API: JPG, PNG, GIF; images under 36,152,320 pixels. No byte limit is
    # documented; 5 MB is our cap (what publishing tools report LinkedIn accepting).
    image_types=frozenset({JPEG, PNG, GIF}), max_image_bytes=5 * MB,
    max_image_pixels=36_152_320,
    # Videos API: MP4, 75 KB to 500 MB, 3 seconds to 30 minutes, aspect ratio 1:2.4 to
    # 2.4:1.
    video_types=frozenset({MP4}), min_video_bytes=75 * 1024, max_video_bytes=500 * MB,
    min_video_s=3.0, max_video_s=30 * 60.0,
    aspect_ratios=None, video_aspect_ratios=(1 / 2.4, 2.4),
    links_clickable=True,
    # socialActions/{urn}/comments.
    first_comment=True,
    # An article (link) content beside the commentary.
    link_attachment=True,
)

THREADS = NetworkRules(
    network="threads", display_name="Threads",
    # Threads API, Posts, limitations: text up to 500 characters; emojis count as their
    # number of UTF-8 bytes.
    max_text=500, text_counting="emoji_bytes",
    # Threads shows one topic tag per post but the API documents no refusal for more;
    # no mention limit is documented.
    max_hashtags=None, max_mentions=None,
    # Text-only posts are allowed (media_type=TEXT).
    media_required=False,
    # Carousels: up to 20 images and videos, mixed.
    max_media=20, max_videos=20, mixed_media=True,
    # Threads API media specifications: images JPEG or PNG, 8 MB max, aspect ratio up to
    # 10:1; video MOV or MP4, 1 GB max, 5 minutes max, aspect ratio 0.01:1 to 10:1.
    image_types=frozenset({JPEG, PNG}), max_image_bytes=8 * MB, aspect_ratios=(0.1, 10.0),
    video_types=frozenset({MP4, MOV}), max_video_bytes=1 * GB,
    max_video_s=300.0, min_video_s=None, video_aspect_ratios=(0.01, 10.0),
    links_clickable=True,
    # A first comment is a reply (reply_to_id).
    first_comment=True,
    # link_attachment on text posts.
    link_attachment=True,
)

BLUESKY = NetworkRules(
    network="bluesky", display_name="Bluesky",
    # Lexicon app.bsky.feed.post: text maxGraphemes 300, maxLength 3,000 (UTF-8 bytes).
    max_text=300, text_counting="graphemes", max_text_bytes=3000,
    # No limit on inline hashtags or mentions (facets) is documented.
    max_hashtags=None, max_mentions=None,
    media_required=False,
    # A post has one embed: app.bsky.embed.images (maxLength 4) or one
    # app.bsky.embed.video, never both.
    max_media=4, max_videos=1, mixed_media=False,
    # app.bsky.embed.images: image blob accept image/*, maxSize 1,000,000 bytes.
    image_types=frozenset({JPEG, PNG, WEBP, GIF}), max_image_bytes=1_000_000,
    # app.bsky.embed.video: an MP4 blob up to 100 MB; 3 minutes per Bluesky's 2025
    # announcement (the lexicon has no duration); no documented minimum or ratio.
    video_types=frozenset({MP4}), max_video_bytes=100_000_000,
    max_video_s=180.0, min_video_s=None,
    aspect_ratios=None,
    # Links are clickable through facets (the connector writes them).
    links_clickable=True,
    # A first comment is a reply record.
    first_comment=True,
    # app.bsky.embed.external: a link card beside the text.
    link_attachment=True,
)

RULES: Mapping[str, NetworkRules] = MappingProxyType({
    r.network: r for r in (X, INSTAGRAM, FACEBOOK, TIKTOK, YOUTUBE, LINKEDIN, THREADS,
                           BLUESKY)
})
