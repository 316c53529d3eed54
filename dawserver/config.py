"""Server configuration: one dataclass, filled from the CLI (or tests) and read by the app."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from accounts.models import DEFAULT_REGION
from accounts.regions import check_distinct, check_region_name
from accounts.throttle import SIGN_UPS_FREE

from .background import KEEP_FINISHED_S
from .forwarded import trusted_networks

DEFAULT_PORT = 8750
#: How long a person's export archive is kept after its job is done (seconds): 7 days.
EXPORT_KEEP_S = 7 * 86_400.0


@dataclass(frozen=True)
class RegionConfig:
    """One data region (docs/accounts.md, "Data regions").

    Attributes
    ----------
    database_url:
        The region's database (``postgresql://...`` or ``sqlite:///PATH``), where its
        accounts' rows live.
    storage:
        The directory of the region's files (relative to the data directory), where its
        projects' assets, bounces and its people's exports go; None:
        ``DATA/regions/NAME``; or an ``s3://BUCKET/PREFIX`` URL: object storage
        (docs/storage.md), reached with the server's ``storage_options``.
    """

    database_url: str
    storage: str | None = None

    def __post_init__(self) -> None:
        if not self.database_url:
            raise ValueError("a region needs a database_url (postgresql://... or "
                             "sqlite:///PATH)")
        if self.storage is not None and "://" in self.storage and not \
                self.storage.startswith("s3://"):
            raise ValueError(f"region storage {self.storage!r}: use a directory or an "
                             f"s3://BUCKET/PREFIX URL")


def _pairs(values: Iterable[str], what: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep or not rest:
            raise ValueError(f"{what} {value!r}: write NAME=VALUE (e.g. eu=...)")
        if name in found:
            raise ValueError(f"{what}: region {name!r} is given twice")
        found[check_region_name(name.strip())] = rest.strip()
    return found


def parse_regions(databases: Iterable[str], storage: Iterable[str] = ()
                  ) -> dict[str, RegionConfig]:
    """``{name: RegionConfig}`` from ``NAME=DATABASE_URL`` and ``NAME=STORAGE`` strings
    (``--data-region`` and ``--region-storage``); :class:`ValueError` saying what is wrong."""
    urls = _pairs(databases, "data region")
    places = _pairs(storage, "region storage")
    unknown = sorted(set(places) - set(urls))
    if unknown:
        raise ValueError(f"region storage for {unknown} names no data region; add "
                         f"--data-region NAME=DATABASE_URL for it")
    return {name: RegionConfig(url, places.get(name)) for name, url in urls.items()}


@dataclass
class ServerConfig:
    """Everything ``create_app`` needs.

    Attributes
    ----------
    host, port:
        Where ``dawserver serve`` listens.
    data_dir:
        Local state: the token secret (``secret.key``), the SQLite store
        (``collab.sqlite3``) and imported projects.
    database_url:
        ``None`` or ``sqlite:///PATH`` for SQLite, ``postgresql://...`` for PostgreSQL.
    max_message_bytes:
        Largest WebSocket message accepted; bigger ones close the connection (4413).
    max_documents:
        Documents kept in memory at once; idle ones are unloaded to make room.
    idle_unload_seconds:
        How long a document stays loaded after its last client leaves.
    compact_every:
        Logged updates after which the log is folded into a snapshot (sooner when the
        log's bytes outweigh the last snapshot's; see ``RoomLimits.should_compact``).
    engine:
        Keep a server-side ``dsp_core`` engine following each rendered document.
    engine_debounce_seconds:
        Delay before a burst of document changes is applied to the engine.
    plugins:
        Business plug-ins: ``{name: False}`` disables, ``{name: {...}}`` configures.
    public_url:
        Base URL printed for browsers (default ``http://HOST:PORT``).
    redis_url:
        ``redis://HOST:PORT/DB`` (one Redis) or ``redis+cluster://HOST:PORT,HOST:PORT``
        (a Redis Cluster) to serve projects together with other server processes on
        the same PostgreSQL store (see docs/scale-out.md); None: alone.
        Sign-in sessions and API rate limits live there too when it is set.
    mail_url:
        ``smtp://USER:PASS@HOST:PORT?from=...`` (or ``smtps://``) for account mail;
        None: mail is written to ``DATA/outbox/*.eml`` and its links logged.
    sign_in_providers:
        OpenID Connect providers by name: ``{"google": {"issuer": ..., "client_id": ...,
        "client_secret": ...}}`` (docs/accounts.md).
    single_sign_on:
        Organisations' own providers (docs/accounts.md): ``{"ca_file": PATH}`` trusts a
        private certificate authority for them; ``{"allow_private_issuers": true}``
        lets an issuer resolve to a private or loopback address (off by default: an
        organisation's admin must not make the server fetch from its own network).
        Domain checks (their TXT records): ``{"dns_servers": ["HOST[:PORT]"]}`` (default
        the system's resolvers), ``{"dns_timeout": 5}`` seconds, and
        ``{"domain_reverify_after": 604800}`` seconds before a newcomer's join reads an
        old proof again.
    require_verified_email:
        Whether people must follow the verification link before they sign in.
    sign_ups_per_client:
        Sign-ups one client (an address; an IPv6 address's /64) makes freely before it
        waits 1 s, 2 s, ... (429 with ``Retry-After``), their count halving with each
        hour without one.
    password_hashing:
        argon2id ``(time_cost, memory_KiB, parallelism)``; None: the default
        (RFC 9106 low-memory profile, above the OWASP minimum).
    collab_token_seconds:
        Lifetime of a collaboration token derived from a session or key (``POST
        /projects/{id}/collab-token``); the page renews it before it runs out.
    regions:
        Data regions besides the default one (``database_url``): ``{"eu":
        RegionConfig("postgresql://.../eu")}``; an account's rows live in its
        region's database (docs/accounts.md, "Data regions").
    storage_url:
        Where the default region's assets, bounces and exports go: None (local disk under
        ``data_dir``) or ``s3://BUCKET/PREFIX`` (the S3 API, docs/storage.md).
    storage_options:
        S3 endpoint, credentials, multipart, link lifetime and asset cache settings
        (:class:`dawserver.storage.StorageSettings`; unset ones come from the environment).
    asset_collection_seconds:
        How often (seconds; default hourly) the audio of assets no project uses any more
        is deleted from object storage once past its grace period (docs/storage.md); one
        node collects each region per interval.
    export_keep_seconds:
        How long (seconds; default 7 days) a person's privacy export archive stays
        downloadable after its job is done; then the hourly sweep deletes it wherever it
        is kept (docs/accounts.md, "Privacy: export and deletion"). At most 30 days, as
        long as the export's job is kept on record.
    trusted_proxies:
        Addresses or networks of the reverse proxies in front of this server (HAProxy of
        ``dawserver deploy haproxy``): a request from one of them counts as coming from
        the client its ``X-Forwarded-For`` names (:mod:`dawserver.forwarded`); none: every
        request's peer is its client.
    webhooks:
        Developer webhooks' delivery rules by name (``WebhookSettings``, docs/public-api.md):
        ``{"allow_loopback": true}`` lets them post to http:// loopback (development),
        ``{"allow_private": true}`` to private networks; retry and disable thresholds.
    """

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    data_dir: Path = field(default_factory=lambda: Path("data"))
    database_url: str | None = None
    max_message_bytes: int = 16 * 1024 * 1024
    max_documents: int = 64
    idle_unload_seconds: float = 30.0
    compact_every: int = 10_000
    engine: bool = True
    engine_debounce_seconds: float = 0.05
    plugins: dict[str, Any] = field(default_factory=dict)
    public_url: str | None = None
    redis_url: str | None = None
    mail_url: str | None = None
    sign_in_providers: dict[str, dict[str, str]] = field(default_factory=dict)
    single_sign_on: dict[str, Any] = field(default_factory=dict)
    require_verified_email: bool = True
    password_hashing: tuple[int, int, int] | None = None
    sign_ups_per_client: int = SIGN_UPS_FREE
    collab_token_seconds: float = 3600.0
    regions: dict[str, RegionConfig] = field(default_factory=dict)
    webhooks: dict[str, Any] = field(default_factory=dict)
    storage_url: str | None = None
    storage_options: dict[str, Any] = field(default_factory=dict)
    asset_collection_seconds: float = 3600.0
    export_keep_seconds: float = EXPORT_KEEP_S
    trusted_proxies: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
        trusted_networks(self.trusted_proxies)  # a ValueError naming a bad one
        if self.sign_ups_per_client < 1:
            raise ValueError(f"sign_ups_per_client {self.sign_ups_per_client!r}: give how "
                             f"many sign-ups one client makes freely, 1 or more (default "
                             f"{SIGN_UPS_FREE})")
        if not self.asset_collection_seconds > 0:
            raise ValueError(f"asset_collection_seconds {self.asset_collection_seconds!r}: "
                             "give the seconds between collections, above 0 (default 3600)")
        if not 0 < self.export_keep_seconds <= KEEP_FINISHED_S:
            raise ValueError(f"export_keep_seconds {self.export_keep_seconds!r}: give the "
                             f"seconds an export archive is kept, above 0 and at most "
                             f"{KEEP_FINISHED_S} (30 days, as long as its job is on record; "
                             f"default {EXPORT_KEEP_S:.0f})")
        if self.storage_url is not None and not self.storage_url.startswith("s3://"):
            raise ValueError(f"storage {self.storage_url!r}: give s3://BUCKET/PREFIX, or "
                             "leave it unset for local disk under the data directory")
        self.regions = {check_region_name(name): region if isinstance(region, RegionConfig)
                        else RegionConfig(**region) for name, region in self.regions.items()}
        if self.regions:
            check_distinct(self.database_url, {name: region.database_url for name, region
                                               in self.regions.items()}, self.data_dir)
            self._check_storage()

    def _check_storage(self) -> None:
        """Refuse two regions sharing a directory or overlapping object storage locations
        (one bucket, one prefix inside the other: one region's listing would hold the
        other's keys)."""
        seen: dict[Any, str] = {self.data_dir.resolve(): DEFAULT_REGION}
        buckets: dict[tuple[str, tuple[str, ...]], str] = {}
        if self.storage_url:
            buckets[_bucket_and_prefix(self.storage_url)] = DEFAULT_REGION
        for name, region in self.regions.items():
            if region.storage is not None and region.storage.startswith("s3://"):
                where = _bucket_and_prefix(region.storage)
                for (bucket, prefix), other in buckets.items():
                    shorter = min(len(prefix), len(where[1]))
                    if bucket == where[0] and prefix[:shorter] == where[1][:shorter]:
                        raise ValueError(
                            f"regions {other!r} and {name!r} keep their files in the same "
                            f"place (s3://{bucket}/{'/'.join(prefix)} and {region.storage} "
                            "overlap); give each its own bucket or a prefix not inside "
                            "the other's")
                buckets[where] = name
                continue
            root = self.storage_of(name).resolve()
            if root in seen:
                raise ValueError(f"regions {seen[root]!r} and {name!r} keep their files in "
                                 f"the same directory ({root}); give each its own")
            seen[root] = name

    def object_storage_of(self, region: str) -> str | None:
        """``region``'s ``s3://`` location, or None when its files are on local disk."""
        if region == DEFAULT_REGION:
            return self.storage_url
        storage = self.regions[region].storage
        return storage if storage is not None and storage.startswith("s3://") else None

    def storage_of(self, region: str) -> Path:
        """The directory of ``region``'s files: the data directory for the default region,
        else its ``storage`` (relative to the data directory) or ``DATA/regions/NAME``."""
        if region == DEFAULT_REGION:
            return self.data_dir
        storage = self.regions[region].storage
        if storage is None or storage.startswith("s3://"):  # local files: caches, temp
            return self.data_dir / f"regions/{region}"
        return self.data_dir / storage

    @property
    def base_url(self) -> str:
        """The HTTP base URL clients should use."""
        return self.public_url or f"http://{self.host}:{self.port}"

    @property
    def secure_cookies(self) -> bool:
        """Whether cookies are marked ``Secure`` (the server is reached over https)."""
        return self.base_url.startswith("https://")

    @property
    def collab_url(self) -> str:
        """The WebSocket URL a y-websocket provider takes (the room is appended)."""
        return self.base_url.replace("http", "ws", 1) + "/collab"


def _bucket_and_prefix(url: str) -> tuple[str, tuple[str, ...]]:
    """The bucket of an ``s3://`` URL and its prefix as path segments."""
    parts = urlsplit(url)
    return parts.netloc, tuple(part for part in parts.path.split("/") if part)
