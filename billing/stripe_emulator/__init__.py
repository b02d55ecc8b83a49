"""A local Stripe emulator: the subset of Stripe's REST API Meterline uses, over real HTTP.

Run it with ``python -m billing.stripe_emulator --host 127.0.0.1 --port 12111 --state-dir DIR``
and point the official SDK at it::

    client = stripe.StripeClient("sk_test_emulator", base_addresses={"api": "http://127.0.0.1:12111"})
"""

from billing.stripe_emulator.server import Emulator, EmulatorServer, RunningEmulator, start_emulator

__all__ = ["Emulator", "EmulatorServer", "RunningEmulator", "start_emulator"]
