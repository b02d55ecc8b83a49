"""This installation's identity in shared systems (Stripe).

A laptop, a staging stack and CI often share one Stripe test account. Every object Meterline
creates there carries ``metadata.meterline_install`` and every lookup, search and reconciliation
filters on it, so two installations never adopt or report each other's customers and invoices.

The id is generated once per database (table ``meterline.installation``) and can be pinned with
``METERLINE_INSTALL_ID`` (applied when the CLI opens the database, e.g. ``meterline migrate``).
"""

from __future__ import annotations

import re
import secrets

from sqlalchemy import Engine, text

INSTALL_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


class InstallationError(ValueError):
    """The configured installation id is unusable; the message says what form it takes."""


def check_install_id(value: str) -> str:
    if not INSTALL_ID.match(value):
        raise InstallationError(
            f"METERLINE_INSTALL_ID={value!r} is invalid: use 1-40 lowercase letters, digits, "
            "'-' or '_', starting with a letter or digit"
        )
    return value


def install_id(engine: Engine) -> str:
    """This database's installation id, generated on first use."""
    with engine.begin() as conn:
        conn.execute(
            text(
                "insert into meterline.installation (install_id) values (:id) "
                "on conflict (singleton) do nothing"
            ),
            {"id": secrets.token_hex(6)},
        )
        return conn.execute(text("select install_id from meterline.installation")).scalar_one()


def set_install_id(engine: Engine, value: str) -> None:
    """Pin the installation id (``METERLINE_INSTALL_ID``)."""
    check_install_id(value)
    with engine.begin() as conn:
        conn.execute(
            text(
                "insert into meterline.installation (install_id) values (:id) "
                "on conflict (singleton) do update set install_id = excluded.install_id"
            ),
            {"id": value},
        )
