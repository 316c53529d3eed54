"""Fake analytics sources for tests and demos: aiohttp apps on loopback that speak each
source's API shape, serve seeded series (:mod:`.series`) and fail like the source
(:mod:`.base`). Product modules never import this package; tests start
:class:`FakeSources` with the fakes they need and build connectors on its base URLs.
"""

from __future__ import annotations

from business.analytics.fakes.amazon_music import FakeAmazonMusic
from business.analytics.fakes.anghami import FakeAnghami
from business.analytics.fakes.apple_music import FakeAppleMusic
from business.analytics.fakes.audiomack import FakeAudiomack
from business.analytics.fakes.bandcamp import FakeBandcamp
from business.analytics.fakes.base import KINDS, FakeSource
from business.analytics.fakes.beatport import FakeBeatport
from business.analytics.fakes.boomplay import FakeBoomplay
from business.analytics.fakes.deezer import FakeDeezer
from business.analytics.fakes.discogs import FakeDiscogs
from business.analytics.fakes.facebook import FakeFacebook
from business.analytics.fakes.genius import FakeGenius
from business.analytics.fakes.instagram import FakeInstagram
from business.analytics.fakes.jiosaavn import FakeJioSaavn
from business.analytics.fakes.lastfm import FakeLastFm
from business.analytics.fakes.musicbrainz import FakeMusicBrainz
from business.analytics.fakes.pandora import FakePandora
from business.analytics.fakes.radio_airplay import FakeRadioAirplay
from business.analytics.fakes.series import Series
from business.analytics.fakes.server import FakeSources
from business.analytics.fakes.shazam import FakeShazam
from business.analytics.fakes.soundcloud import FakeSoundCloud
from business.analytics.fakes.spotify import FakeSpotify
from business.analytics.fakes.tidal import FakeTidal
from business.analytics.fakes.tiktok import FakeTikTok
from business.analytics.fakes.twitch import FakeTwitch
from business.analytics.fakes.x import FakeX
from business.analytics.fakes.youtube import FakeYouTube

#: One fake class per source, by the connectors' source names.
FAKES: dict[str, type[FakeSource]] = {cls.source: cls for cls in (
    FakeSpotify, FakeAppleMusic, FakeYouTube, FakeTikTok, FakeInstagram, FakeDeezer,
    FakeSoundCloud, FakeShazam, FakeLastFm, FakeMusicBrainz, FakeDiscogs, FakeAudiomack,
    FakeFacebook, FakeX, FakeAmazonMusic, FakeTidal, FakePandora, FakeBoomplay, FakeAnghami,
    FakeJioSaavn, FakeBeatport, FakeBandcamp, FakeTwitch, FakeGenius, FakeRadioAirplay)}

__all__ = ["FAKES", "KINDS", "FakeSource", "FakeSources", "Series"]
