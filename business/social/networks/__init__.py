"""The network connectors: one module per network, all speaking the contract of
:mod:`business.social.networks.base`.

:data:`CONNECTORS` maps a network name to its connector class; :func:`connector_for` builds
one for an API host (production) or a fake's loopback URL (tests).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp

from business.social.networks.base import Connector
from business.social.networks.bluesky import BlueskyConnector
from business.social.networks.facebook import FacebookConnector
from business.social.networks.instagram import InstagramConnector
from business.social.networks.linkedin import LinkedInConnector
from business.social.networks.threads import ThreadsConnector
from business.social.networks.tiktok import TikTokConnector
from business.social.networks.x import XConnector
from business.social.networks.youtube import YouTubeConnector

CONNECTORS: Mapping[str, type] = {
    cls.network: cls for cls in (XConnector, InstagramConnector, FacebookConnector,
                                 TikTokConnector, YouTubeConnector, LinkedInConnector,
                                 ThreadsConnector, BlueskyConnector)
}
#: The production API host of each network (what ``base_url`` is outside tests).
API_HOSTS: Mapping[str, str] = {name: cls.HOSTS["api"] for name, cls in CONNECTORS.items()}


def connector_for(network: str, base_url: str | None, client_id: str, client_secret: str,
                  session: aiohttp.ClientSession, **options: Any) -> Connector:
    """The connector for ``network``; ``base_url`` None means the production host.
    ``options`` go to the connector (``media_url=``, ``page_id=`` for Facebook, timeouts).
    """
    try:
        cls = CONNECTORS[network]
    except KeyError:
        raise ValueError(f"unknown network {network!r}; use one of "
                         f"{', '.join(sorted(CONNECTORS))}") from None
    return cls(base_url or API_HOSTS[network], client_id, client_secret, session, **options)
