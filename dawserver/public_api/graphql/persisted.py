"""Persisted queries by SHA-256 hash (Apollo's automatic persisted queries protocol).

A client sends ``extensions: {"persistedQuery": {"version": 1, "sha256Hash": H}}``
without ``query``; the server answers the query it keeps under ``H``, or the error
``PersistedQueryNotFound`` (code ``PERSISTED_QUERY_NOT_FOUND``), and the client
sends the query with the hash once, which the server checks and keeps. Queries are
kept per server process, the most recent :data:`CAPACITY` of them.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Any

CAPACITY = 2000
NOT_FOUND = "PersistedQueryNotFound"


class PersistedQueryError(Exception):
    """A persisted query that cannot be used; ``code`` goes in the GraphQL error."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


def sha256(query: str) -> str:
    """The hex SHA-256 of ``query`` (the hash a client sends)."""
    return hashlib.sha256(query.encode()).hexdigest()


class PersistedQueries:
    """The queries kept by hash, least recently used dropped first."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self.capacity = capacity
        self._queries: OrderedDict[str, str] = OrderedDict()

    def resolve(self, query: str | None, extensions: dict[str, Any] | None) -> str | None:
        """The query to run: ``query`` itself, or the one kept under the sent hash."""
        persisted = (extensions or {}).get("persistedQuery")
        if persisted is None:
            return query
        if not isinstance(persisted, dict) or persisted.get("version") != 1 or not isinstance(
                persisted.get("sha256Hash"), str):
            raise PersistedQueryError('persistedQuery must be {"version": 1, "sha256Hash": '
                                      '"<hex SHA-256 of the query>"}',
                                      "PERSISTED_QUERY_INVALID")
        digest = persisted["sha256Hash"].lower()
        if query is None:
            found = self._queries.get(digest)
            if found is None:
                raise PersistedQueryError(NOT_FOUND, "PERSISTED_QUERY_NOT_FOUND")
            self._queries.move_to_end(digest)
            return found
        if sha256(query) != digest:
            raise PersistedQueryError("provided sha256Hash does not match the query; send the "
                                      "hex SHA-256 of the query text as sent",
                                      "PERSISTED_QUERY_HASH_MISMATCH")
        self._queries[digest] = query
        self._queries.move_to_end(digest)
        while len(self._queries) > self.capacity:
            self._queries.popitem(last=False)
        return query
