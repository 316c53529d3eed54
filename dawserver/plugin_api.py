"""The plug-in API: the one module a plug-in imports, and the core's own features too.

A plug-in marks its hook functions with :data:`hookimpl` (as datasette plug-ins
use ``datasette.hookimpl``) and declares what it contributes with the typed
declarations re-exported here: :class:`Permission` constants, :class:`Route` s
with request and answer models, :class:`Migration` s (the database layer's own
:class:`database.Migration`, usually read from the plug-in's ``migrations/*.sql``
files with :func:`load_migrations`), :class:`Worker` s,
:class:`Page` s (a browser page and its built files, served by the core),
:class:`Job` s (run by the one job queue, :mod:`jobs`: a handler gets a
:class:`JobContext` and may raise :class:`Permanent` or :class:`Retry`; the
:class:`JobQueue` itself is ``context.background.queue``, and
:func:`backoff_delay` its backoff with jitter) and
:class:`Event` s (published through the one event bus, :mod:`events`). Route
handlers raise the errors below (:class:`NotFound`, :class:`Conflict`...) and
receive a :class:`Request`, and answer a file from disk with a :class:`FileReply`
(streamed, with ETags and ranges; its ``on_sent`` hears how much of the file went out,
a :class:`FileSent`; :func:`if_range_holds` and :class:`Preconditions` tell beforehand
what it will send); :func:`map_errors` makes the one decorator that turns a
plug-in's own exceptions into those errors; :func:`allows` tells whether the caller
holds a permission the route did not require (to show them what they may do).

A plug-in serves part of the public REST API with its ``public_routes`` hook: routes
declared relative to ``/api/v1``, whose resources derive from :class:`PublicResource`,
whose lists take a :class:`PublicListing` query (one resource a :class:`PublicOne`)
and whose handlers answer with :func:`answer_page` and :func:`answer_one` (signed
cursors, sparse fields, ETags); the key scope is the route's permission. What a
test-mode key makes there (``request.test_mode``) the plug-in marks a sandbox object
with :func:`mark_sandbox`, and :func:`in_sandbox` tells its workers to simulate that
object's side effects (stores, money, networks).

A person's data reaches every plug-in through two hooks: ``account_export``
(the plug-in's parts of the person's export archive) and ``account_erased``
(forget the person; records the law makes the plug-in keep name them by the
pseudonym instead, with :class:`Pseudonymiser` replacing every mention).

A plug-in that withdraws a forgotten grant at its platform queues the job with
:func:`queue_withdrawal` and, when the platform does not confirm, tells the account's
owners and admins with :func:`mail_each_once` and :func:`unconfirmed_withdrawal`.

A plug-in's own extension points are hook specifications in the plug-in, marked
with :data:`hookspec` and returned by its ``hookspecs`` hook.

The hook specifications follow; see docs/plugins.md for the whole contract.
"""

from __future__ import annotations

from typing import Any

import pluggy

from accounts.pseudonymise_rows import move_account_rows, pseudonymise_mentions
from accounts.pseudonyms import Pseudonymiser
from collab.tokens import Role
from database import Migration, group_commit, load_migrations
from events import Envelope
from jobs import (
    JobCancelled,
    JobContext,
    JobQueue,
    JobRecord,
    Permanent,
    QueueSettings,
    Retry,
    backoff_delay,
)

from .authorization import allows
from .client_address import limited_client
from .context import PluginContext
from .declarations import (
    JSON_BODY_LIMIT,
    PUBLIC,
    Empty,
    ErrorBody,
    Event,
    FileReply,
    FileSent,
    Handler,
    Job,
    Media,
    Model,
    Page,
    Permission,
    Principal,
    Query,
    Reply,
    Request,
    Route,
    Scope,
    Sunset,
    Worker,
)
from .error_mapping import ErrorRule, map_errors
from .errors import (
    ApiError,
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    PluginError,
    TooManyRequests,
    Unauthorized,
    Unavailable,
    Unprocessable,
    UnsupportedMediaType,
)
from .file_answer import Preconditions, if_range_holds
from .grant_revocation import (
    SendMail,
    mail_each_once,
    queue_withdrawal,
    unconfirmed_withdrawal,
)
from .public_api.contract import Listing as PublicListing
from .public_api.contract import One as PublicOne
from .public_api.contract import Resource as PublicResource
from .public_api.contract import (
    answer_one,
    answer_page,
    answer_seeked,
    in_sandbox,
    key_sandbox,
    mark_sandbox,
    page_after,
    rfc3339,
    sandbox_ids,
)

PROJECT = "maxbooster"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

__all__ = [
    "JSON_BODY_LIMIT", "PROJECT", "PUBLIC", "ApiError", "BadRequest", "Conflict", "Empty",
    "Envelope", "ErrorBody", "ErrorRule", "Event", "FileReply", "FileSent", "Forbidden",
    "Handler", "Job",
    "JobCancelled", "JobContext",
    "JobQueue", "JobRecord", "Media", "Migration", "Model", "NotFound", "Page", "PayloadTooLarge",
    "Permanent", "Permission", "PluginContext", "PluginError", "Preconditions", "Principal",
    "Pseudonymiser",
    "PublicListing", "PublicOne", "PublicResource", "answer_one", "answer_page", "rfc3339",
    "answer_seeked", "in_sandbox", "key_sandbox", "mark_sandbox", "page_after", "sandbox_ids",
    "QueueSettings", "Query", "Reply", "Request", "Retry", "Role", "Route", "Scope", "SendMail",
    "Sunset", "TooManyRequests", "Unauthorized",
    "Unavailable", "Unprocessable", "UnsupportedMediaType", "Worker", "allows", "backoff_delay",
    "group_commit", "hookimpl", "hookspec", "if_range_holds", "limited_client",
    "load_migrations",
    "mail_each_once", "map_errors", "move_account_rows", "pseudonymise_mentions",
    "queue_withdrawal", "unconfirmed_withdrawal",
]


@hookspec
def plugin_info() -> dict[str, str]:
    """Name, version and one-line description of the plug-in."""


@hookspec
def hookspecs() -> list[Any]:
    """Modules or classes holding the plug-in's own hook specifications (extension points)."""


@hookspec
def migrations() -> list[Migration]:
    """Database migrations the plug-in needs, applied once in version order."""


@hookspec
def permissions() -> list[Permission]:
    """Permissions the plug-in's routes require (declare each as a module constant)."""


@hookspec(firstresult=True)
def permission_allowed(principal: Principal, permission: Permission) -> bool | None:
    """Whether ``principal`` holds this plug-in's ``permission``; None: the roles decide."""


@hookspec
def routes(context: PluginContext) -> list[Route]:
    """HTTP routes served under the app, each with its permission and models."""


@hookspec
def public_routes(context: PluginContext) -> list[Route]:
    """Routes of the public REST API, paths relative to ``/api/v1`` (``/releases``)."""


@hookspec
def pages(context: PluginContext) -> list[Page]:
    """Browser pages the plug-in ships: a path for signed-in people and its built files."""


@hookspec
def host_page(context: PluginContext) -> Handler | None:
    """An async ``handler(request)`` for ``GET /`` on hosts the plug-in serves (a seller's
    custom domain, by the ``Host`` header): a :class:`Reply` of ``text/html``, or None for
    a host it does not serve (then the next plug-in's, at last the app's own page)."""


@hookspec
def workers(context: PluginContext) -> list[Worker]:
    """Long-running coroutines to run while the server is up (cancelled on shutdown)."""


@hookspec
def jobs() -> list[Job]:
    """Kinds of durable job the plug-in queues and runs."""


@hookspec
def events() -> list[Event]:
    """Business events the plug-in publishes (``context.publish``), with payload models."""


@hookspec
def startup(context: PluginContext) -> Any:
    """Called once after migrations and before workers start; may return an awaitable."""


@hookspec
def project_rendered(
    context: PluginContext, account_id: str, project_id: str, path: str,
    metadata: dict[str, Any],
) -> None:
    """React to a project rendered to the audio file at ``path`` (document hook)."""


@hookspec
def project_deleted(context: PluginContext, account_id: str, project_id: str) -> None:
    """Forget project ``project_id``: an owner deleted it (or its owner was erased).

    Delete what the plug-in keeps for that project alone (a record of its renders,
    files made from it). ``account_id`` is the account that owned it ("" for a
    project made without accounts). May run again for the same project (a retried
    deletion): it must be idempotent. May return an awaitable.
    """


@hookspec
def business_event(context: PluginContext, name: str, payload: dict[str, Any]) -> None:
    """Observe a published event (e.g. "presave.release_day"); raise to have it retried.

    Each implementing plug-in is its own subscriber of the event bus: it hears
    every event at least once, ``payload["event_id"]`` telling a repeat apart.
    """


@hookspec
def account_export(context: PluginContext, account_id: str) -> dict[str, Any] | None:
    """What the plug-in holds about person ``account_id``: ``{part: JSON-able or bytes}``.

    Each part becomes ``<plug-in>/<part>.json`` of the person's export archive (bytes:
    ``<plug-in>/<part>`` as they are). Never include secrets or other people's data.
    May return an awaitable.
    """


@hookspec
def account_erased(context: PluginContext, account_id: str, pseudonym: str,
                   names: list[str]) -> None:
    """Forget person ``account_id`` (their display name and addresses are ``names``).

    Delete what is theirs alone; in records the law requires to keep, name them by
    ``pseudonym`` (``Pseudonymiser(account_id, tuple(names), pseudonym)`` replaces
    every mention). Runs in the erasure job before the core deletes the account,
    and again if the job is retried: it must be idempotent. May return an awaitable;
    raise to have the job retried.
    """
