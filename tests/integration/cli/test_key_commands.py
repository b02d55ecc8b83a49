"""`meterline tenants issue-key | keys | revoke-key | rotate-key`: what an operator sees, and
that a listed key is never shown again."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from ingestion.auth import KeyStore
from meterline.cli.app import app
from meterline.core.tenants import create_tenant

KEY_ID = re.compile(r"key_[0-9a-f]{12}")


def run(*args: str) -> str:
    result = CliRunner().invoke(app, ["tenants", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_issue_list_revoke_and_rotate_keys_from_the_command_line(db):
    create_tenant(db, "acme", "payg")
    issued = run("issue-key", "acme")
    first_id = KEY_ID.search(issued).group()
    first_key = issued.strip().splitlines()[-1]
    assert first_key.startswith("ml_acme_") and "not shown again" in issued

    listed = run("keys", "acme")
    assert first_id in listed and "active" in listed and first_key not in listed

    rotated = run("rotate-key", first_id)
    second_key = rotated.strip().splitlines()[-1]
    second_id = next(i for i in KEY_ID.findall(rotated) if i != first_id)
    assert f"key {first_id} revoked" in " ".join(rotated.split())

    revoked = run("revoke-key", second_id)
    assert second_id in revoked and "revoked" in revoked
    listed = run("keys", "acme")
    assert listed.count("revoked") >= 2 and second_key not in listed

    keystore = KeyStore(db)
    assert keystore.tenant_for(first_key) is None and keystore.tenant_for(second_key) is None


def test_revoking_an_unknown_key_id_fails_with_one_line_saying_where_to_look(db):
    result = CliRunner().invoke(app, ["tenants", "revoke-key", "key_000000000000"])
    assert result.exit_code != 0
    assert "unknown key id 'key_000000000000'" in str(result.exception)
    assert "meterline tenants keys" in str(result.exception)
