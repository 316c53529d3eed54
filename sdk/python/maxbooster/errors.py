"""The error a call raises: the server's problem details, kept whole."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A non-2xx answer: ``status``, the problem's ``title`` and ``detail``, and the rest
    of it in ``problem`` (e.g. ``etag`` on 412)."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status, self.problem = status, problem
        self.title = str(problem.get("title", ""))
        self.detail = str(problem.get("detail") or problem.get("error") or "")
        super().__init__(f"{status} {self.title}: {self.detail}".strip())
