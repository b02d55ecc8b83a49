"""The code location's resources come from the settings: every unset optional variable means
its documented default, and no secret's value reaches what the Dagster UI displays.

The UI shows a resource's configuration from the repository snapshot
(``RepositorySnap.resources[].configured_values``): a ``dg.EnvVar`` appears there as the
variable's name, a plain value as itself. The snapshot is built here exactly as the
webserver builds it from a code location.
"""

from __future__ import annotations

import re
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.remote_representation.external_data import RepositorySnap

from meterline.core.services import ServiceUrls
from meterline.core.settings import (
    DEFAULT_ALERT_SENDER,
    DEFAULT_GRACE_HOURS,
    DEFAULT_REDIS_PREFIX,
    Settings,
    documentation,
)
from orchestration.resources import resources_from_settings

ROOT = Path(__file__).resolve().parents[3]
SECRETS = {
    "DATABASE_URL": "postgresql://meterline:pg-Secret-1@db.internal:5432/meterline",
    "REDIS_URL": "redis://:redis-Secret-2@cache.internal:6379/0",
    "STRIPE_API_KEY": "sk_test_Secret3",
    "SMTP_URL": "smtp://mailer:smtp-Secret-4@smtp.example.com:587",
    "ALERT_WEBHOOK_URL": "https://hooks.example.com/services/Secret5",
    "ALERT_WEBHOOK_SECRET": "whsec_U2VjcmV0Ng==",
}


def _urls(settings: Settings) -> ServiceUrls:
    return ServiceUrls(
        settings.database_url or "postgresql://postgres@127.0.0.1:54329/meterline",
        settings.redis_url or "redis://127.0.0.1:63790/0",
        "unused",
        settings.stripe_api_key or "",
        settings.stripe_api_base,
        not settings.stripe_api_key,
    )


def _displayed(resources: dict) -> dict[str, dict[str, object]]:
    snap = RepositorySnap.from_def(dg.Definitions(resources=resources).get_repository_def())
    return {r.name: dict(r.configured_values) for r in snap.resources}


def test_no_secret_value_is_displayed_only_the_variable_name(monkeypatch):
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_env(SECRETS)
    displayed = _displayed(resources_from_settings(settings, _urls(settings)))
    text = repr(displayed)
    for name, value in SECRETS.items():
        assert value not in text, f"{name}'s value is displayed"
    names = {v.name for fields in displayed.values() for v in fields.values() if hasattr(v, "name")}
    assert names == set(SECRETS), names
    # and each EnvVar resolves to the value the settings read
    resolved = resources_from_settings(settings, _urls(settings))
    assert resolved["postgres"].url.get_value() == SECRETS["DATABASE_URL"]


def test_every_secret_field_is_documented_as_secret():
    assert {n for n in SECRETS if documentation()[n].get("secret")} == set(SECRETS)


def test_unset_optional_variables_mean_their_documented_defaults(tmp_path):
    settings = Settings.from_env({"METERLINE_HOME": str(tmp_path)})
    resources = resources_from_settings(settings, _urls(settings))
    assert resources["redis"].prefix == DEFAULT_REDIS_PREFIX
    assert resources["billing_policy"].grace_hours == DEFAULT_GRACE_HOURS
    assert resources["billing_policy"].reports_dir == str(tmp_path.resolve() / "reports")
    assert resources["notifier"].sender == DEFAULT_ALERT_SENDER
    assert resources["notifier"].smtp_url is None  # the outbox under METERLINE_HOME
    assert resources["stripe"].api_key is None  # the embedded emulator, looked up per run
    # an embedded service's URL carries no password and is shown as it is
    assert (
        _displayed(resources)["postgres"]["url"]
        == '"postgresql://postgres@127.0.0.1:54329/meterline"'
    )


def test_an_invalid_variable_fails_with_its_name():
    with pytest.raises(ValueError, match="METERLINE_REDIS_PREFIX"):
        Settings.from_env({"METERLINE_REDIS_PREFIX": "bad prefix!"})


def test_no_resource_reads_a_bare_environment_variable():
    """Resources come from the settings; ``dg.EnvVar`` is written once, for secrets."""
    uses = {
        str(path.relative_to(ROOT))
        for path in (ROOT / "orchestration").rglob("*.py")
        if re.search(r"EnvVar\(", path.read_text())
    }
    assert uses == {"orchestration/resources.py"}


def test_stripe_without_key_or_emulator_says_what_to_set(tmp_path):
    from orchestration.defs.billing.resources import StripeResource

    with pytest.raises(dg.Failure, match=r"STRIPE_API_KEY is not set.*meterline services up"):
        StripeResource(home=str(tmp_path)).client()
