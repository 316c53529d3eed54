"""Stripe's wire protocol as the fake speaks it: nested form keys, typed parameters and
error objects.

Stripe takes ``application/x-www-form-urlencoded`` bodies (and query strings for GET)
whose keys nest with brackets: ``metadata[order]=7``, ``line_items[0][price_data][currency]
=usd``, ``expand[]=latest_charge`` (stripe-python writes ``expand[0]``). :func:`parse_form`
turns such pairs into dicts and lists. A :class:`StripeFault` is an error answer in
Stripe's shape (``{"error": {"type", "code", "decline_code", "param", "message"}}``) with
the HTTP status Stripe uses for it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_PART = re.compile(r"\[([^\[\]]*)\]")

#: HTTP status per Stripe error type (``invalid_request_error`` is 400 or 404).
STATUS = {"invalid_request_error": 400, "card_error": 402, "idempotency_error": 400,
          "api_error": 500, "rate_limit_error": 429, "authentication_error": 401}


class StripeFault(Exception):
    """An error answer in Stripe's shape; ``status`` is its HTTP status."""

    def __init__(self, message: str, *, type: str = "invalid_request_error",  # noqa: A002
                 code: str | None = None, param: str | None = None,
                 decline_code: str | None = None, status: int | None = None,
                 extra: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.decline_code = decline_code
        self.status = status or STATUS.get(type, 400)
        self.extra = extra or {}
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"type": self.type, "message": self.message}
        for key in ("code", "param", "decline_code"):
            if getattr(self, key) is not None:
                error[key] = getattr(self, key)
        if self.code:
            error["doc_url"] = f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
        error.update(self.extra)
        return {"error": error}


def missing(kind: str, object_id: str, param: str | None = None) -> StripeFault:
    """Stripe's 404 for an id it does not know (or that another account owns)."""
    return StripeFault(f"No such {kind}: '{object_id}'", code="resource_missing", param=param,
                       status=404)


def parse_form(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Nest bracketed form keys: ``a[b][0][c]=x`` becomes ``{"a": {"b": [{"c": "x"}]}}``.

    Numeric parts (and ``[]``) make lists; a key that mixes shapes is refused like Stripe
    refuses it, naming the parameter.
    """
    root: dict[str, Any] = {}
    for key, value in pairs:
        match = _KEY.match(key)
        if match is None:
            raise StripeFault(f"Invalid parameter name: {key}", param=key)
        parts = [match.group(1), *_PART.findall(match.group(2))]
        node: Any = root
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            nxt_list = not last and (parts[depth + 1] == "" or parts[depth + 1].isdigit())
            child: Any = value if last else ([] if nxt_list else {})
            if isinstance(node, list):
                index = len(node) if part == "" else int(part)
                if index > len(node):  # stripe-python sends dense indices; fill the gaps
                    node.extend({} if not nxt_list else [] for _ in range(index - len(node)))
                if index == len(node):
                    node.append(child)
                elif last:
                    node[index] = child
                node = node[index]
            else:
                if last:
                    node[part] = value
                else:
                    node = node.setdefault(part, child)
                    if not isinstance(node, list if nxt_list else dict):
                        raise StripeFault(f"Invalid value for {parts[0]}: mixed nesting",
                                          param=key)
    return root


def integer(params: dict[str, Any], name: str, *, required: bool = False,
            minimum: int | None = None, maximum: int | None = None,
            default: int | None = None) -> int | None:
    """An integer parameter, refused as Stripe does (``Invalid integer: abc``)."""
    raw = params.get(name)
    if raw is None or raw == "":
        if required:
            raise StripeFault(f"Missing required param: {name}.", code="parameter_missing",
                              param=name)
        return default
    try:
        value = int(str(raw))
    except ValueError:
        raise StripeFault(f"Invalid integer: {raw}", code="parameter_invalid_integer",
                          param=name) from None
    if minimum is not None and value < minimum:
        raise StripeFault(f"This value must be greater than or equal to {minimum}.",
                          code="parameter_invalid_integer", param=name)
    if maximum is not None and value > maximum:
        raise StripeFault(f"This value must be less than or equal to {maximum}.",
                          code="parameter_invalid_integer", param=name)
    return value


def required(params: dict[str, Any], name: str) -> Any:
    """A parameter Stripe requires, or its ``parameter_missing`` error."""
    value = params.get(name)
    if value is None or value == "":
        raise StripeFault(f"Missing required param: {name}.", code="parameter_missing",
                          param=name)
    return value


def boolean(params: dict[str, Any], name: str, default: bool = False) -> bool:
    """A boolean form value (``true``/``false``)."""
    raw = params.get(name)
    if raw is None:
        return default
    if str(raw).lower() not in ("true", "false"):
        raise StripeFault(f"Invalid boolean: {raw}", param=name)
    return str(raw).lower() == "true"


def currency(params: dict[str, Any], name: str = "currency") -> str:
    """A three-letter ISO currency code, lower-cased as Stripe answers it."""
    value = str(required(params, name)).lower()
    if not re.fullmatch(r"[a-z]{3}", value):
        raise StripeFault(f"Invalid currency: {value}. Stripe currently supports these "
                          "currencies: usd, eur, gbp, ...", param=name)
    return value


def metadata(params: dict[str, Any], old: dict[str, str] | None = None) -> dict[str, str]:
    """Merge ``metadata[...]`` into ``old`` (an empty value deletes a key, as in Stripe)."""
    merged = dict(old or {})
    raw = params.get("metadata")
    if raw is None:
        return merged
    if raw == "":
        return {}
    if not isinstance(raw, dict):
        raise StripeFault("Invalid object", param="metadata")
    for key, value in raw.items():
        if len(key) > 40:
            raise StripeFault("Metadata keys can be at most 40 characters.",
                              param=f"metadata[{key}]")
        if value == "":
            merged.pop(key, None)
        else:
            merged[key] = str(value)[:500]
    if len(merged) > 50:
        raise StripeFault("You can have at most 50 metadata keys.", param="metadata")
    return merged


def as_list(value: Any) -> list[Any]:
    """A list parameter sent as ``x[0]=..`` / ``x[]=..`` (dict of indices tolerated)."""
    if value is None or value == "":
        return []
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        return [value[k] for k in sorted(value, key=lambda k: int(k) if k.isdigit() else 0)]
    return [value]
