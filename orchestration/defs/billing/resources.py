"""Stripe and billing policy as resources, built from the settings by
:func:`orchestration.resources.resources_from_settings`."""

from __future__ import annotations

from pathlib import Path

import dagster as dg


class StripeResource(dg.ConfigurableResource):
    """Stripe through the official SDK. Without ``api_key`` (``STRIPE_API_KEY`` unset) it is
    the built-in emulator that ``meterline services up`` runs under ``home``, looked up when
    a run needs it, so a code location that never invoices loads without it."""

    api_key: str | None = None
    api_base: str | None = None
    home: str | None = None

    def client(self):
        from billing.stripe_client import make_stripe_client

        api_key, api_base = self.api_key, self.api_base
        if not api_key:
            from meterline.core.services import EmbeddedStripe

            emulator = EmbeddedStripe(Path(self.home or ".meterline"))
            if emulator.pid() is None:
                raise dg.Failure(
                    "STRIPE_API_KEY is not set and no Stripe emulator runs under "
                    f"{emulator.root.parent} (METERLINE_HOME): set STRIPE_API_KEY (and "
                    "STRIPE_API_BASE for an emulator elsewhere), or run `meterline services up`"
                )
            api_key, api_base = emulator.api_key, api_base or emulator.url()
        return make_stripe_client(api_key, api_base)


class BillingPolicyResource(dg.ConfigurableResource):
    """When a month may be invoiced, and where finance reports go."""

    grace_hours: int = 72
    reports_dir: str = ".meterline/reports"
    minimum_amount: str = "0"
