"""Secrets that are not configured are generated once, kept 0600, and shared by processes."""

import stat

from meterline.core.secrets import stored_secret


def test_an_unset_secret_is_generated_once_and_kept_private(tmp_path):
    first = stored_secret(tmp_path, "secret_key")
    assert len(first) >= 32
    assert stored_secret(tmp_path, "secret_key") == first
    assert stat.S_IMODE((tmp_path / "secret_key").stat().st_mode) == 0o600
    assert stored_secret(tmp_path, "other_secret") != first


def test_a_configured_secret_wins_and_writes_nothing(tmp_path):
    assert stored_secret(tmp_path, "secret_key", configured="from-the-environment") == (
        "from-the-environment"
    )
    assert not (tmp_path / "secret_key").exists()
