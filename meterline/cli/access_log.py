"""``meterline serve``'s logging: one structured line per request, and no secret in any.

The app writes the request line itself (``meterline.api``, with the request id, the route,
the tenant and the redacted path: :mod:`meterline.observability.http`), so uvicorn's own
access line is switched off (it would be a second line per request). uvicorn's other lines
propagate to the root logger, where :func:`meterline.core.telemetry.logs.configure_logging`
renders them like every other line. A key, a link's signature or code, or a token typed into
a URL (by a user, an old bookmark or a script) could still reach a uvicorn line:
:class:`RedactSecrets` stays on its loggers and replaces their values with ``[redacted]``."""

from __future__ import annotations

import logging
from typing import Any

from meterline.core.redaction import redact


class RedactSecrets(logging.Filter):
    """Redacts the message and its string arguments (uvicorn passes the path as one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {
                k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()
            }
        return True


def serve_log_config() -> dict[str, Any]:
    """uvicorn's logging configuration for ``meterline serve``: its lines go to the root
    logger (structured there), its access line is off, :class:`RedactSecrets` on both."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact_secrets": {"()": RedactSecrets}},
        "loggers": {
            "uvicorn": {"level": "INFO", "handlers": [], "propagate": True},
            "uvicorn.error": {"level": "INFO", "filters": ["redact_secrets"], "propagate": True},
            # the app logs each request once (meterline.api); uvicorn's line would repeat it
            "uvicorn.access": {
                "level": "WARNING", "filters": ["redact_secrets"], "handlers": [],
                "propagate": False,
            },
        },
    }  # fmt: skip
