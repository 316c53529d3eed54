"""The server's errors: HTTP answers a route handler raises, and bad plug-in declarations.

A handler raises one of the :class:`ApiError` classes below; the router turns it into
a JSON ``{"error": message, ...}`` answer with the class's status. Each class is a
named HTTP status; messages say what was wrong and what to do.
"""

from __future__ import annotations

import errno
from http import HTTPStatus
from typing import Any

from .storage.base import StorageError, StorageUnavailable


class PluginError(Exception):
    """A plug-in could not be loaded, configured or run, or declared something invalid."""


class ApiError(Exception):
    """An HTTP error answer: ``{"error": message, **extra}`` with :attr:`status`."""

    status: HTTPStatus = HTTPStatus.BAD_REQUEST

    def __init__(self, message: str, *, headers: dict[str, str] | None = None,
                 **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra
        #: Headers of the answer (``Retry-After`` of a 429).
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """The JSON body of the answer."""
        return {"error": self.message, **self.extra}

    def problem(self) -> dict[str, Any]:
        """The answer as RFC 9457 problem details (``application/problem+json``)."""
        return problem_body(int(self.status), self.message, **self.extra)


class BadRequest(ApiError):
    """The request cannot be served as sent (400)."""

    status = HTTPStatus.BAD_REQUEST


class Unauthorized(ApiError):
    """No token, or one that is forged or expired (401)."""

    status = HTTPStatus.UNAUTHORIZED


class Forbidden(ApiError):
    """A valid token that does not hold the permission (403)."""

    status = HTTPStatus.FORBIDDEN


class NotFound(ApiError):
    """The thing named in the path does not exist (404)."""

    status = HTTPStatus.NOT_FOUND


class Conflict(ApiError):
    """The request clashes with the current state (409)."""

    status = HTTPStatus.CONFLICT


class Gone(ApiError):
    """The thing named in the path existed but is gone for good (410)."""

    status = HTTPStatus.GONE


class PreconditionFailed(ApiError):
    """An ``If-Match`` that no longer matches: someone changed it meanwhile (412)."""

    status = HTTPStatus.PRECONDITION_FAILED


class PayloadTooLarge(ApiError):
    """The request body is over a limit (413)."""

    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE


class UnsupportedMediaType(ApiError):
    """The request body is not in a format the route reads (415)."""

    status = HTTPStatus.UNSUPPORTED_MEDIA_TYPE


class Unprocessable(ApiError):
    """Well-formed input that fails validation or a check (422)."""

    status = HTTPStatus.UNPROCESSABLE_ENTITY


class TooManyRequests(ApiError):
    """Over a rate limit or a sign-in throttle: retry after ``Retry-After`` seconds (429)."""

    status = HTTPStatus.TOO_MANY_REQUESTS


class Unavailable(ApiError):
    """The server cannot serve this now (503)."""

    status = HTTPStatus.SERVICE_UNAVAILABLE


#: ``Retry-After`` seconds of a 503 while the database or the object store is unreachable.
RETRY_SOON_S = 5


def retry_soon() -> dict[str, str]:
    """The headers of a 503 worth retrying shortly (:data:`RETRY_SOON_S`)."""
    return {"Retry-After": str(RETRY_SOON_S)}


def storage_failed(exc: StorageError, doing: str = "") -> Unavailable:
    """The 503 for an object store that failed (``exc``) while ``doing`` something: worth
    retrying shortly (Retry-After) when it was out of reach, not when it refused the
    server's settings (credentials, bucket)."""
    retry = retry_soon() if isinstance(exc, StorageUnavailable) else {}
    return Unavailable(f"{doing}: {exc}" if doing else str(exc), headers=retry)


class InsufficientStorage(ApiError):
    """The server's disk is full: nothing was kept; try again once space is freed (507)."""

    status = HTTPStatus.INSUFFICIENT_STORAGE


#: SQLite's result code for "database or disk is full" (SQLITE_FULL).
_SQLITE_FULL = 13


def disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) says a disk or quota is full."""
    for _ in range(8):  # a short chain: never loops on a cyclic context
        if exc is None:
            return False
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if getattr(exc, "sqlite_errorcode", None) == _SQLITE_FULL:
            return True
        exc = exc.__cause__ or exc.__context__
    return False


#: Every status an :class:`ApiError` may answer with, for the OpenAPI document.
ERROR_STATUSES = tuple(sorted({cls.status for cls in (
    BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PayloadTooLarge,
    UnsupportedMediaType, Unprocessable, TooManyRequests, Unavailable,
    InsufficientStorage)}))

#: The media type of RFC 9457 problem details.
PROBLEM_JSON = "application/problem+json"
#: Where a problem's ``type`` points: the page that explains each status.
PROBLEM_TYPE = "https://maxbooster.studio/docs/public-api#problem-{status}"


def problem_body(status: int, detail: str, **extra: Any) -> dict[str, Any]:
    """RFC 9457 problem details: ``type``, ``title``, ``status``, ``detail`` and extensions."""
    return {"type": PROBLEM_TYPE.format(status=status), "title": HTTPStatus(status).phrase,
            "status": status, "detail": detail, **extra}


NO_TOKEN = (
    "no token given: this route needs a token: sign in, or pass ?token=... or "
    "'Authorization: Bearer ...' (an API key, 'dawserver token' or a project owner's token)"
)
BAD_TOKEN = "{reason}; get a token with 'dawserver token' or from a project owner"
NO_ACCOUNT = ("an administrator token acts for any account: name one with "
              "?account=<project id>")
SERVER_ONLY = ("{why}; {permission!r} is for server administrators: use a token made "
               "with 'dawserver token '*' --role owner'")
KEY_SCOPE = ("this API key lacks the scope {permission!r} (it holds: {scopes}); make a key "
             "with that scope")
PERMISSION_REFUSED = "this account lacks the permission {permission!r} needed here"
ROLE_TOO_LOW = ("role {role!r} may not use {permission!r}: it needs {minimum} or higher; "
                "ask a project owner for a token with that role")
INVALID_JSON = "request body is not valid JSON: {reason}; send a JSON object"
INVALID_INPUT = "invalid request: {fields}"
