"""schemathesis drives every operation of /schema/openapi.json on the live server, signed in as an admin
(session cookie and CSRF header), and fails on any 5xx or a response that breaks its documented schema.

Bounded for CI: a few generated examples per operation, valid ones (positive) and schema-violating ones
(negative), no shrinking phase (a failure still shows the request that caused it). Checks chosen:
- not_a_server_error: the point of finding 1; no generated input may answer 5xx.
- response_schema_conformance: a documented status with a JSON body must match its schema (the /api
  responses, and the JSON error body of documented 400s).
- content_type_conformance: a documented status answers the documented media type (pages text/html).
Left out on purpose: status_code_conformance (Litestar documents 200/303/400 only; a 404 for a random id,
a 403, 409 or 429 are correct answers it would flag), and the checks that assume a REST resource model
(use_after_free, ensure_resource_availability, positive_data_acceptance: a random id is rightly a 404).
We send Accept: application/json so that error bodies come as the documented JSON; pages still answer
text/html, as documented.
"""

from __future__ import annotations

import json

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from tests.conftest import PASSWORD, LiveServer, make_member, make_tenant

MAX_EXAMPLES = 5  # per operation and generation mode (positive, negative)
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


@pytest.fixture(scope="module")
async def admin_headers(live_server: LiveServer) -> dict[str, str]:
    admin = await make_member(await make_tenant("Acme"), "admin", "adam")
    async with httpx.AsyncClient(base_url=live_server.url) as http:
        await http.get("/login")
        csrf = http.cookies["cw_csrf"]
        response = await http.post("/login", data={"email": admin.email, "password": PASSWORD, "_csrf_token": csrf})
        assert response.status_code == 303, response.text[:300]
        cookies = "; ".join(f"{name}={value}" for name, value in http.cookies.items())
    return {"Cookie": cookies, "x-csrftoken": csrf, "Accept": "application/json"}


# Signing out would end the session every other operation runs with.
EXCLUDED = {("POST", "/logout")}


# Keywords that give negative generation something to violate. A form of free strings has nothing (a
# form cannot carry a wrong type), and schemathesis spends up to half a minute per operation finding out.
CONSTRAINTS = ('"pattern"', '"maxLength"', '"minLength"', '"maximum"', '"minimum"', '"enum"', '"format"',
               '"integer"', '"number"', '"boolean"')


def _modes(operation) -> list[GenerationMode]:
    raw = operation.definition.raw
    inputs = json.dumps([raw.get("parameters", []), raw.get("requestBody", {})])
    if any(keyword in inputs for keyword in CONSTRAINTS):
        return [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
    return [GenerationMode.POSITIVE]


def test_it_answers_generated_requests_without_server_errors_and_as_documented(live_server, admin_headers):
    # schemathesis's pytest integration (`from_fixture` + `parametrize`) needs the schema at collection time
    # or pytest internals that pytest 9 dropped; its Hypothesis strategies per operation need neither.
    schema = schemathesis.openapi.from_url(f"{live_server.url}/schema/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    operations = [op for op in operations if (op.method.upper(), op.path) not in EXCLUDED]
    assert len(operations) >= 40
    failures: list[str] = []
    calls = 0

    for operation in operations:
        for mode in _modes(operation):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=MAX_EXAMPLES, deadline=None, phases=[Phase.explicit, Phase.generate],
                      suppress_health_check=list(HealthCheck), database=None)
            def probe(case) -> None:
                nonlocal calls
                calls += 1
                case.call_and_validate(headers=admin_headers, checks=CHECKS, timeout=30)

            try:
                probe()
            except Unsatisfiable:
                # Nothing schema-violating to generate (no parameters, or only free-form strings).
                assert mode is GenerationMode.NEGATIVE, operation.path
            except Exception as exc:  # a check failed: collect them all, report at the end
                failures.append(f"{operation.method.upper()} {operation.path} ({mode.value}): {exc}"[:2000])
    assert failures == [], "\n\n".join(failures)
    assert calls >= len(operations) * MAX_EXAMPLES
