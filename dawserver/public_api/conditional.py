"""ETags and preconditions: ``If-None-Match`` on reads (304), ``If-Match`` on writes (412).

An ETag is strong: the SHA-256 of the exact bytes of the representation. A write
compares ``If-Match`` against the ETag of the resource's full representation (the
answer of a GET without ``fields``).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping

from ..errors import PreconditionFailed

STALE = ("If-Match {sent} does not match the current ETag {current}: it changed since "
         "you read it; GET it again (without fields=) and retry with its ETag")


def etag_of(data: bytes) -> str:
    """The strong ETag of ``data``: ``"<22 base64url characters of its SHA-256>"``."""
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()[:16]).rstrip(b"=")
    return f'"{digest.decode("ascii")}"'


def _tags(header: str) -> list[str]:
    return [tag.strip() for tag in header.split(",") if tag.strip()]


def none_match(headers: Mapping[str, str], etag: str) -> bool:
    """Whether ``If-None-Match`` names ``etag`` (or ``*``): answer 304 (weak comparison)."""
    header = headers.get("If-None-Match")
    if not header:
        return False
    bare = etag.removeprefix("W/")
    return any(tag == "*" or tag.removeprefix("W/") == bare for tag in _tags(header))


def require_match(headers: Mapping[str, str], etag: str) -> None:
    """PreconditionFailed unless ``If-Match`` (when sent) names ``etag`` (strong comparison)."""
    header = headers.get("If-Match")
    if not header:
        return
    tags = _tags(header)
    if "*" in tags or etag in tags:
        return
    raise PreconditionFailed(STALE.format(sent=header[:100], current=etag), etag=etag)
