"""Secrets out of what people read: URLs, error messages and log lines.

One place for the rules: a webhook URL is shown as its origin (its path is often the secret,
as Slack's are), a database URL without its password, and the values of secret query
parameters and ``Authorization`` headers as ``[redacted]``.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

SECRET_PARAMS = ("key", "sig", "token", "code", "access_token", "api_key", "password", "secret")
REDACTED = "[redacted]"
_QUERY = re.compile(r"(?i)([?&;](?:" + "|".join(SECRET_PARAMS) + r")=)[^&;#\s\"']*")
_AUTHORIZATION = re.compile(
    r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?)(?:(?:bearer|basic)\s+)?[^\s\"',}]+"
)
_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")


def url_origin(url: str | None) -> str:
    """``scheme://host[:port]/...`` of ``url`` ("" for none): no credentials, path or query."""
    if not url:
        return ""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # e.g. a port that is not a number
        return url.split("://", 1)[0] + "://?/..."
    return f"{parts.scheme}://{host}{port}/..."


def mask_urls(text: str) -> str:
    """Every URL in ``text`` reduced to its origin (:func:`url_origin`)."""
    return _URL.sub(lambda match: url_origin(match.group(0)), text)


def redact(text: str) -> str:
    """``text`` with the values of secret query parameters and Authorization redacted."""
    return _AUTHORIZATION.sub(r"\1" + REDACTED, _QUERY.sub(r"\1" + REDACTED, text))


def without_password(url: str) -> str:
    """``url`` with any password removed (psql then asks for it, or reads PGPASSWORD)."""
    from sqlalchemy.engine import URL, make_url

    try:
        parsed = make_url(url)
    except Exception:  # not a URL we can parse: keep only what follows the credentials
        return url.rsplit("@", 1)[-1]
    if parsed.password is None:
        return url
    bare = URL.create(
        parsed.drivername, username=parsed.username, host=parsed.host, port=parsed.port,
        database=parsed.database, query=parsed.query,
    )  # fmt: skip
    return bare.render_as_string(hide_password=False)


def relation_uri(database_url: str, relation: str) -> str:
    """Where a table lives, to show people: ``postgresql://host:port/database/schema.table``,
    with neither the user nor the password of ``database_url`` (nor its driver or query)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(database_url)
    scheme = parsed.drivername.split("+", 1)[0]
    port = f":{parsed.port}" if parsed.port else ""
    return f"{scheme}://{parsed.host or 'localhost'}{port}/{parsed.database or ''}/{relation}"
