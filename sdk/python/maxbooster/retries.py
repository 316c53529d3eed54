"""When to retry a call and how long to wait: ``Retry-After`` first, else backoff."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

#: Answers worth retrying: rate-limited, and the server or a proxy in trouble.
RETRY_STATUSES = frozenset({429, 502, 503, 504})


@dataclass(frozen=True)
class Retries:
    """``attempts`` in all (1: no retry); exponential backoff with full jitter from
    ``base_s`` up to ``cap_s`` when the answer says nothing; ``Retry-After`` (seconds or
    an HTTP date) is honoured up to ``max_wait_s``."""

    attempts: int = 4
    base_s: float = 0.5
    cap_s: float = 30.0
    max_wait_s: float = 120.0

    def wait(self, attempt: int, retry_after: str | None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        told = parse_retry_after(retry_after)
        if told is not None:
            return min(told, self.max_wait_s)
        return random.uniform(0, min(self.cap_s, self.base_s * 2 ** (attempt - 1)))


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds (delay-seconds or an HTTP date); None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None
