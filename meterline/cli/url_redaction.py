"""Printing a URL without its secret parts: a database URL without its password, a webhook
URL without its path (a Slack webhook's path is its secret)."""

from __future__ import annotations


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


def url_origin(url: str) -> str:
    """Scheme, host and port only: a webhook URL's path is often its secret (Slack's are)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host = parts.hostname or "?"
    return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}/..."
