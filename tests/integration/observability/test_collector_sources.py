"""A source that does not answer is reported as down, and its figures are left out of the
scrape rather than reported as zero; the other source's figures are still there."""

from __future__ import annotations

import redis as redis_lib
from sqlalchemy import create_engine

from meterline.observability.collector import BacklogCollector
from meterline.observability.metrics_endpoint import scrape
from tests.integration.observability.serving import free_port, samples


def test_redis_down_leaves_out_its_figures_only(db, test_services):
    gone = redis_lib.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.5)
    text = scrape(BacklogCollector(db, gone, prefix=test_services.redis_prefix)).decode()
    values = samples(text)
    assert values[("meterline_metrics_source_up", (("source", "redis"),))] == 0
    assert values[("meterline_metrics_source_up", (("source", "postgres"),))] == 1
    assert ("meterline_stream_entries", ()) not in values
    assert ("meterline_loader_lag_seconds", ()) not in values
    assert values[("meterline_dead_letters", ())] == 0


def test_postgres_down_leaves_out_its_figures_only(redis_client, test_services):
    url = f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/none?connect_timeout=1"
    engine = create_engine(url)
    text = scrape(BacklogCollector(engine, redis_client, prefix=test_services.redis_prefix))
    values = samples(text.decode())
    assert values[("meterline_metrics_source_up", (("source", "postgres"),))] == 0
    assert values[("meterline_metrics_source_up", (("source", "redis"),))] == 1
    assert ("meterline_stream_entries", ()) in values  # the registry's streams are still read
    assert ("meterline_dead_letters", ()) not in values
    assert not [k for k in values if k[0] in ("meterline_invoices", "meterline_alert_deliveries")]
    assert "nobody" not in text.decode()  # no connection detail in the exposition
