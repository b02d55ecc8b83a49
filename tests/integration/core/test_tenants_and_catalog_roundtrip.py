from sqlalchemy import text


def test_catalog_and_tenants_roundtrip(db):
    from meterline.core import tenants

    tenants.create_tenant(
        db, "acme", "pro", email="ops@acme.test", at=__import__("datetime").date(2026, 9, 1)
    )
    previous = tenants.set_plan(
        db, "acme", "enterprise", at=__import__("datetime").date(2026, 10, 15)
    )
    assert previous == "pro"
    with db.connect() as conn:
        history = conn.execute(
            text(
                "select plan_id, effective_to is null from meterline.subscriptions where tenant_id='acme' order by effective_from"
            )
        ).all()
        limits = conn.execute(text("select count(*) from meterline.plan_meters")).scalar_one()
    assert [tuple(r) for r in history] == [("pro", False), ("enterprise", True)]
    assert limits == 25
    [acme] = tenants.list_tenants(db)
    assert acme.plan_id == "enterprise"


def test_catalog_read_back_from_postgres_equals_the_file(db):
    from billing.catalog import load_catalog
    from billing.catalog_store import read_catalog

    assert read_catalog(db) == load_catalog()
