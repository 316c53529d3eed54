"""One way for a plug-in to turn its domain's exceptions into HTTP errors.

A plug-in lists its rules once and decorates its handlers with the result::

    _api = map_errors(
        (NotFoundHere, NotFound),
        (CatalogueInvalid, lambda exc: Unprocessable(str(exc), fields=exc.issues)),
        ((QueryRefused, UnicodeDecodeError), BadRequest),
    )

    @_api
    async def get_beat(request: Request) -> Any: ...

The first rule whose classes match an exception decides; an exception no rule matches
goes on as it was. The HTTP error is raised ``from None``: the domain's traceback is
logged by nobody and shown to nobody.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from .declarations import Handler, Request
from .errors import ApiError

#: Exception classes, and what they become: an :class:`ApiError` class (given the
#: exception's message) or a function of the exception answering the error.
ErrorRule = tuple[type[BaseException] | tuple[type[BaseException], ...],
                  type[ApiError] | Callable[[Any], ApiError]]


def map_errors(*rules: ErrorRule) -> Callable[[Handler], Handler]:
    """A decorator for route handlers turning exceptions into HTTP errors by ``rules``
    (first match wins)."""
    for classes, _ in rules:
        for cls in classes if isinstance(classes, tuple) else (classes,):
            if not (isinstance(cls, type) and issubclass(cls, BaseException)):
                raise TypeError(f"map_errors: {cls!r} is not an exception class")

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def wrapped(request: Request) -> Any:
            try:
                return await handler(request)
            except Exception as exc:
                for classes, answer in rules:
                    if isinstance(exc, classes):
                        error = (answer(str(exc)) if isinstance(answer, type)
                                 else answer(exc))
                        raise error from None
                raise

        return wrapped

    return decorate
