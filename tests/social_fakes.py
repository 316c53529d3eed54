"""Fake social networks on loopback for the social tests: one network, its connector, a
client session, and the sign-in dance against the fake; and :func:`dispatching`, the
social services dispatching to fakes over one job queue."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp

from business.social.fakes import FAKES, FakeNetwork, FakeNetworks, FakeUser
from business.social.networks import connector_for
from business.social.networks.base import (
    MediaItem,
    OAuthTokens,
    Publication,
    code_challenge,
    new_code_verifier,
)
from business.social.networks.bluesky import credentials

CLIENT_ID, CLIENT_SECRET = "studio-client", "studio-secret"
REDIRECT_URI = "https://studio.example/social/callback"


def media_url(item: MediaItem) -> str:
    """What production gives Instagram and Threads: a public URL of the asset."""
    return f"https://assets.studio.example/{Path(item.path).name}"


@dataclass
class Net:
    """One running fake network and a connector pointed at it."""

    fake: FakeNetwork
    connector: Any
    session: aiohttp.ClientSession
    base_url: str


@contextlib.asynccontextmanager
async def social_network(network: str, **fake_options: Any) -> AsyncIterator[Net]:
    """Start the fake ``network`` on 127.0.0.1 and build its connector (quick polling)."""
    fake = FAKES[network](client_id=CLIENT_ID, client_secret=CLIENT_SECRET, **fake_options)
    async with FakeNetworks([fake]) as server, aiohttp.ClientSession() as session:
        connector = connector_for(network, server.base_url(network), CLIENT_ID, CLIENT_SECRET,
                                  session, media_url=media_url, poll_interval_s=0.02,
                                  poll_timeout_s=5.0, timeout_s=10.0)
        yield Net(fake, connector, session, server.base_url(network))


async def authorize(net: Net, verifier: str, state: str = "s1") -> str:
    """Follow the connector's authorize URL as the user's browser would: the code."""
    url = net.connector.authorize_url(state, code_challenge(verifier), REDIRECT_URI)
    async with net.session.get(url, allow_redirects=False) as response:
        assert response.status == 302, await response.text()
        location = response.headers["Location"]
    assert location.startswith(REDIRECT_URI)
    query = parse_qs(urlsplit(location).query)
    assert query["state"] == [state]
    return query["code"][0]


async def sign_in(net: Net) -> OAuthTokens:
    """The whole connect flow (PKCE), or a Bluesky session with the app password."""
    if net.fake.network == "bluesky":
        return await net.connector.exchange_code(
            credentials(net.fake.user.handle, net.fake.app_password), "", "")
    verifier = new_code_verifier()
    code = await authorize(net, verifier)
    return await net.connector.exchange_code(code, verifier, REDIRECT_URI)


def make_media(directory: Path) -> dict[str, MediaItem]:
    """A small JPEG-like image and a 600 KB "video" (the fakes check sizes, not codecs)."""
    image, video = directory / "cover.jpg", directory / "clip.mp4"
    image.write_bytes(b"\xff\xd8\xff\xe0" + secrets.token_bytes(40_000))
    video.write_bytes(secrets.token_bytes(600_000))
    return {"image": MediaItem("image", "image/jpeg", image.stat().st_size, str(image),
                               width=1080, height=1080),
            "video": MediaItem("video", "video/mp4", video.stat().st_size, str(video),
                               duration_s=12.0, width=1080, height=1920)}


def publication(network: str, media: dict[str, MediaItem], text: str,
                key: str = "post-1:channel-1") -> Publication:
    """A post each network takes: a video where it needs one, an image on Instagram."""
    needs = {"instagram": ("image",), "tiktok": ("video",), "youtube": ("video",),
             "x": ("image",)}
    return Publication(dedupe_key=key, text=text,
                       media=tuple(media[kind] for kind in needs.get(network, ())))


# -- dispatch against the fakes ------------------------------------------------------------

@dataclass
class Dispatching:
    """The social services on one database, dispatching to fake networks on loopback."""

    db: Any
    server: FakeNetworks
    connectors: dict[str, Any]
    store: Any
    channels: Any
    queue: Any
    dispatcher: Any
    sweeper: Any
    posts: Any
    events: Any
    media: dict[str, MediaItem]

    def fake(self, network: str) -> FakeNetwork:
        return self.server[network]

    def worker(self, **options: Any) -> Any:
        """A job worker serving the publish queue, as the server's does."""
        from business.social.dispatch import PUBLISH
        from jobs import JobWorker

        return JobWorker(self.queue, {PUBLISH: self.dispatcher.handle},
                         **{"poll_s": 0.02, **options})

    async def channel(self, network: str, account: str = "acc", *,
                      user: FakeUser | None = None) -> str:
        """A channel of ``account`` on the fake ``network`` holding fresh tokens (as a
        connect would store them); its id."""
        from business.social.models import ChannelTokens

        fake = self.fake(network)
        user = user or fake.user
        answer = fake.new_tokens(user, "post")
        refresh = answer.get("refresh_token") or answer["access_token"]
        if network in ("instagram", "threads", "facebook"):  # long-lived token as both
            refresh = answer["access_token"]
        box, now = self.channels.box, time.time()
        sealed = ChannelTokens(box.seal(answer["access_token"]), box.seal(refresh),
                               now + float(answer["expires_in"]), "post", 1, now, now)
        async with self.db.transaction() as tx:
            return await self.store.insert_channel(tx, account, network, user.id, user.name,
                                                   user.handle, sealed, "p_ada", now)

    async def due_post(self, channels: list[str], text: str, *, account: str = "acc",
                       ago: float = 0.5, **fields: Any) -> Any:
        """A post submitted earlier whose publish time came ``ago`` seconds ago."""
        return await self.scheduled_post(channels, text, at=time.time() - ago,
                                         account=account, **fields)

    async def scheduled_post(self, channels: list[str], text: str, *, at: float,
                             account: str = "acc", **fields: Any) -> Any:
        """A post composed and submitted (no approval workflow) for time ``at``."""
        when = datetime.fromtimestamp(at, UTC).isoformat()
        real = self.posts.clock
        self.posts.clock = lambda: min(time.time(), at - 60)
        try:
            post = await self.posts.create(account, "p_ada", {
                "text": text, "publish_at": when,
                "targets": [{"channel_id": c} for c in channels], **fields})
            return await self.posts.submit(account, post.post_id, "p_ada")
        finally:
            self.posts.clock = real


def media_ref(item: MediaItem, asset_id: str) -> dict[str, Any]:
    """A post's media reference (a platform asset) for a local test file."""
    return {"asset_id": asset_id, "kind": item.kind, "content_type": item.content_type,
            "size_bytes": item.size_bytes, "duration_s": item.duration_s,
            "width": item.width, "height": item.height}


@contextlib.asynccontextmanager
async def dispatching(db_url: str, networks: list[str], tmp_path: Path,
                      **settings: Any) -> AsyncIterator[Dispatching]:
    """Migrated ``db_url``, fakes of ``networks`` with their connectors, and the social
    services (posts, channels, dispatcher, sweeper) over one job queue; quick backoff."""
    from cryptography.fernet import Fernet
    from social_helpers import Recorder, migrated

    from business.social.channels import Channels
    from business.social.dispatch import Dispatcher, DispatchSettings
    from business.social.posts import Posts
    from business.social.store import SocialStore
    from business.social.sweeper import Sweeper
    from business.social.tokens import TokenBox
    from database import open_database
    from jobs import JobQueue

    media = make_media(tmp_path)
    files = {"cover": media["image"].path, "clip": media["video"].path}
    fakes = [FAKES[n](client_id=CLIENT_ID, client_secret=CLIENT_SECRET) for n in networks]
    async with open_database(db_url) as db, FakeNetworks(fakes) as server, \
            aiohttp.ClientSession() as session:
        await migrated(db)
        connectors = {n: connector_for(n, server.base_url(n), CLIENT_ID, CLIENT_SECRET,
                                       session, media_url=media_url, poll_interval_s=0.02,
                                       poll_timeout_s=5.0, timeout_s=10.0)
                      for n in networks}
        store, events = SocialStore(db), Recorder()
        channels = Channels(store, TokenBox([Fernet.generate_key().decode()]), connectors,
                            events, base_url="https://studio.example")
        queue = JobQueue(db)
        config = {"backoff_base": 0.05, "backoff_cap": 0.2, "lease_s": 5.0,
                  "concurrency": 8, "channel_limit": "100/second",
                  "network_limit": "1000/second", **settings}
        async def media_file(account: str, asset: str) -> str | None:
            return files.get(asset)

        dispatcher = Dispatcher(store, channels, queue, events,
                                settings=DispatchSettings(**config),
                                base_url="https://studio.example",
                                media_file=media_file)
        yield Dispatching(db, server, connectors, store, channels, queue, dispatcher,
                          Sweeper(db, dispatcher), Posts(store, dispatch=dispatcher),
                          events, media)


async def until(predicate: Any, timeout: float = 20.0, every: float = 0.02) -> None:
    """Wait until ``await predicate()`` is true (an AssertionError after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(every)
