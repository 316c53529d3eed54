"""An event as subscribers receive it, and the typed declaration of an event name."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel


@dataclass(frozen=True)
class EventType:
    """An event name and the pydantic model its payload must match."""

    name: str
    payload: type[BaseModel]
    description: str = ""


@dataclass(frozen=True)
class Envelope:
    """One published event: its id (the same on every delivery), account and payload."""

    id: str
    name: str
    account_id: str
    payload: dict[str, Any]
    created_at: float

    def to_json(self) -> dict[str, Any]:
        """The envelope as JSON-able fields (what a transport carries)."""
        return {"id": self.id, "name": self.name, "account_id": self.account_id,
                "payload": self.payload, "created_at": self.created_at}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Envelope:
        """An envelope from :meth:`to_json`'s fields."""
        return cls(str(data["id"]), str(data["name"]), str(data["account_id"]),
                   dict(data["payload"]), float(data["created_at"]))
