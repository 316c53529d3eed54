"""Exceptions of the collaboration package."""

from __future__ import annotations

#: What reading an entry a peer wrote into the document in another shape raises
#: (``int("abc")``, ``int(inf)``, a missing key, ``.get`` of a string or a list).
MALFORMED = (AttributeError, KeyError, OverflowError, TypeError, ValueError)


class CollabError(Exception):
    """Base class of every error raised by :mod:`collab`."""


class MalformedMessage(CollabError):
    """A WebSocket message that does not follow the y-websocket protocol."""


class AuthError(CollabError):
    """A missing, forged, expired or revoked token, or a role that does not allow the action."""


class StoreError(CollabError):
    """The durable store could not be opened or written."""


class SeqConflict(StoreError):
    """An append hit sequence numbers another server process has already written."""


class ProjectNotFound(CollabError):
    """No project with the requested id exists in the store."""


class ProjectBusy(CollabError):
    """The project's room is held closed for a moment (its document is moving to another
    data region): try again after :attr:`retry_after` seconds."""

    def __init__(self, message: str, retry_after: float = 5.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ProjectChanged(CollabError):
    """A conditional write found the project changed since the caller read it."""


class ProjectDeleted(StoreError, ProjectNotFound):
    """A write to (or a catch-up of) a project the store no longer holds: it was deleted.

    Nothing of it is written: an append or a compaction that comes after the
    deletion never brings the project's rows back.
    """


class SchemaError(CollabError):
    """A document or an edit that does not follow the project document schema."""


class CapacityError(CollabError):
    """The server holds as many documents in memory as it is allowed to."""
