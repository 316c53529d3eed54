"""The CLI's log output: plain text, or one JSON object a line carrying trace ids.

``dawserver --log-format json`` (or ``DAW_LOG_FORMAT=json``) writes every record as
``{"time", "level", "logger", "message"}`` plus ``trace_id`` and ``span_id`` (W3C hex)
when it was logged inside an active span, so a log line leads to its trace.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from opentelemetry import trace

#: The formats ``--log-format`` takes.
FORMATS = ("text", "json")
TEXT_FORMAT = "%(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record, with the active span's ids."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            entry["trace_id"] = format(context.trace_id, "032x")
            entry["span_id"] = format(context.span_id, "016x")
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: int, log_format: str = "text") -> None:
    """Send the process's logs to standard error at ``level`` in ``log_format``."""
    if log_format not in FORMATS:
        raise ValueError(f"log format {log_format!r} is unknown; use one of {FORMATS}")
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json"
                         else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level, handlers=[handler])
