"""The database layer's one exception."""

from __future__ import annotations


class DatabaseError(Exception):
    """A database could not be opened, migrated or queried; the message says which and why."""
