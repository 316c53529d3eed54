"""The desktop client: joins a project like any Yjs peer, renders and plays it locally.

``dawclient URL --project ID --token T`` (see :mod:`dawclient.cli`; ``dawserver client``
is the same command). It speaks to the server only over HTTP and the collab protocol:
it imports ``collab`` and ``dsp_core``, never ``dawserver``. With ``--controls`` it reads
fader moves from standard input and writes automation while playing (:mod:`.controls`).
"""

from .session import ClientOptions, DesktopClient

__all__ = ["ClientOptions", "DesktopClient"]
