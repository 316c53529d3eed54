"""The interface a sample catalogue implements, and the local library's implementation.

A remote catalogue (a Splice-like service) plugs in by implementing
:class:`SampleProvider`; the server asks each registered provider and tags every hit
with the provider's name. Fetching returns a local file the preview and the project
ingest read, so a remote provider downloads (and caches) before answering.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from .library import SampleLibrary
from .records import Sample
from .search import SampleQuery, SearchResult


class SampleProvider(ABC):
    """A source of samples: search it, describe one sample, fetch its audio file."""

    name: str

    @abstractmethod
    async def search(self, account_id: str, query: SampleQuery) -> SearchResult:
        """One ranked page of the account's matches."""

    @abstractmethod
    async def get(self, account_id: str, sample_id: str) -> Sample:
        """One sample; :class:`~samples.errors.SampleNotFound` when the account has none."""

    @abstractmethod
    async def fetch(self, account_id: str, sample_id: str) -> str:
        """A local path of the sample's audio (downloaded first for a remote catalogue)."""


class LocalProvider(SampleProvider):
    """The account's own indexed folders (:class:`~samples.library.SampleLibrary`)."""

    name = "local"

    def __init__(self, library: SampleLibrary) -> None:
        self.library = library

    async def search(self, account_id: str, query: SampleQuery) -> SearchResult:
        return (await self.library.searchable()).search(account_id, query)

    async def get(self, account_id: str, sample_id: str) -> Sample:
        return await self.library.get(account_id, sample_id)

    async def fetch(self, account_id: str, sample_id: str) -> str:
        return (await self.library.get(account_id, sample_id)).path
