"""A Stripe emulator per test module, reset before each test, reached through the official SDK."""

import pytest
import requests

from billing.stripe_client import make_stripe_client
from billing.stripe_emulator import start_emulator


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    running = start_emulator(state_dir=tmp_path_factory.mktemp("emulator"))
    yield running
    running.stop()


@pytest.fixture
def client(emulator):
    requests.post(
        f"{emulator.url}/_emulator/reset",
        headers={"X-Emulator-Token": emulator.admin_token},
        timeout=5,
    ).raise_for_status()
    return make_stripe_client("sk_test_emulator", emulator.url, timeout=5)


def admin(emulator, method: str, path: str, body: dict | None = None) -> dict:
    """Call the emulator's ``/_emulator/<path>`` admin endpoint with its token."""
    response = requests.request(
        method,
        f"{emulator.url}/_emulator/{path}",
        json=body,
        headers={"X-Emulator-Token": emulator.admin_token},
        timeout=5,
    )
    response.raise_for_status()
    return response.json()
