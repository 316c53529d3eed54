"""Fake social networks on loopback for the social tests: one network, its connector, a
client session, and the sign-in dance against the fake."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp

from business.social.fakes import FAKES, FakeNetwork, FakeNetworks
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
