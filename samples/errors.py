"""Errors of the sample library."""

from __future__ import annotations


class SampleError(Exception):
    """Base class of sample library errors."""


class SampleNotFound(SampleError):
    """No sample with that id in the account's libraries."""


class BadQuery(SampleError, ValueError):
    """A search or preview parameter is invalid (the message says how to fix it)."""
