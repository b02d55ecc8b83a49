from pathlib import Path

import pytest

from meterline.core.settings import (
    DEFAULT_GRACE_HOURS,
    READ_BY_LIBRARIES,
    Settings,
    SettingsError,
    debug_requested,
)


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
        ({"METERLINE_BI_ROLE": "bi; drop table x"}, "METERLINE_BI_ROLE must be a lower-case"),
        ({"METERLINE_BI_ROLE": "Metabase"}, "METERLINE_BI_ROLE must be a lower-case"),
        ({"METERLINE_BI_ROLE": "1bi"}, "METERLINE_BI_ROLE must be a lower-case"),
    ],
)
def test_bad_values_name_the_variable(env, fragment):
    with pytest.raises(SettingsError, match=fragment):
        Settings.from_env(env)


def test_empty_values_count_as_unset():
    settings = Settings.from_env({"DATABASE_URL": "", "REDIS_URL": "  ", "METERLINE_BI_ROLE": ""})
    assert settings.database_url is None and settings.redis_url is None
    assert settings.bi_role == "meterline_bi"


def test_the_process_environment_is_read_like_an_explicit_one(tmp_path, monkeypatch):
    values = {
        "METERLINE_HOME": str(tmp_path / "home"),
        "REDIS_URL": " redis://cache:6379/2 ",
        "BILLING_GRACE_HOURS": "12",
        "METERLINE_ADMIN_EMAIL": "ops@example.com",
        "METERLINE_DEBUG": "yes",
        "SMTP_URL": "",
    }
    for name in Settings.variables():
        monkeypatch.delenv(name, raising=False)
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_env()
    assert settings == Settings.from_env(values)
    assert settings.redis_url == "redis://cache:6379/2" and settings.smtp_url is None
    assert settings.admin_email == "ops@example.com" and settings.debug is True
    assert settings.reports_dir == tmp_path / "home" / "reports"


def test_exported_environment_reads_back_as_the_same_settings(tmp_path):
    settings = Settings.from_env(
        {
            "METERLINE_HOME": str(tmp_path),
            "DATABASE_URL": "postgresql://u:p@db:5432/m",
            "METERLINE_DEBUG": "1",
            "METERLINE_INSTALL_ID": "laptop-1",
        }
    )
    exported = settings.as_environment()
    # every variable, except those a library takes as set by their mere presence
    assert set(exported) == set(Settings.variables()) - set(READ_BY_LIBRARIES)
    assert exported["DAGSTER_HOME"] == str(tmp_path / "dagster")
    assert exported["METERLINE_REPORTS_DIR"] == str(tmp_path / "reports")
    assert exported["SMTP_URL"] == "" and exported["BILLING_GRACE_HOURS"] == "72"
    assert Settings.from_env(exported) == settings
    assert Settings.from_env(Settings.from_env({}).as_environment()).debug is False


def test_every_setting_has_a_variable_and_a_description():
    for name, field in Settings.model_fields.items():
        assert str(field.validation_alias).isupper(), name
        assert field.description and field.description.endswith("."), name


def test_secrets_stay_out_of_the_settings_repr():
    given = {
        "METERLINE_ADMIN_KEY": "adm-s3cr3t",
        "ALERT_WEBHOOK_SECRET": "wh-s3cr3t",
        "METERLINE_SECRET_KEY": "key-s3cr3t",
        "STRIPE_API_KEY": "sk_test_s3cr3t",
        "DATABASE_URL": "postgresql://u:pw-s3cr3t@db/m",
    }
    settings = Settings.from_env(given)
    assert "s3cr3t" not in repr(settings)
    assert settings.admin_key == "adm-s3cr3t" and settings.secret_key == "key-s3cr3t"


def test_renamed_secret_variables_still_work_for_one_release_with_a_warning():
    old = {"METERLINE_WEBHOOK_SECRET": "whsec_b2xk", "METERLINE_DASHBOARD_SECRET": "dash"}
    with pytest.warns(
        FutureWarning, match="METERLINE_WEBHOOK_SECRET is deprecated.*ALERT_WEBHOOK_SECRET"
    ):
        settings = Settings.from_env(old)
    assert settings.alert_webhook_secret == "whsec_b2xk" and settings.secret_key == "dash"
    exported = settings.as_environment()  # children see the new names only
    assert (
        exported["ALERT_WEBHOOK_SECRET"] == "whsec_b2xk"
        and not exported["METERLINE_WEBHOOK_SECRET"]
    )
    with pytest.warns(FutureWarning, match="METERLINE_SECRET_KEY is set and wins"):
        both = Settings.from_env({**old, "METERLINE_SECRET_KEY": "new"})
    assert both.secret_key == "new"


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"METERLINE_DBT_THREADS": "0"}, "METERLINE_DBT_THREADS must be a whole number >= 1"),
        ({"METERLINE_DEBUG": "please"}, "METERLINE_DEBUG: "),
        ({"METERLINE_INSTALL_ID": "Not Valid"}, "METERLINE_INSTALL_ID='Not Valid' is invalid"),
        (
            {"DATABASE_URL": "mysql://x", "BILLING_GRACE_HOURS": "x"},
            r"DATABASE_URL must be .* \(also invalid: BILLING_GRACE_HOURS\)$",
        ),
    ],
)
def test_new_variables_are_validated_in_one_line(env, fragment):
    with pytest.raises(SettingsError, match=fragment) as caught:
        Settings.from_env(env)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("", False), ("0", False), ("false", False), ("1", True), ("on", True), ("what?", True)],
)
def test_debug_is_readable_even_when_other_settings_are_not(value, expected):
    assert debug_requested({"METERLINE_DEBUG": value, "DATABASE_URL": "mysql://x"}) is expected
