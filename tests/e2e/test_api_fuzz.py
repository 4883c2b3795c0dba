"""Every route of the served OpenAPI document fuzzed with schemathesis: without a token, with a valid one and
with a tampered one. No 5xx, and no response outside the documented schema. Bounded in count and time.

Operations are read from the served document at run time, so a route added later is fuzzed without edits.
(schemathesis' pytest plugin does not run under pytest 9 here; its strategies are driven by hypothesis directly.)
"""

from __future__ import annotations

from typing import Any, cast

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from tests.e2e.conftest import Api

pytestmark = pytest.mark.e2e

MAX_EXAMPLES_PER_OPERATION = 15
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
]


def _tampered(token: str) -> str:
    head, payload, signature = token.split(".")
    return ".".join([head, payload, ("A" if signature[0] != "A" else "B") + signature[1:]])


def test_every_route_conforms_to_the_schema(runtime: Api) -> None:
    schema = schemathesis.openapi.from_url(runtime.base + "/openapi.json")
    token = runtime.token("acme", "compliance_officer")
    auth_variants: list[dict[str, str]] = [
        {},
        {"Authorization": f"Bearer {token}"},
        {"Authorization": f"Bearer {_tampered(token)}"},
    ]
    fuzzed: list[str] = []
    for result in schema.get_all_operations():
        operation = cast(Any, result).ok()  # an Err here means the document is invalid: let it raise

        @given(case=operation.as_strategy())
        @settings(
            max_examples=MAX_EXAMPLES_PER_OPERATION,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def conforms(case: Any) -> None:
            for headers in auth_variants:
                case.call_and_validate(base_url=runtime.base, headers=headers, checks=CHECKS)

        conforms()
        fuzzed.append(operation.label)
    assert {"GET /v1/health", "GET /v1/me"} <= set(fuzzed)
