"""Secrets out of ``meterline serve``'s logs: uvicorn's access log prints each request line
with its query string, so a key, a link's signature or code, or a token typed into a URL (by
a user, an old bookmark or a script) would land in the log. :class:`RedactSecrets` replaces
their values with ``[redacted]``; :func:`serve_log_config` is uvicorn's logging configuration
with that filter on its loggers."""

from __future__ import annotations

import copy
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
    """uvicorn's default logging configuration plus :class:`RedactSecrets` on its loggers."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_secrets"] = {"()": RedactSecrets}
    for name in ("uvicorn.access", "uvicorn.error"):
        config["loggers"].setdefault(name, {}).setdefault("filters", []).append("redact_secrets")
    return config
