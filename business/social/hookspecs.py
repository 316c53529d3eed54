"""The social plug-in's own extension point: network connectors from other plug-ins."""

from __future__ import annotations

from typing import Any

from dawserver.plugin_api import hookspec


@hookspec
def social_connectors(context: Any) -> list[Any]:
    """Connectors (``business.social.networks.base.Connector``) to use besides the ones
    the social plug-in's ``networks`` setting builds; a network named twice: the later."""
