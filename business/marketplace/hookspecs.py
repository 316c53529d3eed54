"""The marketplace plug-in's own extension point: the local file of a platform asset that
a beat sells."""

from __future__ import annotations

from typing import Any

from dawserver.plugin_api import hookspec


@hookspec(firstresult=True)
def marketplace_asset_file(context: Any, account_id: str, asset_id: str) -> str | None:
    """The local file of asset ``asset_id`` of seller ``account_id`` (the platform's asset
    store answers); None: no such asset here."""
