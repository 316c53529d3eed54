"""Project audio on the desktop client: downloaded once from the server, then read locally.

A clip's ``source`` is an asset id (an older document: a path on the server); the client
fetches it from
``GET /projects/{id}/audio?source=...`` into a cache directory (named by a
hash of the source) and gives the engine a loader that reads the copy.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import aiohttp
import numpy as np

from dsp_core.audio_io import MAX_CHANNELS, load_source
from dsp_core.errors import AudioFileError
from dsp_core.session import Session
from dsp_core.sources import session_refs

log = logging.getLogger(__name__)


class SourceDownloadError(Exception):
    """The server would not give a source (the message says which and why)."""


class SourceCache:
    """Local copies of a project's audio sources."""

    def __init__(self, base_url: str, project_id: str, token: str, directory: Path) -> None:
        self.url = f"{base_url.rstrip('/')}/projects/{project_id}/audio"
        self.token = token
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.local: dict[str, Path] = {}

    def path_for(self, source: str) -> Path:
        """Where the copy of ``source`` lives (whether or not it is there yet)."""
        digest = hashlib.sha256(source.encode()).hexdigest()[:32]
        suffix = Path(source).suffix.lower() or ".audio"  # an asset id has none
        return self.directory / f"{digest}{suffix}"

    def missing(self, session: Session) -> list[str]:
        """Sources of ``session`` without a local copy: clips', convolution IRs', sampler
        zones' and the files lv2 effects' saved states name (what the engine loads)."""
        wanted = {ref.source for ref in session_refs(session)}
        found = []
        for source in sorted(wanted):
            path = self.path_for(source)
            if path.exists():
                self.local[source] = path
            else:
                found.append(source)
        return found

    async def fetch(self, session: Session, http: aiohttp.ClientSession) -> int:
        """Download every source of ``session`` not cached yet; returns how many."""
        todo = self.missing(session)
        for source in todo:
            path = self.path_for(source)
            part = path.with_suffix(path.suffix + ".part")
            params = {"source": source}
            headers = {"Authorization": f"Bearer {self.token}"}
            async with http.get(self.url, params=params, headers=headers) as response:
                if response.status != 200:
                    text = await response.text()
                    raise SourceDownloadError(f"cannot download {source}: HTTP "
                                              f"{response.status} {text}")
                with open(part, "wb") as out:
                    async for chunk in response.content.iter_chunked(1 << 16):
                        out.write(chunk)
            os.replace(part, path)
            self.local[source] = path
            log.info("downloaded %s", source)
        return len(todo)

    def loader(self, source: str, sample_rate: int,
               max_channels: int = MAX_CHANNELS) -> np.ndarray:
        """The engine's loader: read the local copy of ``source`` (``max_channels`` as in
        :func:`~dsp_core.audio_io.load_source`: a convolution's IR may have 4)."""
        path = self.local.get(source)
        if path is None:
            raise AudioFileError(f"{source}: not downloaded from the server yet")
        return load_source(path, sample_rate, max_channels)
