"""A versioned catalog: `meterline catalog load` of a changed file writes new versions of the
changed plans only and says what changed; a version never changes; subscriptions pay the
version they name, and `meterline plans migrate` moves them, dated and explicit."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import exc, text
from typer.testing import CliRunner

from ingestion.plans import load_plan_history, load_plans
from meterline.cli.app import app
from meterline.core.tenants import PlanInForce, create_tenant, plan_in_force, set_plan

CATALOG = Path(__file__).parents[3] / "billing" / "catalog.yaml"


def changed_catalog(tmp_path: Path) -> Path:
    """The default catalog with payg's base fee 0 -> 5, its 2nd api_calls tier 0.001 -> 0.002
    and starter's api_calls limit 50000 -> 60000."""
    source = CATALOG.read_text()
    payg = source.index("  payg:")
    changed = (
        source[:payg]
        + source[payg:]
        .replace('base_fee: "0"', 'base_fee: "5"', 1)
        .replace('{up_to: 100000, unit_price: "0.001"}', '{up_to: 100000, unit_price: "0.002"}', 1)
    ).replace("api_calls:    {limit: 50000,", "api_calls:    {limit: 60000,", 1)
    assert changed.count('base_fee: "5"') == 1 and "60000" in changed
    path = tmp_path / "catalog.yaml"
    path.write_text(changed)
    return path


def cli(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, (result.output, result.exception)
    return " ".join(result.output.split())


def versions(db) -> dict[str, int]:
    with db.connect() as conn:
        query = "select plan_id, max(plan_version) from meterline.plans group by 1"
        return dict(conn.execute(text(query)).all())


def test_loading_a_changed_catalog_versions_the_changed_plans_only_and_prints_each_change(
    db, tmp_path
):
    path = changed_catalog(tmp_path)
    out = cli("catalog", "load", str(path))
    assert "payg: base_fee 0 -> 5" in out
    assert "payg: meters.api_calls.tiers [<=10000@0, <=100000@0.001," in out
    assert "-> [<=10000@0, <=100000@0.002," in out
    assert "starter: meters.api_calls.limit 50000 -> 60000" in out
    assert "plan payg: version 2 written" in out and "plan starter: version 2 written" in out
    assert versions(db) == {"payg": 2, "starter": 2, "free": 1, "pro": 1, "enterprise": 1}

    again = cli("catalog", "load", str(path))
    assert "no plan changed: no new plan version written" in again
    assert versions(db) == {"payg": 2, "starter": 2, "free": 1, "pro": 1, "enterprise": 1}


def test_a_written_plan_version_refuses_any_update_or_delete(db):
    for statement in (
        "update meterline.plans set base_fee = 1 where plan_id = 'payg'",
        "update meterline.price_tiers set unit_price = 1 where plan_id = 'payg'",
        "update meterline.plan_meters set limit_quantity = 1 where plan_id = 'starter'",
        "delete from meterline.price_tiers where plan_id = 'payg'",
    ):
        with pytest.raises(exc.ProgrammingError, match="is immutable"), db.begin() as conn:
            conn.execute(text(statement))


def test_new_subscriptions_take_the_latest_version_and_old_ones_keep_their_prices_and_limits(
    db, tmp_path
):
    create_tenant(db, "old", "starter", at=datetime(2026, 9, 1, tzinfo=UTC))
    cli("catalog", "load", str(changed_catalog(tmp_path)))
    create_tenant(db, "new", "starter", at=datetime(2026, 9, 1, tzinfo=UTC))
    create_tenant(db, "mover", "payg", at=datetime(2026, 9, 1, tzinfo=UTC))
    set_plan(db, "mover", "starter", at=datetime(2026, 9, 10, tzinfo=UTC))
    at = datetime(2026, 9, 20, tzinfo=UTC)
    with db.connect() as conn:
        assert plan_in_force(conn, "old", at) == PlanInForce("starter", 1)
        assert plan_in_force(conn, "new", at) == PlanInForce("starter", 2)
        assert plan_in_force(conn, "mover", at) == PlanInForce("starter", 2)
    limits = load_plans(db, at=at)  # quotas read the limits of the version paid
    assert limits["old"].meters["api_calls"].limit == Decimal(50000)
    assert limits["new"].meters["api_calls"].limit == Decimal(60000)
    # the plan history the record script enforces carries the limits of the version paid
    history = load_plan_history(db, ["old", "new"], covers=at)
    assert history["old"].terms[-1].limits["api_calls"] == (Decimal(50000), True)
    assert history["new"].terms[-1].limits["api_calls"] == (Decimal(60000), True)


def test_plans_migrate_dry_run_shows_the_money_effect_then_migration_moves_tenants_at_the_instant(
    db, tmp_path
):
    create_tenant(db, "acme", "payg", at=datetime(2026, 8, 1, tzinfo=UTC))
    create_tenant(db, "bolt", "payg", at=datetime(2026, 8, 1, tzinfo=UTC))
    create_tenant(db, "solo", "starter", at=datetime(2026, 8, 1, tzinfo=UTC))
    cli("catalog", "load", str(changed_catalog(tmp_path)))

    dry = cli("plans", "migrate", "payg", "--to-version", "2", "--at", "2026-09-16T12:00",
              "--dry-run")  # fmt: skip
    assert "acme would move: version 1 -> 2, base fee 0 -> 5 USD/month" in dry
    assert "bolt would move: version 1 -> 2, base fee 0 -> 5 USD/month" in dry
    assert "solo" not in dry and "dry run: 2 tenant(s) would move; nothing changed" in dry
    with db.connect() as conn:
        assert plan_in_force(conn, "acme", datetime(2026, 9, 30, tzinfo=UTC)) == ("payg", 1)

    moved = cli("plans", "migrate", "payg", "--to-version", "2", "--at", "2026-09-16T12:00")
    assert "2 tenant(s) moved to payg version 2" in moved
    with db.connect() as conn:
        for tenant in ("acme", "bolt"):
            before = plan_in_force(conn, tenant, datetime(2026, 9, 16, 11, 59, tzinfo=UTC))
            assert before == ("payg", 1)
            assert plan_in_force(conn, tenant, datetime(2026, 9, 16, 12, tzinfo=UTC)) == ("payg", 2)
        assert plan_in_force(conn, "solo", datetime(2026, 9, 30, tzinfo=UTC)) == ("starter", 1)
    result = CliRunner().invoke(
        app,
        ["plans", "migrate", "payg", "--to-version", "2", "--at", "2026-10-01", "--tenant", "solo"],
    )
    assert result.exit_code != 0
    assert "--tenant solo: not subscribed to plan 'payg' on a version other than 2" in str(
        result.exception
    )
    assert "0 tenant(s) moved" in cli(
        "plans", "migrate", "payg", "--to-version", "2", "--at", "2026-10-01"
    )


def test_plans_migrate_to_a_version_that_does_not_exist_names_the_versions_there_are(db):
    result = CliRunner().invoke(
        app, ["plans", "migrate", "payg", "--to-version", "3", "--at", "2026-09-01"]
    )
    assert result.exit_code != 0
    assert "--to-version 3: plan 'payg' has versions 1" in str(result.exception)


def test_plans_migrate_refuses_a_version_priced_in_another_currency(db, tmp_path):
    create_tenant(db, "acme", "payg", at=datetime(2026, 8, 1, tzinfo=UTC))
    source = CATALOG.read_text().replace("  payg:\n", "  payg:\n    currency: EUR\n", 1)
    (tmp_path / "eur.yaml").write_text(source)
    assert "payg: currency 'USD' -> 'EUR'" in cli("catalog", "load", str(tmp_path / "eur.yaml"))
    result = CliRunner().invoke(
        app, ["plans", "migrate", "payg", "--to-version", "2", "--at", "2026-09-01"]
    )
    assert result.exit_code != 0
    assert "prices plan 'payg' in EUR, version 1 in USD" in str(result.exception)
    with db.connect() as conn:
        assert plan_in_force(conn, "acme", datetime(2026, 9, 2, tzinfo=UTC)) == ("payg", 1)
