"""Structured logs with structlog, for Meterline's own lines and every library's.

:func:`configure_logging` installs one handler on the root logger whose formatter is
structlog's ``ProcessorFormatter``: a line logged through ``structlog.get_logger`` and a line
of uvicorn, SQLAlchemy, Dagster's libraries or anything on the standard ``logging`` module go
through the same processors and come out the same way: one JSON object per line (or a
readable console line when stderr is a terminal; ``METERLINE_LOG_FORMAT`` chooses).

Every line carries the bound context (the request id while a request is served) and every
string in it goes through :func:`meterline.core.redaction.redact`, so a key, a signed link's
code or an ``Authorization`` header that reaches a log line is replaced by ``[redacted]``.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

import structlog

from meterline.core.redaction import redact

FORMATS = ("auto", "json", "console")
_HANDLER_MARK = "_meterline_structlog"


def _redact_values(_logger, _method, event_dict: dict[str, Any]) -> dict[str, Any]:
    for key, value in event_dict.items():
        if isinstance(value, str):
            event_dict[key] = redact(value)
    return event_dict


def _shared_processors() -> list:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.stdlib.PositionalArgumentsFormatter(),
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
        _redact_values,
    ]


def _renderer(fmt: str, stream) -> Any:
    if fmt == "auto":
        fmt = "console" if getattr(stream, "isatty", lambda: False)() else "json"
    if fmt == "console":
        return structlog.dev.ConsoleRenderer(colors=False)
    return structlog.processors.JSONRenderer(sort_keys=False)


class LogEvent(dict):
    """A line's event dict as the standard library's record carries it: Meterline's
    formatter reads the dict, any other handler (a Dagster run's event log, an embedding
    application's) gets one JSON object from ``record.getMessage()``."""

    def __str__(self) -> str:
        return json.dumps(self, default=str)


def _to_stdlib(logger, method_name: str, event_dict: dict[str, Any]):
    wrap = structlog.stdlib.ProcessorFormatter.wrap_for_formatter
    return wrap(logger, method_name, LogEvent(event_dict))


def _route_structlog_to_stdlib() -> None:
    """structlog hands each line to the standard library's logger of the same name (as a
    :class:`LogEvent`). Loggers are not cached, so configuration applies to all of them."""
    structlog.configure(
        processors=[*_shared_processors(), _to_stdlib],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


def configure_logging(fmt: str = "auto", *, level: int = logging.INFO, stream=None) -> None:
    """Route structlog and the standard library's logging through one formatter (idempotent:
    a second call replaces Meterline's handler, never adds one)."""
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    stream = stream or sys.stderr
    shared = _shared_processors()
    _route_structlog_to_stdlib()
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            _renderer(fmt, stream),
        ],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    setattr(handler, _HANDLER_MARK, True)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > level:
        root.setLevel(level)


def get_logger(name: str):
    """A structlog logger named ``name``. Its lines always go to the standard library's
    logger of that name (so an application embedding the SDK keeps control of them), even
    before :func:`configure_logging` installs Meterline's formatter."""
    if not structlog.is_configured():
        _route_structlog_to_stdlib()
    return structlog.stdlib.get_logger(name)
