"""The desktop client: joins a project like any Yjs peer, renders and plays it locally.

``dawserver client URL --project ID --token T`` (see :mod:`dawserver.commands.client`).
"""

from .session import ClientOptions, DesktopClient

__all__ = ["ClientOptions", "DesktopClient"]
