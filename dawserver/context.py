"""What a plug-in's hooks and route handlers receive: :class:`PluginContext`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pluggy
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import BaseModel, ValidationError

from collab.tokens import SECRET_FILE, TokenSigner
from database import Database, Session
from events import EventError
from jobs import JobRecord

from .account_mail import MAIL_ACCOUNT, mail_payload
from .account_mail import QUEUE as MAIL_QUEUE
from .background import Background
from .declarations import Event, Job, Permission
from .errors import PluginError


@dataclass(frozen=True)
class Declared:
    """A declaration and the plug-in that made it."""

    plugin: str
    item: Any


@dataclass
class PluginContext:
    """Settings, data directory, database and the plug-ins' declarations.

    ``permissions``, ``events`` and ``jobs`` map names to what the loaded plug-ins
    declared; ``identify(request)`` gives a request's principal (see
    :mod:`dawserver.authorization`); ``membership(group_id, person_id)`` a person's
    role in an organisation or team (set by the server when accounts are on; plug-ins
    ask :meth:`role_in`).
    """

    manager: pluggy.PluginManager
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    data_dir: Path = Path(".")
    db: Database | None = None
    config: Any = None
    state: dict[str, Any] = field(default_factory=dict)
    permissions: dict[str, Declared] = field(default_factory=dict)
    events: dict[str, Declared] = field(default_factory=dict)
    jobs: dict[str, Declared] = field(default_factory=dict)
    identify: Callable[[Any], Any] | None = None
    background: Background = field(default_factory=Background)
    membership: Callable[[str, str], Awaitable[str | None]] | None = None
    asset_file: Callable[[str, str], Awaitable[str | None]] | None = None
    #: ``await asset_link(account_id, asset_id, filename)``: a presigned download URL of an
    #: account's asset when object storage holds it (set by the server).
    asset_link: Callable[[str, str, str], Awaitable[str | None]] | None = None
    #: ``await owner_emails(account_id)``: the addresses of an account's owners (set by
    #: the server when accounts are on), for mail the platform sends them.
    owner_emails: Callable[[str], Awaitable[list[str]]] | None = None
    #: ``await admin_emails(account_id)``: the addresses of an account's owners and admins
    #: (set by the server when accounts are on), for mail about what admins manage.
    admin_emails: Callable[[str], Awaitable[list[str]]] | None = None
    #: ``await people_emails(account_id)``: the addresses of the people an account stands
    #: for (a person's own, or every member of an organisation or team; set by the server
    #: when accounts are on), e.g. to check that a notification goes to one of them.
    people_emails: Callable[[str], Awaitable[list[str]]] | None = None

    def settings_for(self, plugin: str) -> dict[str, Any]:
        """The settings mapping configured for ``plugin`` (empty if none)."""
        return self.settings.get(plugin, {})

    async def role_in(self, group_id: str, person_id: str) -> str | None:
        """``person_id``'s role in organisation or team ``group_id`` (``owner``, ``admin``,
        ``member``, ``viewer`` or a role a plug-in declared); their own account: ``owner``;
        None: not in it, or the server has no accounts. Read-only."""
        if not group_id or not person_id:
            return None
        if group_id == person_id:
            return "owner"
        if self.membership is None:
            return None
        return await self.membership(group_id, person_id)

    async def asset_path(self, account_id: str, asset_id: str) -> str | None:
        """The local file of a platform asset (``POST /projects/{id}/assets``) that belongs
        to one of ``account_id``'s projects; None: no such asset of that account, or a
        server that keeps no assets. Read-only: a plug-in never writes the file."""
        if self.asset_file is None:
            return None
        return await self.asset_file(account_id, asset_id)

    async def asset_url(self, account_id: str, asset_id: str, filename: str = ""
                        ) -> str | None:
        """A presigned URL a client may GET ``account_id``'s asset from for a while
        (``storage_options.presign_seconds``), when the assets are on object storage (S3):
        redirect a download there instead of streaming the file. None: the assets are on
        local disk (stream :meth:`asset_path`), or no such asset of that account."""
        if self.asset_link is None:
            return None
        return await self.asset_link(account_id, asset_id, filename)

    def derive_key(self, purpose: str, length: int = 32) -> bytes:
        """A key for ``purpose`` derived (HKDF-SHA256) from the server's secret in the
        data directory (made if absent); the secret itself stays in the core, and each
        purpose gets an unrelated key."""
        TokenSigner.from_data_dir(self.data_dir)
        secret = (Path(self.data_dir) / SECRET_FILE).read_text().strip().encode("ascii")
        return HKDF(algorithm=hashes.SHA256(), length=length, salt=None,
                    info=b"maxbooster plug-in key: " + purpose.encode()).derive(secret)

    def database(self) -> Database:
        """The started database; an error before the server started."""
        if self.db is None:
            raise PluginError("the database is not open yet; plug-ins use it once started")
        return self.db

    def permission(self, name: str) -> Permission | None:
        """The declared permission called ``name`` (None if nobody declares it)."""
        found = self.permissions.get(name)
        return None if found is None else found.item

    async def enqueue(self, name: str, payload: dict[str, Any] | BaseModel, *,
                      account_id: str, idempotency_key: str | None = None,
                      tx: Session | None = None) -> JobRecord:
        """Queue a job of the declared kind ``name`` (payload checked against its model).

        With ``tx`` the job is written in the caller's transaction; a repeated
        ``idempotency_key`` gives the job already queued back.
        """
        declared = self.jobs.get(name)
        if declared is None:
            raise PluginError(f"job {name!r} is not declared; a plug-in declares its jobs "
                              f"with the 'jobs' hook (declared: {sorted(self.jobs)})")
        job: Job = declared.item
        try:
            model = job.payload.model_validate(
                payload.model_dump() if isinstance(payload, BaseModel) else payload)
        except ValidationError as exc:
            raise PluginError(f"payload of job {name!r} does not match its model: "
                              f"{exc}") from exc
        queue = self.background.queue
        record = await queue.enqueue(name, model.model_dump(mode="json"), account_id=account_id,
                                     idempotency_key=idempotency_key, tx=tx)
        if tx is None:
            queue.wake(name)
        return record

    async def publish(self, tx: Session, name: str, payload: dict[str, Any] | BaseModel, *,
                      account_id: str) -> str:
        """Publish the declared event ``name`` inside ``tx``, the change it announces; its id.

        Every ``business_event`` hook hears it once ``tx`` has committed, at least once.
        """
        self._declared_event(name)
        try:
            return await self.background.bus.publish(tx, name, payload, account_id=account_id)
        except EventError as exc:
            raise PluginError(str(exc)) from exc

    async def announce(self, name: str, payload: dict[str, Any] | BaseModel, *,
                       account_id: str = "") -> str:
        """Publish the declared event ``name`` on its own (no change to commit with it)."""
        self._declared_event(name)
        try:
            return await self.background.bus.publish_now(name, payload, account_id=account_id)
        except EventError as exc:
            raise PluginError(str(exc)) from exc

    async def send_mail(self, to: str, subject: str, paragraphs: list[str], *, mail_id: str,
                        link: str = "", action: str = "", tx: Session | None = None) -> None:
        """Mail ``to`` through the platform's mail queue (SMTP, or the outbox without one).

        ``mail_id`` is the idempotency key: queueing the same id again sends nothing more,
        and a retried send keeps its ``Message-ID``. With ``tx`` the mail is queued in the
        caller's transaction.
        """
        payload = mail_payload("plugin", to, link=link, mail_id=mail_id, subject=subject,
                               paragraphs=[str(p) for p in paragraphs], action=action)
        queue = self.background.queue
        await queue.enqueue(MAIL_QUEUE, payload, account_id=MAIL_ACCOUNT,
                            idempotency_key=f"plugin/{mail_id}", tx=tx)
        if tx is None:
            queue.wake(MAIL_QUEUE)

    def _declared_event(self, name: str) -> Event:
        declared = self.events.get(name)
        if declared is None:
            raise PluginError(f"event {name!r} is not declared; a plug-in declares its "
                              f"events with the 'events' hook (declared: {sorted(self.events)})")
        return declared.item


def declare(found: dict[str, Declared], plugin: str, name: str, item: Permission | Event | Job,
            kind: str) -> None:
    """Record ``item`` as ``plugin``'s; a name belongs to one plug-in."""
    other = found.get(name)
    if other is not None and other.plugin != plugin:
        raise PluginError(f"{kind} {name!r} is declared by both {other.plugin!r} and "
                          f"{plugin!r}; a {kind} belongs to one plug-in: rename one or "
                          "disable a plug-in")
    found[name] = Declared(plugin, item)
