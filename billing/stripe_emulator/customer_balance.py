"""The customer credit balance: balance transactions, and what finalizing an invoice does to it.

Stripe's rules (docs.stripe.com/invoicing/customer/balance, and the invoice object's
``starting_balance``/``ending_balance``):

- ``customer.balance`` is a ledger total in the customer's currency: negative is a credit (the
  customer is owed), positive a debit (the customer owes). ``POST
  /v1/customers/{id}/balance_transactions`` adds an ``adjustment`` (``amount`` negative to
  credit); the first one sets the customer's currency, a later one in another currency is
  refused.
- Finalizing an invoice applies the balance: ``starting_balance`` is the balance before,
  ``amount_due = max(total + starting_balance, 0)``, a credit left over stays on the balance
  (``ending_balance``), recorded as an ``applied_to_invoice`` transaction.
- An invoice whose ``amount_due`` is above 0 but below Stripe's minimum charge amount for its
  currency is marked ``paid`` and the amount moves to the balance as a debit
  (``invoice_too_small``), which the next invoice collects.
"""

from __future__ import annotations

from typing import Any

from billing.stripe_emulator.failures import StripeFailure, missing, missing_param
from billing.stripe_emulator.params import as_int, as_metadata
from billing.stripe_emulator.state import EmulatorState, new_id
from meterline.core import clock

# Stripe's minimum charge amounts (docs.stripe.com/currencies, "Minimum and maximum charge
# amounts"), in minor units, for the currencies Meterline's catalogs use. Other currencies:
# Stripe's minimum is the equivalent of USD 0.50 in the settlement currency, which needs an
# exchange rate; the emulator applies no minimum to them.
MINIMUM_CHARGE = {"usd": 50, "eur": 50, "gbp": 30, "jpy": 50, "cad": 50, "aud": 50, "chf": 50}
TRANSACTION_KEYS = "balance_transactions"


def create_balance_transaction(
    state: EmulatorState, customer_id: str, params: dict[str, Any]
) -> dict[str, Any]:
    customer = state.customer(customer_id)
    amount = as_int(params, "amount")
    if amount is None:
        raise missing_param("amount")
    currency = (params.get("currency") or "").lower()
    if not currency:
        raise missing_param("currency")
    _require_customer_currency(customer, currency)
    return _record(
        state,
        customer,
        amount,
        "adjustment",
        description=params.get("description"),
        metadata=as_metadata(params) or {},
    )


def _require_customer_currency(customer: dict[str, Any], currency: str) -> None:
    if customer.get("currency") and customer["currency"] != currency:
        raise StripeFailure(
            400,
            f"The customer's balance is in {customer['currency']}; a balance transaction in "
            f"{currency} cannot be added to it.",
            param="currency",
        )
    customer["currency"] = currency


def _record(
    state: EmulatorState,
    customer: dict[str, Any],
    amount: int,
    kind: str,
    *,
    invoice: str | None = None,
    description: str | None = None,
    metadata: dict[str, str] | None = None,
) -> dict[str, Any]:
    """One ledger entry: the customer's balance moves by ``amount``."""
    customer["balance"] = (customer.get("balance") or 0) + amount
    transaction = {
        "id": new_id("cbtxn"),
        "object": "customer_balance_transaction",
        "amount": amount,
        "checkout_session": None,
        "created": int(clock.timestamp()),
        "credit_note": None,
        "currency": customer["currency"],
        "customer": customer["id"],
        "customer_account": None,
        "description": description,
        "ending_balance": customer["balance"],
        "invoice": invoice,
        "livemode": False,
        "metadata": metadata or {},
        "type": kind,
    }
    state.data.setdefault(TRANSACTION_KEYS, {})[transaction["id"]] = transaction
    return transaction


def balance_transaction(state: EmulatorState, customer_id: str, txn_id: str) -> dict[str, Any]:
    state.customer(customer_id)
    txn = state.data.get(TRANSACTION_KEYS, {}).get(txn_id)
    if txn is None or txn["customer"] != customer_id:
        raise missing("customer_balance_transaction", txn_id)
    return txn


def list_balance_transactions(
    state: EmulatorState, customer_id: str, params: dict[str, Any]
) -> list[dict[str, Any]]:
    """The customer's ledger, newest first (``invoice`` filters by the invoice applied to)."""
    state.customer(customer_id)
    txns = [
        t for t in state.data.get(TRANSACTION_KEYS, {}).values() if t["customer"] == customer_id
    ]
    if params.get("invoice"):
        txns = [t for t in txns if t["invoice"] == params["invoice"]]
    return txns[::-1]


def balance_for(state: EmulatorState, invoice: dict[str, Any]) -> int:
    """The customer balance that applies to ``invoice`` (same currency, or none yet); none
    once the customer is deleted (its draft invoices stay, as in Stripe)."""
    customer = state.data["customers"].get(invoice["customer"])
    if customer is None or customer.get("currency") not in (None, invoice["currency"]):
        return 0
    return customer.get("balance") or 0


def apply_on_finalize(state: EmulatorState, invoice: dict[str, Any]) -> None:
    """Apply the customer balance to a just-finalized invoice, then Stripe's minimum charge."""
    customer = state.data["customers"][invoice["customer"]]
    starting = balance_for(state, invoice)
    total = invoice["total"]
    due = max(total + starting, 0)
    ending = min(starting + total, 0)
    invoice["starting_balance"] = starting
    invoice["amount_due"] = invoice["amount_remaining"] = due
    if ending != starting or total < 0:
        if customer.get("currency") is None:
            customer["currency"] = invoice["currency"]
        if ending != starting:
            _record(state, customer, ending - starting, "applied_to_invoice", invoice=invoice["id"])
    minimum = MINIMUM_CHARGE.get(invoice["currency"], 0)
    if 0 < due < minimum:
        # Stripe: "the invoice is automatically marked paid, and we add the amount due to the
        # customer's credit balance which is applied to the next invoice"
        if customer.get("currency") is None:
            customer["currency"] = invoice["currency"]
        _record(state, customer, due, "invoice_too_small", invoice=invoice["id"])
        invoice["amount_remaining"] = 0
        invoice["status"] = "paid"
        invoice["status_transitions"]["paid_at"] = invoice["status_transitions"]["finalized_at"]
        ending = due
    invoice["ending_balance"] = ending
