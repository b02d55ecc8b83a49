"""The admin key, the secret key (sessions and links) and the alert webhook secret are
independent: none is derived from another, each unset one is generated on its own."""

import stat

import pytest

from meterline.core import secrets
from meterline.core.settings import Settings


@pytest.fixture
def home(tmp_path):
    return {"METERLINE_HOME": str(tmp_path)}


def _all(env):
    settings = Settings.from_env(env)
    return (
        secrets.admin_key(settings),
        secrets.secret_key(settings),
        secrets.webhook_secrets(settings),
    )


def test_unset_secrets_are_generated_separately_and_kept_private(home, tmp_path):
    admin, key, webhook = _all(home)
    assert len({admin, key, webhook[0]}) == 3 and webhook[0].startswith("whsec_")
    for name in ("admin_key", "secret_key", "webhook_secret"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600
    assert _all(home) == (admin, key, webhook)  # the next process agrees


def test_changing_one_secret_changes_none_of_the_others(home):
    admin, key, webhook = _all(home)
    assert _all({**home, "METERLINE_ADMIN_KEY": "another-admin-key"})[1:] == (key, webhook)
    changed = _all({**home, "METERLINE_SECRET_KEY": "another-secret-key"})
    assert (changed[0], changed[2]) == (admin, webhook)
    rotated = _all({**home, "ALERT_WEBHOOK_SECRET": "whsec_bmV3 whsec_b2xk"})
    assert rotated[:2] == (admin, key) and rotated[2] == ("whsec_bmV3", "whsec_b2xk")
