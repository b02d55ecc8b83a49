"""The request id: accepted from ``X-Request-Id`` when it is well formed, generated otherwise,
echoed in the response, bound to every log line of the request, stored with the batch in the
Redis stream entry and logged again by the loader (and kept with a dead letter).

A well-formed id is 8 to 128 characters of letters, digits and ``.`` ``_`` ``:`` ``-``,
starting with a letter or digit: anything else (a header carrying spaces, quotes, a newline
or a whole key) is replaced, never echoed or logged.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

HEADER = "X-Request-Id"
_WELL_FORMED = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{7,127}")
_current: ContextVar[str | None] = ContextVar("meterline_request_id", default=None)


def is_well_formed(value: str | None) -> bool:
    return bool(value) and _WELL_FORMED.fullmatch(value) is not None


def new_request_id() -> str:
    return uuid.uuid4().hex


def accept_or_new(value: str | None) -> str:
    """``value`` when it is a well-formed request id, else a new one."""
    return value if is_well_formed(value) else new_request_id()


def current() -> str | None:
    """The request id of the request being served in this context (None outside one)."""
    return _current.get()


@contextmanager
def bound(request_id: str) -> Iterator[str]:
    """Make ``request_id`` the current one for the duration of the block."""
    token = _current.set(request_id)
    try:
        yield request_id
    finally:
        _current.reset(token)
