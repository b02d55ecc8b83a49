"""Property-based fuzzing of every operation in ``/openapi.json`` (schemathesis): whatever a
client sends, valid or not, signed in as a tenant, as the admin or as nobody, the server never
answers 5xx. The server is the real app on uvicorn over the dashboard world (real PostgreSQL,
Redis and marts).

Each operation gets its own Hypothesis run over ``operation.as_strategy()``; the failures of all
operations are collected so one run names every endpoint that broke. (schemathesis'
``pytest.from_fixture`` does not work with pytest 9, hence the explicit loop.)
"""

from __future__ import annotations

from collections import Counter

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from tests.browser.dashboard_world import ADMIN_KEY

# Generated requests per operation (each sent once per identity). Small enough to keep the suite
# fast, large enough that schemathesis reaches edge values (empty, huge, unicode, wrong types).
EXAMPLES_PER_OPERATION = 40


def identities(world) -> dict[str, dict[str, str]]:
    tenant_key = next(iter(world.keys.values()))
    return {
        "anonymous": {},
        "tenant": {"Authorization": f"Bearer {tenant_key}"},
        "admin": {"Authorization": f"Bearer {ADMIN_KEY}"},
        "garbage": {"Authorization": "Bearer \u00e9\u00e8-not-a-key"},
    }


def fuzz(operation, headers_by_identity: dict[str, dict[str, str]], seen: Counter) -> None:
    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def run(case):
        for headers in headers_by_identity.values():
            response = case.call(headers=headers)
            seen[response.status_code // 100 * 100] += 1
            case.validate_response(response, checks=[not_a_server_error])

    run()


def test_no_request_makes_the_server_answer_5xx(base_url, world):
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 5, f"expected the whole API in /openapi.json, found {operations}"
    failures, seen = {}, Counter()
    for operation in operations:
        try:
            fuzz(operation, identities(world), seen)
        except Exception as exc:  # collect every broken endpoint, then fail once
            failures[operation.label] = f"{type(exc).__name__}: {str(exc)[:1500]}"
    assert not failures, "\n\n".join(f"{label}\n{text}" for label, text in failures.items())
    # The fuzzing reached the endpoints' logic, not only their doors: valid requests succeeded
    # and invalid ones were refused.
    assert seen[200] > 0 and seen[400] > 0, f"responses by class: {dict(seen)}"
    print(f"{len(operations)} operations, responses by class: {dict(sorted(seen.items()))}")
