"""What a store connector receives and returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from business.distribution.ddex import Party


@dataclass(frozen=True)
class PackageFile:
    """A file of a delivery: its name in the package, local path and checksum."""

    name: str
    path: str
    sha256: str


@dataclass(frozen=True)
class DeliveryPackage:
    """One message for one store: the ERN XML and the files it references."""

    message_id: str
    release_id: str
    store: str
    action: str
    xml: bytes
    files: list[PackageFile] = field(default_factory=list)


@dataclass(frozen=True)
class Receipt:
    """The store's answer to a completed delivery."""

    message_id: str
    duplicate: bool
    detail: str = ""


class StoreConnector(Protocol):
    """A store: a name, its DDEX party, and a delivery method.

    ``deliver`` must be idempotent per ``package.message_id`` (stores deduplicate
    by message id) and raises ``DeliveryError`` (``retryable`` or not) on failure.
    A connector whose protocol can tell may also have ``async accepted(message_id)
    -> bool``; the pipeline asks it before re-sending a message that may have arrived.
    """

    name: str
    party: Party

    async def deliver(self, package: DeliveryPackage) -> Receipt:
        """Send the package; a receipt once the store has accepted it."""
        ...
