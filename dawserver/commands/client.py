"""``dawserver client``: the desktop client's command (:mod:`dawclient.cli`) under this CLI."""

from __future__ import annotations

from dawclient.cli import client

__all__ = ["client"]
