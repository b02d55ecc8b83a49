"""How a meter reads on an invoice line ("API calls: 1,234,567 calls"): the one list of labels.

Stripe invoice items (``billing.rating.describe_usage``), the dbt marts (the seed
``dbt_project/seeds/meter_labels.csv``, written from this list by ``python -m
billing.meter_labels``) and the portal (which shows the marts' and Stripe's line text) all
read these labels; ``tests/unit/billing/test_meter_labels.py`` fails when the seed and this
list disagree. A meter without a label reads as its id with spaces, first letter capitalized
(``meter_label`` here, the same expression in ``fct_invoice_lines``).
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

METER_LABELS: dict[str, str] = {
    "api_calls": "API calls",
    "storage_gb": "Storage (peak)",
    "compute_seconds": "Compute",
    "bandwidth_gb": "Bandwidth",
    "active_users": "Active users",
}

SEED_PATH = Path(__file__).resolve().parents[1] / "dbt_project" / "seeds" / "meter_labels.csv"


def meter_label(meter: str) -> str:
    """The invoice label of ``meter``: its entry in ``METER_LABELS`` or its id, readable."""
    return METER_LABELS.get(meter) or meter.replace("_", " ").capitalize()


def seed_rows() -> list[list[str]]:
    """The seed CSV's rows (header first), in ``METER_LABELS`` order."""
    return [["meter", "label"], *([m, label] for m, label in METER_LABELS.items())]


def write_seed(path: Path = SEED_PATH) -> None:
    with path.open("w", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(seed_rows())


if __name__ == "__main__":  # python -m billing.meter_labels [PATH]: rewrite the dbt seed
    write_seed(Path(sys.argv[1]) if len(sys.argv) > 1 else SEED_PATH)
