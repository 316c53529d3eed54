"""The HTTP answer for each :mod:`accounts` error (the router turns them into these)."""

from __future__ import annotations

import math

from accounts import errors as accounts

from .errors import (
    ApiError,
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    TooManyRequests,
    Unauthorized,
    Unprocessable,
)


def api_error(exc: accounts.AccountError) -> ApiError:
    """The :class:`ApiError` that answers ``exc``: its status, its message."""
    message = str(exc)
    if isinstance(exc, accounts.Throttled):
        wait = max(1, math.ceil(exc.retry_after))
        return TooManyRequests(message, headers={"Retry-After": str(wait)}, retry_after=wait)
    if isinstance(exc, accounts.AccountMoving):
        wait = max(1, math.ceil(exc.retry_after))
        return Conflict(message, headers={"Retry-After": str(wait)}, retry_after=wait)
    if isinstance(exc, accounts.InvalidCredentials):
        return Unauthorized(message)
    if isinstance(exc, accounts.WeakPassword | accounts.UnknownRegion):
        return Unprocessable(message)
    for kind, answer in ((accounts.NotFound, NotFound), (accounts.Conflict, Conflict),
                         (accounts.Forbidden, Forbidden), (accounts.LinkInvalid, BadRequest)):
        if isinstance(exc, kind):
            return answer(message)
    return BadRequest(message)
