"""Python client of the Max Booster Studio public API (``/api/v1``).

:class:`Client` (sync) and :class:`AsyncClient` (asyncio), both on httpx, share one
retry policy (:class:`Retries`: 429 and 5xx answers and connection errors, waiting what
``Retry-After`` says) and send an ``Idempotency-Key`` with every POST, so a retried
create never creates twice. Lists come back as :class:`Page` s; ``iter_projects``
walks every page.
"""

from .client import AsyncClient, Client
from .errors import ApiError
from .models import DayUsage, KeyUsage, Page, Project, UsageReport
from .retries import Retries

__all__ = ["ApiError", "AsyncClient", "Client", "DayUsage", "KeyUsage", "Page", "Project",
           "Retries", "UsageReport"]
