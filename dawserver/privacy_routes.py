"""Privacy routes: a person's export of their data, and the erasure of their account.

- ``POST /me/export`` (signed-in session): queue an export job; 202 with the job.
- ``GET /me/export/{job_id}``: its state and progress (0..1, with a note); once done,
  when its archive expires (``expires_at``: ``config.export_keep_seconds`` after), and
  then ``expired``.
- ``GET /me/export/{job_id}/download``: the zip, once done; 410 once expired.
- ``POST /me/delete`` ``{"password": ...}``: erase the account. The password is
  asked again (a person without one must have signed in within the last ten
  minutes); 409 while they are the last owner of an organisation. The account
  stops at once (sessions end, keys are revoked, nobody can sign in as them)
  and the erasure job starts; 202 with the job and its status URL.
- ``GET /privacy/erasures/{job_id}``: the erasure job's state and progress. It
  is public (the person has no session any more): the job id, 128 random bits,
  is the only key, and the answer names nobody.

A job of someone else answers 404, as a missing one. The security log records
``export`` (under the person) and ``deletion`` (under their pseudonym).
"""

from __future__ import annotations

import contextlib
import math
import time
from typing import Any

from aiohttp import web
from pydantic import Field

from accounts.erasure import DELETION, EXPORT, AccountErasure
from jobs import DEAD, DONE, QUEUED, RETRYING, RUNNING, JobRecord, UnknownJob

from .auth_routes import _session, actor_of, session_cookie
from .errors import Gone, TooManyRequests
from .file_answer import FileAnswer
from .keys import ACCOUNTS, BACKGROUND
from .permissions import ACCOUNT_SELF
from .plugin_api import (
    PUBLIC,
    Conflict,
    Empty,
    Media,
    Model,
    NotFound,
    Reply,
    Request,
    Route,
)
from .privacy_erase import QUEUE as ERASE_QUEUE
from .privacy_erase import setup_privacy_erase
from .privacy_export import (
    EXPORT_EXPIRY,
    ExportExpiry,
    archive_path,
    export_key,
    legacy_archive_path,
    legacy_export_key,
    setup_privacy_export,
)
from .privacy_export import QUEUE as EXPORT_QUEUE
from .storage import ObjectNotFound
from .storage.service import account_objects, object_response

ZIP = "application/zip"
#: Exports a person may start in any 24 hours (one runs at a time).
EXPORTS_PER_DAY = 3
DAY_S = 86_400.0
#: The API's names of the job states.
STATES = {"queued": "queued", "retrying": "queued", "running": "running", DONE: DONE,
          DEAD: "failed", "cancelled": "cancelled"}
#: The state an export shows once its archive is past keeping.
EXPIRED = "expired"


class PrivacyJob(Model):
    """An export or erasure job: state, progress (0..1) and the step it is at."""

    id: str
    kind: str
    state: str
    progress: float
    step: str
    error: str
    created_at: float
    finished_at: float | None
    url: str
    download: str | None = None
    #: An export's: when its archive is deleted (once done; None before).
    expires_at: float | None = None


class Confirm(Model):
    """The password, asked again (a person without one leaves it out)."""

    password: str | None = Field(None, max_length=1024)


#: What the public erasure status says of a failure (the details stay in the server log).
ERASURE_FAILED = "the erasure hit an error and is retried; the operators have the details"


def _view(record: JobRecord, kind: str) -> PrivacyJob:
    state = STATES.get(record.state, record.state)
    failed = state == "failed" or record.state == RETRYING
    url = (f"/me/export/{record.id}" if kind == "export"
           else f"/privacy/erasures/{record.id}")
    error = record.last_error if failed else ""
    if failed and kind == DELETION:  # a public route: the error text could name someone
        error = ERASURE_FAILED
    return PrivacyJob(id=record.id, kind=kind, state=state, progress=round(record.progress, 4),
                      step=record.note, error=error,
                      created_at=record.created_at, finished_at=record.finished_at, url=url,
                      download=f"{url}/download" if kind == "export" and state == DONE
                      else None)


def _export_view(request: Request, record: JobRecord) -> PrivacyJob:
    """An export as its person sees it: when its archive expires, and once it has, the
    ``expired`` state without a download link."""
    expiry = request.app[EXPORT_EXPIRY]
    view = _view(record, "export")
    view.expires_at = expiry.expires_at(record)
    if expiry.expired(record):
        view.state, view.download = EXPIRED, None
    return view


def _expired_error(record: JobRecord, expiry: ExportExpiry) -> Gone:
    """The answer to the download of an expired export."""
    at = expiry.expires_at(record)
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(at))
    return Gone(f"export {record.id} expired at {when}: archives are kept "
                f"{expiry.keep_s / 86_400:g} days, then deleted; ask for a new export "
                "with POST /me/export", expired_at=at)


async def _export(request: Request) -> JobRecord:
    """The caller's export job the path names (404 for anyone else's)."""
    person_id = _session(request).person_id
    with contextlib.suppress(UnknownJob):
        record = await request.app[BACKGROUND].queue.get(person_id, request.params["job_id"])
        if record.queue == EXPORT_QUEUE:
            return record
    raise NotFound(f"you have no export {request.params['job_id']!r}")


async def start_export(request: Request) -> Reply:
    """Queue an export of everything the platform holds about you (a zip).

    One export runs at a time: asking again while one is under way answers that one.
    At most :data:`EXPORTS_PER_DAY` start in any 24 hours (429 with ``Retry-After``):
    each reads every row and file of the person, which is heavy. Two requests racing
    get the same job (its idempotency key names the person's newest export so far).
    """
    person_id = _session(request).person_id
    queue, now = request.app[BACKGROUND].queue, time.time()
    earlier = await queue.find(account_id=person_id, queue=EXPORT_QUEUE, newest_first=True)
    under_way = [r for r in earlier if r.state in (QUEUED, RUNNING, RETRYING)]
    if under_way:
        return Reply(_export_view(request, under_way[0]), status=202)
    today = sorted(r.created_at for r in earlier if r.created_at > now - DAY_S)
    if len(today) >= EXPORTS_PER_DAY:
        wait = max(1, math.ceil(today[-EXPORTS_PER_DAY] + DAY_S - now))
        raise TooManyRequests(f"you have asked for {EXPORTS_PER_DAY} exports in the last 24 "
                              f"hours; the next one can start in {wait} s (download the "
                              "last one meanwhile)", headers={"Retry-After": str(wait)},
                              retry_after=wait)
    # racing requests see the same newest export, so they share a key; a count would
    # fall back to one already used once finished jobs are purged (and failed ones kept)
    after = earlier[0].id if earlier else "none"
    record = await queue.enqueue(EXPORT_QUEUE, {"person_id": person_id}, account_id=person_id,
                                 idempotency_key=f"export-after-{after}")
    actor = actor_of(request)
    await request.app[ACCOUNTS].store.audit(person_id, person_id, EXPORT,
                                            address=actor.address, detail={"job": record.id})
    return Reply(_export_view(request, record), status=202)


async def get_export(request: Request) -> PrivacyJob:
    """Your export's state and progress, and when its archive expires."""
    return _export_view(request, await _export(request))


async def download_export(request: Request) -> web.StreamResponse:
    """Your export's zip, once the job is done and until it expires (410 after)."""
    record = await _export(request)
    expiry = request.app[EXPORT_EXPIRY]
    if expiry.expired(record):
        raise _expired_error(record, expiry)
    if record.state != DONE:
        raise Conflict(f"export {record.id} is {STATES.get(record.state, record.state)}, not "
                       f"done; poll GET /me/export/{record.id}")
    objects = account_objects(request.app, record.account_id)
    name = f"maxbooster-export-{record.id}.zip"
    if objects.redirects:  # a presigned URL of the object store
        try:
            key = export_key(record.account_id, record.id)
            if not await objects.exists(key):
                key = legacy_export_key(record.id)  # made before archives were per person
            return await object_response(request.app, objects, key, filename=name,
                                         content_type=ZIP)
        except ObjectNotFound:  # the router answers an unreachable store (503, Retry-After)
            raise NotFound(f"the archive of export {record.id} is gone; ask for a new "
                           "export") from None
    path = archive_path(request.app, record.account_id, record.id)
    if not path.is_file():
        path = legacy_archive_path(request.app, record.account_id, record.id)
    if not path.is_file():
        raise NotFound(f"the archive of export {record.id} is gone; ask for a new export")
    return FileAnswer(path, headers={
        "Content-Type": ZIP, "Content-Disposition": f'attachment; filename="{name}"'})


async def delete_me(request: Request) -> Reply:
    """Erase your account: the password again, then everything of yours goes."""
    session = _session(request)
    service = request.app[ACCOUNTS]
    erasure = AccountErasure(service)
    person = await service.store.require_account(session.person_id)
    await erasure.confirm(person, request.body.password, session)
    queue, queued = request.app[BACKGROUND].queue, []

    async def queue_erasure(tx: Any, pseudonym: str) -> None:
        queued.append(await queue.enqueue(ERASE_QUEUE, {"person_id": person.account_id},
                                          account_id=pseudonym,
                                          idempotency_key=person.account_id, tx=tx))

    await erasure.close(person.account_id, queue_erasure)
    queue.wake(ERASE_QUEUE)
    return Reply(_view(queued[0], DELETION), status=202,
                 headers={"Set-Cookie": session_cookie(request, "", 0)})


async def get_erasure(request: Request) -> PrivacyJob:
    """An erasure's state and progress (its id is its key)."""
    found = await request.app[BACKGROUND].queue.find(queue=ERASE_QUEUE,
                                                     ids=[request.params["job_id"]], limit=1)
    if not found:
        raise NotFound(f"there is no erasure {request.params['job_id']!r}")
    return _view(found[0], DELETION)


def setup_privacy(app: web.Application) -> None:
    """Serve the export and erasure queues on the one job queue."""
    setup_privacy_export(app, app[BACKGROUND])
    setup_privacy_erase(app, app[BACKGROUND])


EXPORT_JOB = "/me/export/{job_id}"

ROUTES = [
    Route(method="POST", path="/me/export", handler=start_export, permission=ACCOUNT_SELF,
          body=Empty, response=PrivacyJob, status=202),
    Route(method="GET", path=EXPORT_JOB, handler=get_export, permission=ACCOUNT_SELF,
          response=PrivacyJob),
    Route(method="GET", path=f"{EXPORT_JOB}/download", handler=download_export,
          permission=ACCOUNT_SELF, response=Media(ZIP)),
    Route(method="POST", path="/me/delete", handler=delete_me, permission=ACCOUNT_SELF,
          body=Confirm, response=PrivacyJob, status=202),
    Route(method="GET", path="/privacy/erasures/{job_id}", handler=get_erasure,
          permission=PUBLIC, response=PrivacyJob),
]
