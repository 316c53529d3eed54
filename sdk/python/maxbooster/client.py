"""The sync and async clients: one request plan, two transports (httpx).

Every call is planned once (:class:`Call`: method, path, query, body, headers) and
turned into a typed answer once (``decode``); :class:`Client` and :class:`AsyncClient`
only send it, retrying what :class:`~.retries.Retries` allows. Every POST carries an
``Idempotency-Key`` (yours, or a fresh UUID per call), so a retry of a create replays
the first answer instead of creating again.

A retry after a *lost* answer (the connection broke after the request was sent) may meet
the first attempt's own effect: a DELETE then answers 404 and a PATCH with ``If-Match``
answers 412. Such an answer is taken as success when it is explained by the lost attempt
(:attr:`Call.lost_statuses`): a 404 of a retried DELETE means deleted, and a 412 of a
retried rename is checked with a GET (the project has the new name: success).
Ids go into paths percent-encoded, so an id with ``/``, ``..`` or ``?`` cannot change
the endpoint.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx

from .errors import ApiError
from .models import Page, Project, UsageReport
from .retries import RETRY_STATUSES, Retries

T = TypeVar("T")
V1 = "/api/v1"
USER_AGENT = "maxbooster-python/0.1.0"


@dataclass
class Call(Generic[T]):
    """One planned request and how its JSON answer becomes ``T``."""

    method: str
    path: str
    decode: Callable[[Any], T]
    params: dict[str, Any] = field(default_factory=dict)
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    #: Error statuses that, on a retry after a lost answer, may be the lost attempt's
    #: own effect; then ``confirm`` (a follow-up call, or None) and ``confirmed`` (its
    #: answer → this call's answer, None when it is not confirmed) decide.
    lost_statuses: tuple[int, ...] = ()
    confirm: Call[Any] | None = None
    confirmed: Callable[[Any], T | None] = lambda _: None


def _project_path(project_id: str) -> str:
    return f"{V1}/projects/{quote(project_id, safe='')}"


#: Transport errors raised before the request could reach the server.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def _page(data: Any) -> Page[Project]:
    return Page([Project.from_json(p) for p in data["data"]], data.get("next_cursor"))


def _clean(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}


class Plans:
    """The API's calls as :class:`Call` s (shared by both clients)."""

    @staticmethod
    def list_projects(limit: int = 50, cursor: str | None = None, **filters: Any
                      ) -> Call[Page[Project]]:
        return Call("GET", f"{V1}/projects", _page,
                    params=_clean({"limit": limit, "cursor": cursor, **filters}))

    @staticmethod
    def get_project(project_id: str) -> Call[Project]:
        return Call("GET", _project_path(project_id), Project.from_json)

    @staticmethod
    def create_project(name: str, idempotency_key: str | None = None) -> Call[Project]:
        return Call("POST", f"{V1}/projects", Project.from_json, json={"name": name},
                    headers={"Idempotency-Key": idempotency_key or str(uuid.uuid4())})

    @staticmethod
    def rename_project(project_id: str, name: str, if_match: str | None = None
                       ) -> Call[Project]:
        return Call("PATCH", _project_path(project_id), Project.from_json,
                    json={"name": name}, headers={"If-Match": if_match} if if_match else {},
                    lost_statuses=(412,) if if_match else (),
                    confirm=Plans.get_project(project_id),
                    confirmed=lambda found: found if found.name == name.strip() else None)

    @staticmethod
    def delete_project(project_id: str, if_match: str | None = None) -> Call[bool]:
        return Call("DELETE", _project_path(project_id), lambda d: bool(d["deleted"]),
                    headers={"If-Match": if_match} if if_match else {},
                    lost_statuses=(404,), confirmed=lambda _: True)

    @staticmethod
    def usage(days: int = 30, account: str | None = None) -> Call[UsageReport]:
        return Call("GET", f"{V1}/usage", UsageReport.from_json,
                    params=_clean({"days": days, "account": account}))


def _finish(call: Call[T], response: httpx.Response) -> T:
    if response.is_success:
        return call.decode(response.json())
    try:
        problem = response.json()
    except ValueError:
        problem = {"detail": response.text[:500]}
    raise ApiError(response.status_code, problem if isinstance(problem, dict) else {})


def _retryable(call: Call[Any]) -> bool:
    """GET, PATCH, DELETE are safe to repeat; a POST only with its Idempotency-Key."""
    return call.method != "POST" or "Idempotency-Key" in call.headers


class Client:
    """The sync client: ``Client(base_url, api_key)``; a context manager closing its pool.

    Each method raises :class:`ApiError` on an error answer (after the retries
    :class:`Retries` allows).
    """

    def __init__(self, base_url: str, api_key: str, *, retries: Retries | None = None,
                 timeout: float = 30.0, transport: httpx.BaseTransport | None = None) -> None:
        self.retries = retries or Retries()
        self._http = httpx.Client(base_url=base_url, timeout=timeout, transport=transport,
                                  headers={"Authorization": f"Bearer {api_key}",
                                           "User-Agent": USER_AGENT})

    def send(self, call: Call[T]) -> T:
        """Send ``call``, retrying as allowed; its decoded answer."""
        lost = False
        for attempt in range(1, self.retries.attempts + 1):
            last = attempt == self.retries.attempts or not _retryable(call)
            try:
                response = self._http.request(call.method, call.path, params=call.params,
                                              json=call.json, headers=call.headers)
            except httpx.TransportError as exc:
                if last:
                    raise
                lost = lost or not isinstance(exc, _NOT_SENT)
                time.sleep(self.retries.wait(attempt, None))
                continue
            if response.status_code in RETRY_STATUSES and not last:
                time.sleep(self.retries.wait(attempt, response.headers.get("Retry-After")))
                continue
            if lost and response.status_code in call.lost_statuses:
                found = self.send(call.confirm) if call.confirm is not None else None
                done = call.confirmed(found)
                if done is not None:
                    return done
            return _finish(call, response)
        raise AssertionError("unreachable")

    def list_projects(self, limit: int = 50, cursor: str | None = None, **filters: Any
                      ) -> Page[Project]:
        """One page of the projects you may open (filters: ``role``, ``name_contains``,
        ``created_after``, ``created_before``)."""
        return self.send(Plans.list_projects(limit, cursor, **filters))

    def get_project(self, project_id: str) -> Project:
        """One project."""
        return self.send(Plans.get_project(project_id))

    def create_project(self, name: str, idempotency_key: str | None = None) -> Project:
        """A new project (retried safely under ``idempotency_key``, a fresh one if None)."""
        return self.send(Plans.create_project(name, idempotency_key))

    def rename_project(self, project_id: str, name: str, if_match: str | None = None
                       ) -> Project:
        """Rename; with ``if_match`` (an ETag) only if unchanged since (else 412)."""
        return self.send(Plans.rename_project(project_id, name, if_match))

    def delete_project(self, project_id: str, if_match: str | None = None) -> bool:
        """Delete for good."""
        return self.send(Plans.delete_project(project_id, if_match))

    def usage(self, days: int = 30, account: str | None = None) -> UsageReport:
        """The account's keys' usage per day (needs ``account.admin``)."""
        return self.send(Plans.usage(days, account))

    def iter_projects(self, page_size: int = 200, **filters: Any) -> Iterator[Project]:
        """Every project, page after page."""
        cursor = None
        while True:
            page = self.send(Plans.list_projects(page_size, cursor, **filters))
            yield from page.data
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncClient:
    """The asyncio client: the same methods as :class:`Client`, awaited; ``async with``."""

    def __init__(self, base_url: str, api_key: str, *, retries: Retries | None = None,
                 timeout: float = 30.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.retries = retries or Retries()
        self._http = httpx.AsyncClient(base_url=base_url, timeout=timeout, transport=transport,
                                       headers={"Authorization": f"Bearer {api_key}",
                                                "User-Agent": USER_AGENT})

    async def send(self, call: Call[T]) -> T:
        """Send ``call``, retrying as allowed; its decoded answer."""
        lost = False
        for attempt in range(1, self.retries.attempts + 1):
            last = attempt == self.retries.attempts or not _retryable(call)
            try:
                response = await self._http.request(call.method, call.path, params=call.params,
                                                    json=call.json, headers=call.headers)
            except httpx.TransportError as exc:
                if last:
                    raise
                lost = lost or not isinstance(exc, _NOT_SENT)
                await asyncio.sleep(self.retries.wait(attempt, None))
                continue
            if response.status_code in RETRY_STATUSES and not last:
                await asyncio.sleep(self.retries.wait(attempt,
                                                      response.headers.get("Retry-After")))
                continue
            if lost and response.status_code in call.lost_statuses:
                found = await self.send(call.confirm) if call.confirm is not None else None
                done = call.confirmed(found)
                if done is not None:
                    return done
            return _finish(call, response)
        raise AssertionError("unreachable")

    async def list_projects(self, limit: int = 50, cursor: str | None = None, **filters: Any
                      ) -> Page[Project]:
        """One page of the projects you may open (filters: ``role``, ``name_contains``,
        ``created_after``, ``created_before``)."""
        return await self.send(Plans.list_projects(limit, cursor, **filters))

    async def get_project(self, project_id: str) -> Project:
        """One project."""
        return await self.send(Plans.get_project(project_id))

    async def create_project(self, name: str, idempotency_key: str | None = None) -> Project:
        """A new project (retried safely under ``idempotency_key``, a fresh one if None)."""
        return await self.send(Plans.create_project(name, idempotency_key))

    async def rename_project(self, project_id: str, name: str, if_match: str | None = None
                       ) -> Project:
        """Rename; with ``if_match`` (an ETag) only if unchanged since (else 412)."""
        return await self.send(Plans.rename_project(project_id, name, if_match))

    async def delete_project(self, project_id: str, if_match: str | None = None) -> bool:
        """Delete for good."""
        return await self.send(Plans.delete_project(project_id, if_match))

    async def usage(self, days: int = 30, account: str | None = None) -> UsageReport:
        """The account's keys' usage per day (needs ``account.admin``)."""
        return await self.send(Plans.usage(days, account))

    async def iter_projects(self, page_size: int = 200, **filters: Any
                            ) -> AsyncIterator[Project]:
        """Every project, page after page."""
        cursor = None
        while True:
            page = await self.send(Plans.list_projects(page_size, cursor, **filters))
            for project in page.data:
                yield project
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

