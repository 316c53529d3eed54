"""What a plug-in's hooks and route handlers receive: :class:`PluginContext`."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pluggy
from pydantic import ValidationError

from database import Database

from .declarations import Event, Job, Permission
from .errors import PluginError


@dataclass(frozen=True)
class Declared:
    """A declaration and the plug-in that made it."""

    plugin: str
    item: Any


@dataclass
class PluginContext:
    """Settings, data directory, database and the plug-ins' declarations.

    ``permissions``, ``events`` and ``jobs`` map names to what the loaded plug-ins
    declared; ``identify(request)`` gives a request's principal (see
    :mod:`dawserver.authorization`).
    """

    manager: pluggy.PluginManager
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    data_dir: Path = Path(".")
    db: Database | None = None
    config: Any = None
    state: dict[str, Any] = field(default_factory=dict)
    permissions: dict[str, Declared] = field(default_factory=dict)
    events: dict[str, Declared] = field(default_factory=dict)
    jobs: dict[str, Declared] = field(default_factory=dict)
    identify: Callable[[Any], Any] | None = None

    def settings_for(self, plugin: str) -> dict[str, Any]:
        """The settings mapping configured for ``plugin`` (empty if none)."""
        return self.settings.get(plugin, {})

    def database(self) -> Database:
        """The started database; an error before the server started."""
        if self.db is None:
            raise PluginError("the database is not open yet; plug-ins use it once started")
        return self.db

    def permission(self, name: str) -> Permission | None:
        """The declared permission called ``name`` (None if nobody declares it)."""
        found = self.permissions.get(name)
        return None if found is None else found.item

    async def announce(self, name: str, payload: dict[str, Any]) -> None:
        """Tell every plug-in about a declared event (the ``business_event`` hook).

        The payload is checked against the event's model first.
        """
        declared = self.events.get(name)
        if declared is None:
            raise PluginError(f"event {name!r} is not declared; a plug-in declares its "
                              f"events with the 'events' hook (declared: {sorted(self.events)})")
        event: Event = declared.item
        try:
            event.payload.model_validate(payload)
        except ValidationError as exc:
            raise PluginError(f"payload of event {name!r} does not match its model: "
                              f"{exc}") from exc
        for result in self.manager.hook.business_event(context=self, name=name,
                                                       payload=payload):
            if inspect.isawaitable(result):
                await result


def declare(found: dict[str, Declared], plugin: str, name: str, item: Permission | Event | Job,
            kind: str) -> None:
    """Record ``item`` as ``plugin``'s; a name belongs to one plug-in."""
    other = found.get(name)
    if other is not None and other.plugin != plugin:
        raise PluginError(f"{kind} {name!r} is declared by both {other.plugin!r} and "
                          f"{plugin!r}; a {kind} belongs to one plug-in: rename one or "
                          "disable a plug-in")
    found[name] = Declared(plugin, item)
