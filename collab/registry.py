"""The rooms a server holds in memory: loading, capacity and idle unloading.

A room is loaded on first use (once, even when many clients open it at the
same moment), and unloaded ``idle_seconds`` after its last peer leaves; the
room persists a final snapshot before it goes.  At most ``max_documents``
rooms stay in memory: opening another unloads the longest-idle room without
peers, or fails with :class:`CapacityError` when every room is in use.

A project deleted from the store is unloaded at once (:meth:`RoomRegistry.close_deleted`):
its peers are closed with 4411 and nothing is written; opening it again fails with
:class:`~collab.errors.ProjectNotFound`, since a room is loaded only for a project the
store holds.

A room can be held closed while its document moves (:meth:`RoomRegistry.held`): it is
stored and unloaded (a load under way is waited for first), and opening it meanwhile
fails with :class:`~collab.errors.ProjectBusy`, so nothing is written to the old place.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from . import metrics
from .errors import CapacityError, CollabError, ProjectBusy, ProjectNotFound
from .protocol import CloseCode
from .room import DocumentType, Room, RoomLimits
from .store import Store
from .tokens import Role

log = logging.getLogger(__name__)


@dataclass
class RegistryLimits:
    """How many documents may stay in memory and for how long when idle."""

    max_documents: int = 64
    idle_seconds: float = 30.0


class RoomRegistry:
    """Loads, shares and unloads :class:`Room` objects (an async context manager)."""

    def __init__(self, store: Store, limits: RegistryLimits | None = None,
                 room_limits: RoomLimits | None = None, *,
                 document_type: DocumentType | None = None) -> None:
        self.store = store
        self.document_type = document_type
        self.limits = limits or RegistryLimits()
        self.room_limits = room_limits or RoomLimits()
        self.rooms: dict[str, Room] = {}
        self._loading: dict[str, asyncio.Task[Room]] = {}
        self._users: dict[str, int] = {}
        self._idle_since: dict[str, float] = {}
        self._unloaders: dict[str, asyncio.Task[None]] = {}
        self._room_hooks: list[Callable[[Room], None]] = []
        self._unload_hooks: list[Callable[[Room], None]] = []
        #: project id -> why its room is held closed (:meth:`held`)
        self._held: dict[str, str] = {}
        self._lock = asyncio.Lock()
        self._started = False

    async def __aenter__(self) -> RoomRegistry:
        if self._started:
            raise CollabError("room registry is already started")
        self._started = True
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def stop(self) -> None:
        """Persist and unload every room."""
        self._started = False
        for task in self._unloaders.values():
            task.cancel()
        self._unloaders.clear()
        for project_id in list(self.rooms):
            await self._unload(project_id)

    def on_room_loaded(self, hook: Callable[[Room], None]) -> None:
        """Call ``hook(room)`` for every room loaded from now on (e.g. to attach an engine)."""
        self._room_hooks.append(hook)

    def on_room_unloaded(self, hook: Callable[[Room], None]) -> None:
        """Call ``hook(room)`` after a room has been persisted and dropped from memory."""
        self._unload_hooks.append(hook)

    @contextlib.asynccontextmanager
    async def use(self, project_id: str) -> AsyncIterator[Room]:
        """Hold ``project_id``'s room loaded while the block runs (one "user" of it)."""
        room = await self._acquire(project_id)
        try:
            yield room
        finally:
            self._release(project_id)

    @contextlib.asynccontextmanager
    async def held(self, project_id: str, why: str) -> AsyncIterator[None]:
        """Keep ``project_id``'s room closed while the block runs: a load under way is
        waited for, the room is stored and unloaded (its peers told to reconnect), and
        opening it meanwhile raises :class:`ProjectBusy` saying ``why``."""
        if project_id in self._held:
            raise ProjectBusy(f"project {project_id!r} is held already: {self._held[project_id]}")
        self._held[project_id] = why
        try:
            loading = self._loading.get(project_id)
            if loading is not None:
                await asyncio.gather(asyncio.shield(loading), return_exceptions=True)
            unloader = self._unloaders.pop(project_id, None)
            if unloader is not None:
                unloader.cancel()
            await self._unload(project_id, close_code=CloseCode.PROJECT_BUSY)
            yield
        finally:
            del self._held[project_id]

    def _refuse_if_held(self, project_id: str) -> None:
        why = self._held.get(project_id)
        if why is not None:
            raise ProjectBusy(f"project {project_id!r} cannot be opened now: {why}; try again "
                              "in a few seconds")

    def loaded(self, project_id: str) -> Room | None:
        """The room of ``project_id`` if it is in memory."""
        return self.rooms.get(project_id)

    async def _acquire(self, project_id: str) -> Room:
        if not self._started:
            raise CollabError("room registry is not started")
        self._refuse_if_held(project_id)
        self._users[project_id] = self._users.get(project_id, 0) + 1
        unloader = self._unloaders.pop(project_id, None)
        if unloader is not None:
            unloader.cancel()
        try:
            room = self.rooms.get(project_id)
            if room is not None and room.diverged:
                await self._unload(project_id)
                room = None
            if room is not None:
                return room
            task = self._loading.get(project_id)
            if task is None:
                self._refuse_if_held(project_id)  # held while a diverged room unloaded
                task = asyncio.create_task(self._load(project_id))
                self._loading[project_id] = task
            return await asyncio.shield(task)
        except BaseException:
            self._release(project_id)
            raise

    async def _load(self, project_id: str) -> Room:
        try:
            if await self.store.get_project(project_id) is None:
                raise ProjectNotFound(f"no project {project_id!r} in the store")
            async with self._lock:
                await self._make_room_for_one()
                room = Room(project_id, self.store, self.room_limits,
                            document_type=self.document_type)
                await room.start()
                self.rooms[project_id] = room
                metrics.DOCUMENTS_LOADED.inc()
            for hook in self._room_hooks:
                hook(room)
            log.info("loaded project %s (%d updates logged)", project_id, room.last_seq)
            return room
        finally:
            self._loading.pop(project_id, None)

    async def _make_room_for_one(self) -> None:
        while len(self.rooms) >= self.limits.max_documents:
            idle = [pid for pid in self.rooms if self._users.get(pid, 0) == 0]
            if not idle:
                raise CapacityError(
                    f"{len(self.rooms)} documents are open and in use "
                    f"(max_documents={self.limits.max_documents})")
            oldest = min(idle, key=lambda pid: self._idle_since.get(pid, 0.0))
            task = self._unloaders.pop(oldest, None)
            if task is not None:
                task.cancel()
            await self._unload(oldest)

    def _release(self, project_id: str) -> None:
        count = self._users.get(project_id, 0) - 1
        if count > 0:
            self._users[project_id] = count
            return
        self._users.pop(project_id, None)
        self._idle_since[project_id] = time.monotonic()
        if project_id in self.rooms and self._started:
            self._unloaders[project_id] = asyncio.create_task(self._unload_later(project_id))

    async def _unload_later(self, project_id: str) -> None:
        await asyncio.sleep(self.limits.idle_seconds)
        self._unloaders.pop(project_id, None)
        if self._users.get(project_id, 0) == 0:
            await self._unload(project_id)

    async def _unload(self, project_id: str, *,
                      close_code: CloseCode = CloseCode.SERVER_SHUTDOWN) -> None:
        room = self.rooms.pop(project_id, None)
        self._idle_since.pop(project_id, None)
        if room is not None:
            metrics.DOCUMENTS_LOADED.dec()
            await room.stop(close_code=close_code)
            for hook in self._unload_hooks:
                hook(room)
            log.info("unloaded project %s", project_id)

    async def close_deleted(self, project_id: str) -> int:
        """Unload the room of ``project_id``, deleted from the store: its peers are closed
        (4411) and nothing more is written. A load under way is waited for and unloaded
        too. Returns how many connections were closed."""
        loading = self._loading.get(project_id)
        if loading is not None:
            await asyncio.gather(asyncio.shield(loading), return_exceptions=True)
        unloader = self._unloaders.pop(project_id, None)
        if unloader is not None:
            unloader.cancel()
        room = self.rooms.pop(project_id, None)
        self._idle_since.pop(project_id, None)
        if room is None:
            return 0
        metrics.DOCUMENTS_LOADED.dec()
        closed = len(room.peers)
        await room.close_deleted()
        for hook in self._unload_hooks:
            hook(room)
        log.info("unloaded deleted project %s (%d connections closed)", project_id, closed)
        return closed

    def disconnect_user(self, project_id: str, user: str, code: int, reason: str) -> int:
        """Close every live connection of ``user`` to ``project_id``."""
        room = self.rooms.get(project_id)
        return room.disconnect_user(user, code, reason) if room else 0

    def set_role(self, project_id: str, user: str, role: Role) -> int:
        """Give ``user``'s live connections to ``project_id`` the role ``role``."""
        room = self.rooms.get(project_id)
        return room.set_role(user, role) if room else 0
