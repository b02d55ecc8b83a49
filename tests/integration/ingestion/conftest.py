"""Each test of a module that computes ``NOW`` once starts with the clock set back to it (and
running on), so a suite that crosses midnight at a month end (or a year end) cannot split one
test's events, counters and expectations across two months."""

import pytest

from tests.instants import ticking_from


@pytest.fixture(autouse=True)
def _clock_from_module_now(request):
    now = getattr(request.module, "NOW", None)
    if now is None:
        yield
        return
    with ticking_from(now):
        yield
