"""Which object store serves the server's files: ``storage_url`` and its S3 settings."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .base import ObjectStore
from .local import LocalObjectStore

MIB = 1 << 20


@dataclass(frozen=True)
class StorageSettings:
    """How to reach S3 and how to use it (environment: ``DAW_S3_*``, ``AWS_*``).

    Attributes
    ----------
    endpoint_url:
        The S3 API's base URL (``DAW_S3_ENDPOINT``; None: AWS).
    region:
        The bucket's region (``DAW_S3_REGION``, else ``AWS_DEFAULT_REGION``).
    access_key_id, secret_access_key:
        Credentials (``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``).
    multipart_threshold_mb, part_size_mb, part_concurrency:
        Uploads above the threshold go in parts of this size (``DAW_S3_MULTIPART_MB``),
        this many at once.
    presign_seconds:
        Lifetime of a download link (``DAW_STORAGE_LINK_SECONDS``).
    cache_mb:
        Bound of the local cache of assets the C engine renders from (``DAW_ASSET_CACHE_MB``).
    connect_timeout, read_timeout, max_attempts:
        How long a call waits for the store and how often it is tried.
    """

    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)
    multipart_threshold_mb: int = 8
    part_size_mb: int = 8
    part_concurrency: int = 4
    presign_seconds: int = 900
    cache_mb: int = 2048
    connect_timeout: float = 3.0
    read_timeout: float = 30.0
    max_attempts: int = 2

    @classmethod
    def from_mapping(cls, values: dict[str, Any] | None = None) -> StorageSettings:
        """Settings from ``values`` (config), falling back to the environment."""
        env = os.environ
        defaults: dict[str, Any] = {
            "endpoint_url": env.get("DAW_S3_ENDPOINT"),
            "region": env.get("DAW_S3_REGION") or env.get("AWS_DEFAULT_REGION"),
            "access_key_id": env.get("AWS_ACCESS_KEY_ID"),
            "secret_access_key": env.get("AWS_SECRET_ACCESS_KEY"),
        }
        for name, variable in (("multipart_threshold_mb", "DAW_S3_MULTIPART_MB"),
                               ("presign_seconds", "DAW_STORAGE_LINK_SECONDS"),
                               ("cache_mb", "DAW_ASSET_CACHE_MB")):
            if env.get(variable):
                defaults[name] = int(env[variable])
        given = dict(values or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(given) - known)
        if unknown:
            raise ValueError(f"unknown storage settings {unknown}; use {sorted(known)}")
        return cls(**{**{k: v for k, v in defaults.items() if v is not None}, **given})


def parse_storage_url(url: str) -> tuple[str, str]:
    """``(bucket, prefix)`` of ``s3://BUCKET/PREFIX``; :class:`ValueError` otherwise."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise ValueError(f"storage {url!r}: write s3://BUCKET/PREFIX (or a directory)")
    return parts.netloc, parts.path.strip("/")


def is_object_storage(location: str | None) -> bool:
    """Whether a storage location is an ``s3://`` URL (else a local directory)."""
    return bool(location) and str(location).startswith("s3://")


def open_object_store(location: str | Path, settings: StorageSettings, *,
                      link_key: bytes = b"", base_url: str = "") -> ObjectStore:
    """The object store at ``location`` (a directory or ``s3://...``; not started)."""
    if isinstance(location, str) and is_object_storage(location):
        from .s3 import S3ObjectStore  # aiobotocore only where S3 is configured

        bucket, prefix = parse_storage_url(location)
        return S3ObjectStore(
            bucket, prefix, endpoint_url=settings.endpoint_url, region=settings.region,
            access_key_id=settings.access_key_id,
            secret_access_key=settings.secret_access_key,
            multipart_threshold=settings.multipart_threshold_mb * MIB,
            part_size=max(settings.part_size_mb, 5) * MIB,
            connect_timeout=settings.connect_timeout, read_timeout=settings.read_timeout,
            max_attempts=settings.max_attempts, concurrency=settings.part_concurrency)
    return LocalObjectStore(Path(location), link_key=link_key, base_url=base_url)
