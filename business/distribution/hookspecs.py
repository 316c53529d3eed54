"""The distribution plug-in's own extension points (added by its ``hookspecs`` hook)."""

from __future__ import annotations

from typing import Any

from dawserver.plugin_api import PluginContext, hookspec


@hookspec
def distribution_stores(context: PluginContext) -> list[Any]:
    """Store connectors (objects with ``name``, ``party`` and ``async deliver(package)``)."""
