"""One OpenTelemetry client span per database call (a no-op until a provider is set).

:func:`traced` wraps the query methods of each back-end: the span is named by the
statement's first word (``SELECT``, ``INSERT`` …) or by the raw call (``write``), and
carries ``db.system.name`` and the statement text (placeholders only, never values).
The server configures the tracer provider (``dawserver.tracing``); libraries such as
this one use only the OpenTelemetry API.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from opentelemetry import trace
from opentelemetry.trace import SpanKind

T = TypeVar("T")
#: Longest statement text kept on a span.
STATEMENT_CHARS = 1000

_tracer = trace.get_tracer(__name__)


def _operation(sql: Any) -> str:
    words = sql.split(None, 1) if isinstance(sql, str) else []
    return words[0].upper() if words else "call"


def traced(call: str | None = None
           ) -> Callable[[Callable[..., Awaitable[T]]], Callable[..., Awaitable[T]]]:
    """Decorate a query method ``(self, sql, *args)`` (or a raw call named ``call``)."""
    def decorate(method: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
        @functools.wraps(method)
        async def wrapper(self: Any, *args: Any, **kwargs: Any) -> T:
            name = call or _operation(args[0] if args else "")
            attributes = {"db.system.name": self.dialect}
            if call is None and args and isinstance(args[0], str):
                attributes["db.query.text"] = args[0][:STATEMENT_CHARS]
            with _tracer.start_as_current_span(f"db {name}", kind=SpanKind.CLIENT,
                                               attributes=attributes):
                return await method(self, *args, **kwargs)

        return wrapper

    return decorate
