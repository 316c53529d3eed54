"""Errors of the event bus."""

from __future__ import annotations


class EventError(Exception):
    """An event is not declared, its payload does not match, or the bus is misused."""
