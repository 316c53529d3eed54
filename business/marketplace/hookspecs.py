"""The marketplace plug-in's own extension point: the local file of a platform asset that
a beat sells."""

from __future__ import annotations

from typing import Any

from dawserver.plugin_api import hookspec


@hookspec(firstresult=True)
def marketplace_asset_file(context: Any, account_id: str, asset_id: str) -> str | None:
    """The local file of asset ``asset_id`` of seller ``account_id`` (the platform's asset
    store answers); None: no such asset here."""


@hookspec(firstresult=True)
def marketplace_txt_records(context: Any, name: str) -> list[str] | None:
    """The TXT strings published at DNS name ``name`` (None: none), instead of asking DNS:
    how a storefront's custom domain is proved in tests."""
