"""Money over time: raising a price and reloading the catalog changes no finalized invoice, no
past MRR and puts no prior-period adjustment on the next invoice; only a tenant migrated to
the new plan version pays it, from the migration instant (base fee prorated).

Real Postgres, a real dbt build of the marts, invoices through the Stripe emulator."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import text
from typer.testing import CliRunner

from billing.invoicing import create_invoices
from billing.stripe_client import RetryPolicy
from meterline.cli.app import app
from meterline.core.dbt_runner import dbt_build
from meterline.core.tenants import create_tenant

FAST = RetryPolicy(max_attempts=6, base_delay=0.01, max_delay=0.05)
AUG, SEP, OCT = date(2026, 8, 1), date(2026, 9, 1), date(2026, 10, 1)
CATALOG = Path(__file__).parents[3] / "billing" / "catalog.yaml"


def raised_pro(tmp_path: Path) -> Path:
    """pro's base fee 99 -> 129 and its api_calls price above the included 500,000 calls
    0.001 -> 0.002."""
    source = CATALOG.read_text()
    at = source.index("  pro:")
    path = tmp_path / "catalog.yaml"
    path.write_text(
        source[:at]
        + source[at:]
        .replace('base_fee: "99"', 'base_fee: "129"', 1)
        .replace('unit_price: "0.001"', 'unit_price: "0.002"', 1)
    )
    return path


def cli(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, (result.output, result.exception)
    return " ".join(result.output.split())


def add_usage(db, months: list[date]) -> None:
    """600,000 API calls per tenant and month: 100,000 above pro's included 500,000."""
    rows = [
        {"t": t, "e": f"{t}-{m:%Y%m}", "at": datetime(m.year, m.month, 10, tzinfo=UTC)}
        for t in ("acme", "bolt")
        for m in months
    ]
    with db.begin() as conn:
        conn.execute(
            text(
                """
                insert into raw.usage_events (tenant_id, event_id, meter, value, occurred_at, received_at)
                values (:t, :e, 'api_calls', 600000, :at, :at)
                """
            ),
            rows,
        )


def build_marts(database_url: str, tmp_path: Path, as_of: str) -> None:
    dbt_build(
        database_url, "--select", "+fct_invoice_lines", "+fct_mrr_summary",
        "--exclude-resource-type", "test", "unit_test", "--full-refresh",
        vars={"as_of": as_of}, target_path=tmp_path / "target",
    )  # fmt: skip


def invoice(db, client, period: date):
    cutoff = datetime(period.year, period.month, 28, tzinfo=UTC) + timedelta(days=8)
    return create_invoices(db, client, period, usage_cutoff=cutoff, retry=FAST)


def snapshot(db, before: date) -> dict[str, list]:
    queries = {
        "invoices": "select tenant_id, period, status, amount_due, stripe_invoice_id "
        "from meterline.invoices order by 1, 2",
        "lines": "select tenant_id, period, line_key, amount from meterline.invoice_lines "
        "order by 1, 2, 3",
        "mrr": "select tenant_id, month, mrr, change_category from analytics.fct_mrr "
        "where month < :before order by 1, 2",
        "mrr_summary": "select * from analytics.fct_mrr_summary where month < :before order by month",
    }
    with db.connect() as conn:
        return {
            k: [tuple(r) for r in conn.execute(text(q), {"before": before})]
            for k, q in queries.items()
        }


def invoice_lines(db, tenant_id: str, period: date) -> dict[str, int]:
    with db.connect() as conn:
        rows = conn.execute(
            text(
                "select line_key, amount from meterline.invoice_lines "
                "where tenant_id = :t and period = :p"
            ),
            {"t": tenant_id, "p": period},
        )
        return dict(rows.all())


def test_raising_a_price_reprices_only_migrated_tenants_from_the_migration_instant(
    db, client, tmp_path, test_services
):
    for tenant in ("acme", "bolt"):
        create_tenant(db, tenant, "pro", email=f"billing@{tenant}.test", at=date(2026, 7, 1))
    add_usage(db, [AUG, SEP, OCT])
    build_marts(test_services.database_url, tmp_path, "2026-10-20T00:00:00Z")
    invoice(db, client, AUG)
    invoice(db, client, SEP)
    # $99 base fee, 100,000 calls x $0.001
    assert invoice_lines(db, "acme", SEP) == {"base_fee": 9900, "usage:api_calls": 10000}
    before = snapshot(db, OCT)
    assert before["invoices"] and before["mrr"] and before["mrr_summary"]

    # the price rises; nobody pays it until migrated
    out = cli("catalog", "load", str(raised_pro(tmp_path)))
    assert "pro: base_fee 99 -> 129" in out and "plan pro: version 2 written" in out
    dry = cli("plans", "migrate", "pro", "--to-version", "2", "--at", "2026-10-16", "--dry-run")
    assert "acme would move: version 1 -> 2, base fee 99 -> 129 USD/month" in dry
    # October's usage so far (100,000 calls above the included): $100 on version 1, $200 on 2
    assert "usage this month 100 -> 200 USD" in dry
    moved = cli("plans", "migrate", "pro", "--to-version", "2", "--at", "2026-10-16",
                "--tenant", "bolt")  # fmt: skip
    assert "1 tenant(s) moved to pro version 2" in moved
    with db.begin() as conn:  # bolt's calls after the migration, on version 2
        conn.execute(
            text(
                "insert into raw.usage_events (tenant_id, event_id, meter, value, occurred_at,"
                " received_at) values ('bolt', 'bolt-late-oct', 'api_calls', 520000, :at, :at)"
            ),
            {"at": datetime(2026, 10, 25, tzinfo=UTC)},
        )

    build_marts(test_services.database_url, tmp_path, "2026-11-05T00:00:00Z")
    invoice(db, client, OCT)

    after = snapshot(db, OCT)
    assert after["mrr"] == before["mrr"] and after["mrr_summary"] == before["mrr_summary"]
    finalized = [r for r in after["invoices"] if r[1] < OCT]
    assert (
        finalized == before["invoices"]
        and [r for r in after["lines"] if r[1] < OCT] == before["lines"]
    )
    acme, bolt = invoice_lines(db, "acme", OCT), invoice_lines(db, "bolt", OCT)
    assert not [k for k in (*acme, *bolt) if k.startswith("adjustment:")]
    assert acme == {"base_fee": 9900, "usage:api_calls": 10000}  # still version 1
    # bolt: $99 x 15/31 + $129 x 16/31 = $114.4839 (October prorated between the versions);
    # October's usage is split at the migration: the 600,000 calls of Oct 10 were made on
    # version 1 (100,000 x $0.001); the 520,000 of Oct 25 on version 2, whose 500,000 included
    # calls start from zero (20,000 x $0.002)
    assert bolt == {
        "base_fee": 11448,
        "usage:api_calls@pro.v1": 10000,
        "usage:api_calls@pro.v2": 4000,
    }
    with db.connect() as conn:
        mrr = dict(
            conn.execute(
                text("select tenant_id, mrr from analytics.fct_mrr where month = :m"), {"m": OCT}
            ).all()
        )
    assert mrr == {"acme": 9900, "bolt": 12900}
