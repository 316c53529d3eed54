"""Sparse fields: ``?fields=id,name`` answers only those fields of each resource.

``id`` is always kept. An unknown name answers 400 with the names the resource has.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from ..errors import BadRequest

UNKNOWN = "fields names {unknown}, which {model} does not have; choose from {known}"


def parse_fields(text: str | None, model: type[BaseModel]) -> frozenset[str] | None:
    """The field names ``text`` asks for, checked against ``model`` (None: every field)."""
    if text is None or not text.strip():
        return None
    wanted = {name.strip() for name in text.split(",") if name.strip()}
    known = set(model.model_fields)
    unknown = sorted(wanted - known)
    if unknown:
        raise BadRequest(UNKNOWN.format(unknown=unknown, model=model.__name__,
                                        known=sorted(known)))
    return frozenset(wanted | {"id"})


def sparse(data: dict[str, Any], fields: frozenset[str] | None) -> dict[str, Any]:
    """``data`` with only ``fields`` (all of it when None)."""
    if fields is None:
        return data
    return {name: value for name, value in data.items() if name in fields}
