"""Where a mart lives, as shown in the Dagster UI: no user, password, driver or query."""

from meterline.core.redaction import relation_uri


def test_relation_uri_keeps_host_port_database_and_table_only():
    url = "postgresql+psycopg://meterline:s3cret@db.internal:6543/metering?sslmode=require"
    uri = relation_uri(url, "analytics.fct_invoices")
    assert uri == "postgresql://db.internal:6543/metering/analytics.fct_invoices"
    assert "s3cret" not in uri and "meterline@" not in uri


def test_relation_uri_without_port_or_credentials():
    uri = relation_uri("postgresql://127.0.0.1/meterline", "analytics.fct_mrr")
    assert uri == "postgresql://127.0.0.1/meterline/analytics.fct_mrr"
