"""The source connectors: one module per platform, all on the framework of
:mod:`business.analytics.sources.base`.

:data:`SOURCES` maps a source name to its connector class; :func:`connector_for` builds
one for the production API (``base_url`` None) or a fake's loopback URL (tests). Adding a
source is one module (a ``SourceSpec``, a pydantic ``Page`` model, ``first_call``,
``rows`` and ``read``) and one line here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp

from business.analytics.sources.amazon_music import AmazonMusicConnector
from business.analytics.sources.anghami import AnghamiConnector
from business.analytics.sources.apple_music import AppleMusicConnector
from business.analytics.sources.audiomack import AudiomackConnector
from business.analytics.sources.bandcamp import BandcampConnector
from business.analytics.sources.base import Connector, Credentials
from business.analytics.sources.beatport import BeatportConnector
from business.analytics.sources.boomplay import BoomplayConnector
from business.analytics.sources.deezer import DeezerConnector
from business.analytics.sources.discogs import DiscogsConnector
from business.analytics.sources.facebook import FacebookConnector
from business.analytics.sources.genius import GeniusConnector
from business.analytics.sources.instagram import InstagramConnector
from business.analytics.sources.jiosaavn import JioSaavnConnector
from business.analytics.sources.lastfm import LastFmConnector
from business.analytics.sources.musicbrainz import MusicBrainzConnector
from business.analytics.sources.pandora import PandoraConnector
from business.analytics.sources.radio_airplay import RadioAirplayConnector
from business.analytics.sources.shazam import ShazamConnector
from business.analytics.sources.soundcloud import SoundCloudConnector
from business.analytics.sources.spec import SourceSpec
from business.analytics.sources.spotify import SpotifyConnector
from business.analytics.sources.tidal import TidalConnector
from business.analytics.sources.tiktok import TikTokConnector
from business.analytics.sources.twitch import TwitchConnector
from business.analytics.sources.x import XConnector
from business.analytics.sources.youtube import YouTubeConnector

SOURCES: Mapping[str, type[Connector]] = {
    cls.spec.name: cls for cls in (
        SpotifyConnector, AppleMusicConnector, YouTubeConnector, TikTokConnector,
        InstagramConnector, DeezerConnector, SoundCloudConnector, ShazamConnector,
        LastFmConnector, MusicBrainzConnector, DiscogsConnector, AudiomackConnector,
        FacebookConnector, XConnector, AmazonMusicConnector, TidalConnector,
        PandoraConnector, BoomplayConnector, AnghamiConnector, JioSaavnConnector,
        BeatportConnector, BandcampConnector, TwitchConnector, GeniusConnector,
        RadioAirplayConnector)
}
#: The issue's sources not built yet (one module each, on the same framework).
NOT_YET_BUILT = ("songkick_or_bandsintown",)


def spec_of(name: str) -> SourceSpec:
    """The spec of source ``name``."""
    return _class(name).spec


def connector_for(name: str, base_url: str | None, credentials: Credentials,
                  session: aiohttp.ClientSession, **options: Any) -> Connector:
    """The connector for source ``name``; ``base_url`` None means the production API.
    ``options`` go to :class:`~business.analytics.sources.base.Connector` (``rate_limit=``,
    ``storage=`` a shared ``limits`` storage, ``sleep=``, ``rng=``, ``clock=``,
    ``timeout_s=``)."""
    return _class(name)(base_url, credentials, session, **options)


def _class(name: str) -> type[Connector]:
    try:
        return SOURCES[name]
    except KeyError:
        raise ValueError(f"unknown analytics source {name!r}; use one of "
                         f"{', '.join(sorted(SOURCES))}") from None


__all__ = ["NOT_YET_BUILT", "SOURCES", "Connector", "Credentials", "connector_for", "spec_of"]
