"""The plug-in API's one error-mapping decorator: rules in order, classes or functions,
unmatched exceptions untouched, bad rules refused when declared."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from dawserver.plugin_api import (
    BadRequest,
    Conflict,
    NotFound,
    Request,
    Unprocessable,
    map_errors,
)


class Missing(Exception):
    pass


class Gone(Missing):
    pass


class Invalid(Exception):
    def __init__(self, message: str, fields: list[str]) -> None:
        super().__init__(message)
        self.fields = fields


api = map_errors(
    (Gone, Conflict),  # more specific first: the first rule that matches decides
    (Missing, NotFound),
    (Invalid, lambda exc: Unprocessable(f"fix {exc}", fields=exc.fields)),
    ((KeyError, UnicodeDecodeError), BadRequest),
)


def answer(error: BaseException) -> Any:
    @api
    async def handler(request: Request) -> Any:
        """A handler that fails."""
        raise error

    assert handler.__doc__ == "A handler that fails." and handler.__name__ == "handler"
    return asyncio.run(handler(None))  # type: ignore[arg-type]


def test_each_rule_maps_its_classes_in_order() -> None:
    with pytest.raises(NotFound, match="no beat") as found:
        answer(Missing("no beat"))
    assert found.value.__cause__ is None and found.value.__suppress_context__
    with pytest.raises(Conflict):
        answer(Gone("sold"))
    with pytest.raises(Unprocessable, match="fix bad bpm") as invalid:
        answer(Invalid("bad bpm", ["bpm"]))
    assert invalid.value.body() == {"error": "fix bad bpm", "fields": ["bpm"]}
    with pytest.raises(BadRequest):
        answer(KeyError("x"))


def test_unmatched_exceptions_and_answers_pass_through() -> None:
    with pytest.raises(ZeroDivisionError):
        answer(ZeroDivisionError())

    @api
    async def fine(request: Request) -> Any:
        return {"ok": True}

    assert asyncio.run(fine(None)) == {"ok": True}  # type: ignore[arg-type]


def test_a_rule_that_is_no_exception_class_is_refused() -> None:
    with pytest.raises(TypeError, match="not an exception class"):
        map_errors((str, NotFound))  # type: ignore[arg-type]
