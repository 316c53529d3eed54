"""The connector contract (placeholder: only ``MediaItem``, written for the rules helper).

The full contract (``OAuthTokens``, ``Publication``, ``Published``, ``Connector``) comes from
the networks helper; when the branches merge, keep that fuller file.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MediaItem:
    kind: str                      # "image" | "video" | "audio"
    content_type: str              # "image/jpeg", "video/mp4", ...
    size_bytes: int
    path: str                      # local file to upload
    duration_s: float | None = None
    width: int | None = None
    height: int | None = None
