"""HTTP and a job: a server administrator moves an account to another data region.

``POST /admin/accounts/{account_id}/region-move`` with ``{"region": "eu"}`` begins the
move (:class:`accounts.moving.AccountMover`: from then on writes to the account answer
409 with ``Retry-After``) and queues an ``accounts.move`` job that copies, switches and
cleans, reporting its progress; ``GET`` on the same path says where the account lives
and how its move goes. The job is the server's (:data:`MOVE_ACCOUNT`, the main
database's queue), not the moved account's. A job that dies (a crashed server) is
claimed again when its lease runs out and resumes the move from its recorded step;
asking again answers the same job. Without data regions both answer 409 saying so.
While a hook copies files (audio on object storage, :mod:`dawserver.object_moves`) the
job's note says how many files and bytes are done.
"""

from __future__ import annotations

import contextlib
from typing import Any

from aiohttp import web
from pydantic import Field

from accounts.moving import AccountMover
from jobs import FINISHED, JobContext, Permanent, QueueSettings

from .accounts_setup import ACCOUNT_MOVER
from .keys import ACCOUNTS, BACKGROUND
from .plugin_api import Conflict, Model, Permission, Reply, Request, Role, Route, Scope

#: The job queue the moves run on.
QUEUE = "accounts.move"
#: A move copies whole accounts: few at once, a long lease, retried from its step.
SETTINGS = QueueSettings(max_attempts=10, backoff_base=5.0, backoff_cap=300.0, lease_s=300.0,
                         concurrency=1)
SERVER_ACCOUNTS = Permission(
    "server.accounts", "move accounts between data regions", Role.OWNER, Scope.SERVER)
PERMISSIONS = [SERVER_ACCOUNTS]
PATH = "/admin/accounts/{account_id}/region-move"
#: The moves' jobs are the server's, not the moved account's (whose rows they move):
#: they stay in the main database's queue whatever the account's region.
MOVE_ACCOUNT = "server:accounts.move"


class MoveIn(Model):
    """Where to move the account."""

    region: str = Field(min_length=1, max_length=32)


class RegionMove(Model):
    """Where an account lives and how its move goes."""

    account_id: str
    region: str
    moving: bool
    target: str | None = None
    step: str | None = None
    job_id: str | None = None
    state: str | None = None
    progress: float | None = None
    note: str | None = None


def _mover(app: web.Application) -> AccountMover:
    mover = app.get(ACCOUNT_MOVER)
    if mover is None:
        raise Conflict("no data regions are configured on this server; there is nowhere "
                       "to move an account to")
    return mover


class MoveJob:
    """The ``accounts.move`` queue's handler: carry one move to its end."""

    def __init__(self, app: web.Application) -> None:
        self.app = app

    async def __call__(self, job: JobContext) -> dict[str, Any]:
        mover = self.app.get(ACCOUNT_MOVER)
        if mover is None:
            raise Permanent("no data regions are configured on this server")
        account_id = job.payload["account_id"]
        if await mover.move_of(account_id) is None:
            return {"region": mover.store.region_of(account_id), "note": "already moved"}
        reached = [0.0]

        def report(fraction: float, note: str) -> None:
            reached[0] = fraction
            job.progress(fraction, note)

        with contextlib.ExitStack() as watching:
            for hook in mover.hooks:  # hooks that copy files say how far (same fraction)
                watch = getattr(hook, "watch", None)
                if watch is not None:
                    watching.enter_context(watch(
                        account_id, lambda note: job.progress(reached[0], note)))
            done = await mover.run(account_id, report)
        return {"region": done.target}


async def _view(request: Request, account_id: str) -> RegionMove:
    mover = _mover(request.app)
    move = await mover.move_of(account_id)
    jobs = await request.app[BACKGROUND].queue.find(account_id=MOVE_ACCOUNT, queue=QUEUE,
                                                    newest_first=True)
    job = next((j for j in jobs if j.payload.get("account_id") == account_id), None)
    # the rows switch a moment before the job ends: it moves until both are done, so
    # whoever waits for ``moving`` to clear reads the job's end (state, progress) too
    job_running = job is not None and job.state not in FINISHED
    return RegionMove(
        account_id=account_id, region=mover.store.region_of(account_id),
        moving=move is not None or job_running, target=move.target if move else None,
        step=move.step if move else None, job_id=job.id if job else None,
        state=job.state if job else None, progress=job.progress if job else None,
        note=job.note if job else None)


async def start_move(request: Request) -> Reply:
    """Begin moving the account to another data region; its job does the copying.

    Writes to the account are refused (409 with ``Retry-After``) until it is done.
    Asking again while it moves answers the same move; to another region, 409.
    """
    account_id = request.params["account_id"]
    target = request.body.region
    mover = _mover(request.app)
    await request.app[ACCOUNTS].store.require_account(account_id)
    move = await mover.begin(account_id, target)
    await request.app[BACKGROUND].queue.enqueue(
        QUEUE, {"account_id": account_id}, account_id=MOVE_ACCOUNT,
        idempotency_key=f"move-{account_id}-{move.started_at!r}")
    return Reply(await _view(request, account_id), status=202)


async def get_move(request: Request) -> RegionMove:
    """Where the account lives, and its move under way (with its job's progress)."""
    account_id = request.params["account_id"]
    await request.app[ACCOUNTS].store.require_account(account_id)
    return await _view(request, account_id)


def setup_account_moves(app: web.Application) -> None:
    """Serve the ``accounts.move`` queue."""
    app[BACKGROUND].register(QUEUE, MoveJob(app), SETTINGS)


ROUTES = [
    Route(method="POST", path=PATH, handler=start_move, permission=SERVER_ACCOUNTS,
          body=MoveIn, response=RegionMove, status=202),
    Route(method="GET", path=PATH, handler=get_move, permission=SERVER_ACCOUNTS,
          response=RegionMove),
]
