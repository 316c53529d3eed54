"""Fake social networks for tests and demos: aiohttp apps on loopback that speak each
network's real HTTP API shape and fail like it (see :mod:`business.social.fakes.base`).

Product modules never import this package; tests start :class:`FakeNetworks` with the fakes
they need and build connectors on :meth:`FakeNetworks.base_url`.
"""

from __future__ import annotations

from business.social.fakes.base import FakeNetwork, FakeUser
from business.social.fakes.bluesky import FakeBluesky
from business.social.fakes.linkedin import FakeLinkedIn
from business.social.fakes.meta import FakeFacebook, FakeInstagram, FakeThreads
from business.social.fakes.server import FakeNetworks
from business.social.fakes.tiktok import FakeTikTok
from business.social.fakes.x import FakeX
from business.social.fakes.youtube import FakeYouTube

#: One fake class per network, by the connectors' network names.
FAKES: dict[str, type[FakeNetwork]] = {
    cls.network: cls for cls in (FakeX, FakeInstagram, FakeFacebook, FakeTikTok, FakeYouTube,
                                 FakeLinkedIn, FakeThreads, FakeBluesky)
}

__all__ = ["FAKES", "FakeNetwork", "FakeNetworks", "FakeUser", "FakeBluesky", "FakeFacebook",
           "FakeInstagram", "FakeLinkedIn", "FakeThreads", "FakeTikTok", "FakeX", "FakeYouTube"]
