from pathlib import Path

import pytest

from meterline.core.settings import DEFAULT_GRACE_HOURS, Settings, SettingsError


def test_everything_unset_means_embedded_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_env({})
    assert settings.database_url is None and settings.redis_url is None
    assert settings.stripe_api_key is None and settings.smtp_url is None
    assert settings.home == tmp_path / ".meterline"
    assert settings.resolved_dagster_home == tmp_path / ".meterline" / "dagster"
    assert settings.outbox_dir == tmp_path / ".meterline" / "outbox"
    assert settings.billing_grace_hours == DEFAULT_GRACE_HOURS
    assert settings.redis_prefix == "meterline"


def test_values_are_read_and_trimmed(tmp_path):
    settings = Settings.from_env(
        {
            "DATABASE_URL": " postgresql://u:p@db:5432/m ",
            "REDIS_URL": "redis://cache:6379/2",
            "STRIPE_API_KEY": "sk_test_x",
            "METERLINE_HOME": str(tmp_path / "home"),
            "DAGSTER_HOME": str(tmp_path / "dh"),
            "BILLING_GRACE_HOURS": "12",
            "METERLINE_ADMIN_KEY": "adm",
            "ALERT_WEBHOOK_URL": "http://127.0.0.1:9/hook",
        }
    )
    assert settings.database_url == "postgresql://u:p@db:5432/m"
    assert settings.redis_url == "redis://cache:6379/2"
    assert settings.home == tmp_path / "home"
    assert settings.resolved_dagster_home == Path(tmp_path / "dh")
    assert settings.billing_grace_hours == 12
    assert settings.admin_key == "adm"


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL must be a PostgreSQL URL"),
        ({"REDIS_URL": "http://x"}, "REDIS_URL must look like redis://"),
        ({"BILLING_GRACE_HOURS": "soon"}, "BILLING_GRACE_HOURS must be a whole number"),
        ({"BILLING_GRACE_HOURS": "-3"}, "BILLING_GRACE_HOURS must be a whole number"),
        ({"METERLINE_REDIS_PREFIX": "a:b"}, "METERLINE_REDIS_PREFIX may hold"),
    ],
)
def test_bad_values_name_the_variable(env, fragment):
    with pytest.raises(SettingsError, match=fragment):
        Settings.from_env(env)


def test_empty_values_count_as_unset():
    settings = Settings.from_env({"DATABASE_URL": "", "REDIS_URL": "  "})
    assert settings.database_url is None and settings.redis_url is None
