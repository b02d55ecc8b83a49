"""Stripe and billing policy as resources (the CLI exports the embedded emulator's URL)."""

import dagster as dg


class StripeResource(dg.ConfigurableResource):
    """Stripe through the official SDK; ``api_base`` points at the emulator when no key is set."""

    api_key: str
    api_base: str = "https://api.stripe.com"

    def client(self):
        from billing.stripe_client import make_stripe_client

        return make_stripe_client(self.api_key, self.api_base)


class BillingPolicyResource(dg.ConfigurableResource):
    """When a month may be invoiced, and where finance reports go."""

    grace_hours: int = 72
    reports_dir: str = ".meterline/reports"
    minimum_amount: str = "0"


defs = dg.Definitions(
    resources={
        "stripe": StripeResource(
            api_key=dg.EnvVar("STRIPE_API_KEY"), api_base=dg.EnvVar("STRIPE_API_BASE")
        ),
        "billing_policy": BillingPolicyResource(
            grace_hours=dg.EnvVar.int("BILLING_GRACE_HOURS"),
            reports_dir=dg.EnvVar("METERLINE_REPORTS_DIR"),
        ),
    }
)
