"""The platform functions' handlers end to end in process: API Gateway REST events in, moto tables behind."""

from __future__ import annotations

import json
import platform
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from aws_lambda_powertools import __version__ as powertools_version

from shared import clock
from shared.audit import DynamoAuditLog, Outcome
from tests.integration.conftest import (
    AUDIT_TABLE,
    PLATFORM_TABLE,
    SERVICE_VERSION,
    FakeLambdaContext,
    RestEventFactory,
    claims,
    sample_event,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

NOW = datetime(2025, 3, 1, 12, 0, 0, 123000, tzinfo=UTC)


def _body(response: dict[str, Any]) -> dict[str, Any]:
    assert response["multiValueHeaders"]["Content-Type"] == ["application/json"]
    body: dict[str, Any] = json.loads(response["body"])
    return body


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _health(event: dict[str, Any], context: FakeLambdaContext) -> dict[str, Any]:
    from functions.platform.handlers import health

    response: dict[str, Any] = health.lambda_handler(event, context)
    return response


def _me(event: dict[str, Any], context: FakeLambdaContext) -> dict[str, Any]:
    from functions.platform.handlers import me

    response: dict[str, Any] = me.lambda_handler(event, context)
    return response


def _probe(event: dict[str, Any], context: FakeLambdaContext) -> dict[str, Any]:
    from functions.platform.handlers import health_probe

    response: dict[str, Any] = health_probe.lambda_handler(event, context)
    return response


# ---------------------------------------------------------------- GET /v1/health


def test_health_answers_without_a_heartbeat(
    tables: dict[str, str], rest_event: RestEventFactory, lambda_context: FakeLambdaContext
) -> None:
    clock.freeze(NOW)
    response = _health(rest_event("/v1/health"), lambda_context)

    assert response["statusCode"] == 200
    body = _body(response)
    assert body["status"] == "ok"
    assert body["versions"] == {
        "service": SERVICE_VERSION,
        "python": platform.python_version(),
        "powertools": powertools_version,
    }
    assert _when(body["now"]) == NOW
    assert body["last_heartbeat"] is None


def test_health_reports_the_probes_heartbeat(
    tables: dict[str, str],
    ddb: DynamoDBClient,
    rest_event: RestEventFactory,
    lambda_context: FakeLambdaContext,
) -> None:
    clock.freeze(NOW)
    execution = "arn:aws:states:eu-west-1:123456789012:execution:HealthWorkflow:run-1"

    output = _probe({"execution": execution}, lambda_context)

    assert output == {"checked_at": "2025-03-01T12:00:00.123Z", "execution": execution}
    stored = ddb.get_item(TableName=PLATFORM_TABLE, Key={"pk": {"S": "T#_platform#HEALTH"}, "sk": {"S": "HEARTBEAT"}})[
        "Item"
    ]
    assert _when(stored["checked_at"]["S"]) == NOW
    assert stored["execution"] == {"S": execution}

    clock.freeze(NOW + timedelta(minutes=3))
    body = _body(_health(rest_event("/v1/health"), lambda_context))
    assert _when(body["last_heartbeat"]) == NOW == _when(output["checked_at"])
    assert _when(body["now"]) == NOW + timedelta(minutes=3)


def test_a_late_heartbeat_does_not_hide_a_newer_one(
    tables: dict[str, str], rest_event: RestEventFactory, lambda_context: FakeLambdaContext
) -> None:
    clock.freeze(NOW)
    _probe({"execution": "newer"}, lambda_context)
    clock.freeze(NOW - timedelta(minutes=5))
    _probe({"execution": "older"}, lambda_context)
    clock.freeze(NOW + timedelta(seconds=1))
    _probe({}, lambda_context)  # a run without an execution id still moves the heartbeat forward

    body = _body(_health(rest_event("/v1/health"), lambda_context))
    assert _when(body["last_heartbeat"]) == NOW + timedelta(seconds=1)


def test_an_unknown_route_gets_the_error_body(
    tables: dict[str, str], rest_event: RestEventFactory, lambda_context: FakeLambdaContext
) -> None:
    response = _health(rest_event("/v1/nope", request_id="req-404"), lambda_context)
    assert response["statusCode"] == 404
    assert _body(response) == {
        "error": {"code": "not_found", "message": "no route for /v1/nope", "request_id": "req-404", "details": []}
    }


# ---------------------------------------------------------------- GET /v1/me


def test_me_returns_the_verified_identity_and_audits_the_read(
    tables: dict[str, str],
    ddb: DynamoDBClient,
    rest_event: RestEventFactory,
    lambda_context: FakeLambdaContext,
) -> None:
    clock.freeze(NOW)
    event = rest_event("/v1/me", claims=claims(groups="recruiter,auditor,hr_admin,not-a-role"), request_id="req-me-1")

    response = _me(event, lambda_context)

    assert response["statusCode"] == 200
    assert _body(response) == {
        "tenant": "acme",
        "subject": "user-123",
        "username": "jane",
        "roles": ["auditor", "hr_admin", "recruiter"],
    }
    records = DynamoAuditLog(AUDIT_TABLE, client=ddb).entries("acme")
    assert len(records) == 1
    record = records[0]
    assert (record.seq, record.actor, record.action, record.resource) == (
        1,
        "user-123",
        "identity:read",
        "identity/user-123",
    )
    assert (record.outcome, record.request_id, record.source_ip, record.at) == (
        Outcome.ALLOWED,
        "req-me-1",
        "203.0.113.7",
        NOW,
    )
    assert DynamoAuditLog(AUDIT_TABLE, client=ddb).verify("acme").ok


@pytest.mark.parametrize(
    ("groups", "roles"),
    [
        ('["company_admin","integration"]', ["company_admin", "integration"]),
        ("[system_admin auditor]", ["auditor", "system_admin"]),
    ],
    ids=["json-list", "rest-flattened"],
)
def test_me_reads_every_group_claim_format(
    tables: dict[str, str],
    rest_event: RestEventFactory,
    lambda_context: FakeLambdaContext,
    groups: str,
    roles: list[str],
) -> None:
    body = _body(_me(rest_event("/v1/me", claims=claims(groups=groups)), lambda_context))
    assert body["roles"] == roles


def test_each_call_extends_the_tenants_chain(
    tables: dict[str, str],
    ddb: DynamoDBClient,
    rest_event: RestEventFactory,
    lambda_context: FakeLambdaContext,
) -> None:
    for n in range(3):
        _me(rest_event("/v1/me", claims=claims(sub=f"user-{n}"), request_id=f"req-{n}"), lambda_context)
    _me(rest_event("/v1/me", claims=claims(tenant="globex"), request_id="req-g"), lambda_context)

    audit = DynamoAuditLog(AUDIT_TABLE, client=ddb)
    assert [(r.seq, r.request_id) for r in audit.entries("acme")] == [(1, "req-0"), (2, "req-1"), (3, "req-2")]
    assert [r.request_id for r in audit.entries("globex")] == ["req-g"]
    assert audit.verify("acme").entries == 3


@pytest.mark.parametrize(
    ("token_claims", "message"),
    [
        (None, "no verified identity on the request"),
        (claims(sub=None), "no verified identity on the request"),
        (claims(tenant=None), "the token carries no custom:tenant claim"),
    ],
    ids=["no-claims", "no-subject", "no-tenant"],
)
def test_me_without_verified_claims_is_401_and_writes_nothing(
    tables: dict[str, str],
    ddb: DynamoDBClient,
    rest_event: RestEventFactory,
    lambda_context: FakeLambdaContext,
    token_claims: dict[str, str] | None,
    message: str,
) -> None:
    response = _me(rest_event("/v1/me", claims=token_claims, request_id="req-401"), lambda_context)

    assert response["statusCode"] == 401
    assert _body(response) == {
        "error": {"code": "unauthenticated", "message": message, "request_id": "req-401", "details": []}
    }
    assert ddb.scan(TableName=AUDIT_TABLE)["Count"] == 0


def test_me_with_an_invalid_tenant_claim_is_400(
    tables: dict[str, str], rest_event: RestEventFactory, lambda_context: FakeLambdaContext
) -> None:
    response = _me(rest_event("/v1/me", claims=claims(tenant="ACME#globex"), request_id="req-400"), lambda_context)
    assert response["statusCode"] == 400
    assert _body(response)["error"]["code"] == "bad_request"


@pytest.mark.parametrize("groups", [None, "", "not-a-role"], ids=["no-groups", "empty", "unknown-group"])
def test_me_without_any_role_is_403_and_the_refusal_is_audited(
    tables: dict[str, str],
    ddb: DynamoDBClient,
    rest_event: RestEventFactory,
    lambda_context: FakeLambdaContext,
    groups: str | None,
) -> None:
    # identity:read is granted to every role (shared/permissions.py), so only a token with no role is refused.
    response = _me(rest_event("/v1/me", claims=claims(groups=groups), request_id="req-403"), lambda_context)

    assert response["statusCode"] == 403
    error = _body(response)["error"]
    assert (error["code"], error["request_id"]) == ("forbidden", "req-403")
    assert error["message"].startswith("identity:read requires one of the roles: account_admin, auditor")

    records = DynamoAuditLog(AUDIT_TABLE, client=ddb).entries("acme")
    assert len(records) == 1  # the refusal only: no ALLOWED entry follows it
    denied = records[0]
    assert (denied.outcome, denied.actor, denied.action, denied.resource) == (
        Outcome.DENIED,
        "user-123",
        "identity:read",
        "identity/user-123",
    )
    assert (denied.request_id, denied.reason) == ("req-403", "missing role")


def test_me_without_its_audit_table_setting_is_a_configuration_error(
    tables: dict[str, str],
    rest_event: RestEventFactory,
    lambda_context: FakeLambdaContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AUDIT_TABLE_NAME")
    response = _me(rest_event("/v1/me", claims=claims(), request_id="req-500"), lambda_context)
    assert response["statusCode"] == 500
    error = _body(response)["error"]
    assert error["code"] == "configuration_error"
    assert "AUDIT_TABLE_NAME" in error["message"]


# ---------------------------------------------------------------- the shared sample events


def test_the_sample_health_event(tables: dict[str, str], lambda_context: FakeLambdaContext) -> None:
    response = _health(sample_event("apigw_get_health.json"), lambda_context)
    assert response["statusCode"] == 200
    assert _body(response)["status"] == "ok"


def test_the_sample_me_event(tables: dict[str, str], ddb: DynamoDBClient, lambda_context: FakeLambdaContext) -> None:
    event = sample_event("apigw_get_me.json")
    token = event["requestContext"]["authorizer"]["claims"]

    response = _me(event, lambda_context)

    assert response["statusCode"] == 200
    body = _body(response)
    assert (body["tenant"], body["subject"]) == (token["custom:tenant"], token["sub"])
    assert body["roles"] == sorted(body["roles"])
    (record,) = DynamoAuditLog(AUDIT_TABLE, client=ddb).entries(token["custom:tenant"])
    assert record.request_id == event["requestContext"]["requestId"]
