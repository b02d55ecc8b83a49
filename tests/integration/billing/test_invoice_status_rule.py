"""``meterline.next_invoice_status``: the one rule for moving an invoice's recorded status,
whatever order Stripe's webhooks (and Meterline's own invoice runs) arrive in."""

import pytest
from sqlalchemy import text

MOVES = [
    # (recorded, told, result)
    ("draft", "open", "open"),
    ("open", "paid", "paid"),
    ("open", "payment_failed", "payment_failed"),
    ("payment_failed", "paid", "paid"),
    ("payment_failed", "open", "payment_failed"),  # a late invoice.finalized
    ("paid", "open", "paid"),  # never back to open
    ("paid", "payment_failed", "paid"),  # a failure delivered after the success
    ("paid", "void", "paid"),  # Stripe cannot void a paid invoice
    ("void", "paid", "void"),
    ("open", "uncollectible", "uncollectible"),
    ("uncollectible", "paid", "paid"),  # Stripe can still collect it
    ("uncollectible", "void", "void"),
    ("uncollectible", "open", "uncollectible"),
    ("uncollectible", "payment_failed", "uncollectible"),
    ("open", "draft", "open"),  # a finalized invoice is never a draft again
    ("pending", "draft", "draft"),
    ("pending", "skipped", "skipped"),
    (None, "pending", "pending"),
]


@pytest.mark.parametrize(("recorded", "told", "result"), MOVES)
def test_a_status_moves_only_forward(engine, recorded, told, result):
    with engine.connect() as conn:
        moved = conn.execute(
            text("select meterline.next_invoice_status(:r, :t)"), {"r": recorded, "t": told}
        ).scalar()
    assert moved == result
