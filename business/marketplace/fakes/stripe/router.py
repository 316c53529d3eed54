"""A tiny method-and-path router for the fake's endpoints (``/v1/customers/{id}``)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from business.marketplace.fakes.stripe.fake import FakeStripe
    from business.marketplace.fakes.stripe.state import Call

Handler = Callable[..., dict[str, Any]]


class Router:
    """Routes of one resource module; handlers are ``(fake, call, **path_ids) -> object``."""

    def __init__(self) -> None:
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []

    def add(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        regex = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern) + "$")

        def register(handler: Handler) -> Handler:
            self.routes.append((method, regex, handler))
            return handler

        return register

    def get(self, pattern: str) -> Callable[[Handler], Handler]:
        return self.add("GET", pattern)

    def post(self, pattern: str) -> Callable[[Handler], Handler]:
        return self.add("POST", pattern)

    def delete(self, pattern: str) -> Callable[[Handler], Handler]:
        return self.add("DELETE", pattern)

    def extend(self, other: Router) -> None:
        self.routes.extend(other.routes)

    def match(self, method: str, path: str) -> tuple[Handler, dict[str, str]] | None:
        for verb, regex, handler in self.routes:
            found = regex.match(path)
            if found and verb == method:
                return handler, found.groupdict()
        return None

    def dispatch(self, fake: FakeStripe, call: Call) -> dict[str, Any]:
        from business.marketplace.fakes.stripe.protocol import StripeFault

        found = self.match(call.method, call.path)
        if found is None:
            raise StripeFault(f"Unrecognized request URL ({call.method}: {call.path}). "
                              "Please see https://stripe.com/docs or we can help at "
                              "https://support.stripe.com/.", status=404)
        handler, ids = found
        return handler(fake, call, **ids)
