"""Every request by a verified caller leaves an audit entry, even when its route audited nothing itself
(shared/http.py `audit_unaudited`); routes that audit keep their own words. The walk over every route of the
deployed API is tests/e2e/test_audit_coverage.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from pydantic import BaseModel, Field

from shared.audit import AuditEntry, DynamoAuditLog, Outcome
from shared.http import build_resolver, request_context
from shared.permissions import Permission, authorize
from tests.conftest import make_lambda_context
from tests.unit.test_http import ME_REQUEST_ID, api_event

AUDIT_TABLE = "audit-table"


class Thing(BaseModel):
    name: str = Field(min_length=1)


@pytest.fixture
def written(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, list[AuditEntry]]]]:
    """What the request path wrote to the trail: (tenant, entries) per insert."""
    writes: list[tuple[str, list[AuditEntry]]] = []
    monkeypatch.setenv("AUDIT_TABLE_NAME", AUDIT_TABLE)
    monkeypatch.setattr(DynamoAuditLog, "write", lambda self, tenant, entries: writes.append((tenant, list(entries))))
    yield writes


@pytest.fixture(scope="module")
def app() -> APIGatewayRestResolver:
    app = build_resolver()

    @app.get("/v1/things/<thing_id>")
    def read_thing(thing_id: str) -> dict[str, Any]:
        return {"id": thing_id}  # audits nothing itself

    @app.post("/v1/things")
    def create_thing(body: Thing) -> dict[str, Any]:
        return {"name": body.name}

    @app.get("/v1/audited")
    def audited() -> dict[str, Any]:
        request = request_context(app)
        authorize(
            request.actor,
            Permission.READ_OWN_IDENTITY,
            resource="me",
            request_id=request.request_id,
            audit=DynamoAuditLog(AUDIT_TABLE),
        )
        return {}

    return app


def call(app: APIGatewayRestResolver, method: str, path: str, body: Any = None, **kwargs: Any) -> int:
    response = app.resolve(api_event(method, path, body, **kwargs), make_lambda_context())
    return int(response["statusCode"])


def test_a_route_that_audits_nothing_gets_an_entry_naming_the_route_and_the_path(app, written) -> None:
    assert call(app, "GET", "/v1/things/t-42", sample="apigw_get_me.json") == 200

    ((tenant, (entry,)),) = written
    assert tenant == "acme" == entry.tenant
    assert entry.actor.startswith("user:")
    assert entry.action == "http:GET /v1/things/t-42"  # the event's resource, as the test event sets it
    assert entry.resource == "/v1/things/t-42"
    assert entry.outcome is Outcome.ALLOWED and entry.reason is None
    assert entry.request_id == ME_REQUEST_ID
    assert entry.source_ip == "198.51.100.7"


def test_a_request_refused_by_validation_is_audited_as_failed_with_its_status(app, written) -> None:
    assert call(app, "POST", "/v1/things", {"name": ""}, sample="apigw_get_me.json") == 422

    ((_, (entry,)),) = written
    assert entry.outcome is Outcome.FAILED
    assert entry.reason == "HTTP 422 validation_failed"
    assert entry.action == "http:POST /v1/things" and entry.resource == "/v1/things"


def test_a_route_that_audits_keeps_its_own_entry_and_gets_no_second(app, written) -> None:
    assert call(app, "GET", "/v1/audited", sample="apigw_get_me.json") == 200

    ((_, entries),) = written
    assert [e.action for e in entries] == [Permission.READ_OWN_IDENTITY.value]


def test_an_anonymous_request_is_not_attributed_to_any_tenant(app, written) -> None:
    assert call(app, "GET", "/v1/things/t-1") == 200  # the health sample carries no verified claims

    assert written == []


def test_the_query_string_never_reaches_the_trail(app, written) -> None:
    event = api_event("GET", "/v1/things/t-7", sample="apigw_get_me.json")
    event["queryStringParameters"] = {"q": "Jane Doe"}
    event["multiValueQueryStringParameters"] = {"q": ["Jane Doe"]}
    app.resolve(event, make_lambda_context())

    ((_, (entry,)),) = written
    assert "Jane" not in json.dumps(entry.model_dump(mode="json"))


def test_a_function_without_an_audit_table_writes_nothing(app, written, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AUDIT_TABLE_NAME")

    assert call(app, "GET", "/v1/things/t-1", sample="apigw_get_me.json") == 200
    assert written == []
