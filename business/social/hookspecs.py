"""The social plug-in's own extension points: network connectors from other plug-ins, and
the local file of a media asset a post attaches."""

from __future__ import annotations

from typing import Any

from dawserver.plugin_api import hookspec


@hookspec
def social_connectors(context: Any) -> list[Any]:
    """Connectors (``business.social.networks.base.Connector``) to use besides the ones
    the social plug-in's ``networks`` setting builds; a network named twice: the later."""


@hookspec(firstresult=True)
def social_media_file(context: Any, account_id: str, asset_id: str) -> str | None:
    """The local file of asset ``asset_id`` of ``account_id`` that a post attaches (the
    platform's asset store answers); None: not known here."""
