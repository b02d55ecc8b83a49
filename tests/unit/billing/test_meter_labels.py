"""Invoice line labels have one source: Stripe lines and the dbt marts read the same list."""

import csv

from billing.catalog import load_catalog
from billing.meter_labels import METER_LABELS, SEED_PATH, meter_label, seed_rows
from billing.rating import describe_usage


def test_dbt_seed_is_written_from_the_python_labels():
    with SEED_PATH.open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows == seed_rows(), (
        "dbt_project/seeds/meter_labels.csv differs from billing.meter_labels.METER_LABELS; "
        "edit METER_LABELS and run `python -m billing.meter_labels` to rewrite the seed"
    )


def test_every_catalog_meter_has_a_label_and_unknown_meters_read_as_their_id():
    assert set(load_catalog().meters) <= set(METER_LABELS)
    assert METER_LABELS["storage_gb"] == "Storage (peak)"
    assert meter_label("gpu_hours") == "Gpu hours"
    assert describe_usage("gpu_hours", 3, "h") == "Gpu hours: 3 h"
