"""The platform functions' handlers end to end in process: API Gateway REST events in, moto tables behind."""

from __future__ import annotations

import json
import platform
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from aws_lambda_powertools import __version__ as powertools_version
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared import clock
from shared.audit import DynamoAuditLog, Outcome
from tests.conftest import sample_event
from tests.integration.conftest import (
    AUDIT_TABLE,
    PLATFORM_TABLE,
    SERVICE_VERSION,
    RestEventFactory,
    access_claims,
    claims,
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


def _health(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    from functions.platform.handlers import health

    response: dict[str, Any] = health.lambda_handler(event, context)
    return response


def _me(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    from functions.platform.handlers import me

    response: dict[str, Any] = me.lambda_handler(event, context)
    return response


def _pre_token(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    from functions.platform.handlers import pre_token

    response: dict[str, Any] = pre_token.lambda_handler(event, context)
    return response


def _probe(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    from functions.platform.handlers import health_probe

    response: dict[str, Any] = health_probe.lambda_handler(event, context)
    return response


# ---------------------------------------------------------------- GET /v1/health


def test_health_answers_degraded_without_a_heartbeat(
    tables: dict[str, str], rest_event: RestEventFactory, lambda_context: LambdaContext
) -> None:
    clock.freeze(NOW)
    response = _health(rest_event("/v1/health"), lambda_context)

    assert response["statusCode"] == 200
    body = _body(response)
    assert body["status"] == "degraded"
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
    lambda_context: LambdaContext,
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
    assert body["status"] == "ok"


def test_health_turns_degraded_when_the_workflow_stops_and_ok_when_it_runs_again(
    tables: dict[str, str], rest_event: RestEventFactory, lambda_context: LambdaContext
) -> None:
    clock.freeze(NOW)
    _probe({"execution": "run-1"}, lambda_context)

    statuses = []
    for minutes in (15, 16):  # HEALTH_STALE_AFTER_SECONDS is 900 in the functions' environment
        clock.freeze(NOW + timedelta(minutes=minutes))
        response = _health(rest_event("/v1/health"), lambda_context)
        statuses.append((response["statusCode"], _body(response)["status"]))
    _probe({"execution": "run-2"}, lambda_context)
    statuses.append((200, _body(_health(rest_event("/v1/health"), lambda_context))["status"]))

    assert statuses == [(200, "ok"), (200, "degraded"), (200, "ok")]


def test_a_late_heartbeat_does_not_hide_a_newer_one(
    tables: dict[str, str], rest_event: RestEventFactory, lambda_context: LambdaContext
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
    tables: dict[str, str], rest_event: RestEventFactory, lambda_context: LambdaContext
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
    lambda_context: LambdaContext,
) -> None:
    clock.freeze(NOW)
    event = rest_event("/v1/me", claims=claims(groups="recruiter,auditor,hr_admin"), request_id="req-me-1")

    response = _me(event, lambda_context)

    assert response["statusCode"] == 200
    assert _body(response) == {
        "tenant": "acme",
        "actor": "user",
        "subject": "user-123",
        "username": "jane",
        "roles": ["auditor", "hr_admin", "recruiter"],
        "scopes": [],
    }
    records = DynamoAuditLog(AUDIT_TABLE, client=ddb).entries("acme")
    assert len(records) == 1
    record = records[0]
    assert (record.actor, record.action, record.resource) == (
        "user:user-123",
        "identity:read",
        "identity/user-123",
    )
    assert (record.outcome, record.request_id, record.source_ip, record.at) == (
        Outcome.ALLOWED,
        "req-me-1",
        "203.0.113.7",
        NOW,
    )


@pytest.mark.parametrize(
    ("groups", "roles"),
    [
        ('["company_admin","auditor"]', ["auditor", "company_admin"]),
        ("[system_admin auditor]", ["auditor", "system_admin"]),
    ],
    ids=["json-list", "rest-flattened"],
)
def test_me_reads_every_group_claim_format(
    tables: dict[str, str],
    rest_event: RestEventFactory,
    lambda_context: LambdaContext,
    groups: str,
    roles: list[str],
) -> None:
    body = _body(_me(rest_event("/v1/me", claims=claims(groups=groups)), lambda_context))
    assert body["roles"] == roles


def test_each_call_is_audited_under_its_tenant(
    tables: dict[str, str],
    ddb: DynamoDBClient,
    rest_event: RestEventFactory,
    lambda_context: LambdaContext,
) -> None:
    for n in range(3):
        _me(rest_event("/v1/me", claims=claims(sub=f"user-{n}"), request_id=f"req-{n}"), lambda_context)
    _me(rest_event("/v1/me", claims=claims(tenant="globex"), request_id="req-g"), lambda_context)

    audit = DynamoAuditLog(AUDIT_TABLE, client=ddb)
    assert sorted(r.request_id for r in audit.entries("acme")) == ["req-0", "req-1", "req-2"]
    assert [r.request_id for r in audit.entries("globex")] == ["req-g"]


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
    lambda_context: LambdaContext,
    token_claims: dict[str, str] | None,
    message: str,
) -> None:
    response = _me(rest_event("/v1/me", claims=token_claims, request_id="req-401"), lambda_context)

    assert response["statusCode"] == 401
    assert _body(response) == {
        "error": {"code": "unauthenticated", "message": message, "request_id": "req-401", "details": []}
    }
    assert ddb.scan(TableName=AUDIT_TABLE)["Count"] == 0


@pytest.mark.parametrize("tenant", ["ACME#globex", "_platform", "_gateway"])
def test_me_with_an_invalid_or_system_tenant_claim_is_401_and_writes_nothing(
    tables: dict[str, str],
    ddb: DynamoDBClient,
    rest_event: RestEventFactory,
    lambda_context: LambdaContext,
    tenant: str,
) -> None:
    response = _me(rest_event("/v1/me", claims=claims(tenant=tenant), request_id="req-401"), lambda_context)
    assert response["statusCode"] == 401
    assert _body(response)["error"]["code"] == "unauthenticated"
    assert ddb.scan(TableName=AUDIT_TABLE)["Count"] == 0


@pytest.mark.parametrize(
    "groups",
    [None, "", "not-a-role", "x,auditor", "recruiter,not-a-role"],
    ids=["no-groups", "empty", "unknown-group", "comma-in-a-group-name", "one-unknown-among-roles"],
)
def test_me_without_any_role_is_403_and_the_refusal_is_audited(
    tables: dict[str, str],
    ddb: DynamoDBClient,
    rest_event: RestEventFactory,
    lambda_context: LambdaContext,
    groups: str | None,
) -> None:
    # identity:read is granted to every role (shared/permissions.py), so only a token with no role is refused.
    response = _me(rest_event("/v1/me", claims=claims(groups=groups), request_id="req-403"), lambda_context)

    assert response["statusCode"] == 403
    error = _body(response)["error"]
    assert (error["code"], error["request_id"]) == ("forbidden", "req-403")
    assert error["message"].startswith("identity:read requires roles: account_admin, auditor")

    records = DynamoAuditLog(AUDIT_TABLE, client=ddb).entries("acme")
    assert len(records) == 1  # the refusal only: no ALLOWED entry follows it
    denied = records[0]
    assert (denied.outcome, denied.actor, denied.action, denied.resource) == (
        Outcome.DENIED,
        "user:user-123",
        "identity:read",
        "identity/user-123",
    )
    assert (denied.request_id, denied.reason) == ("req-403", "missing role")


def test_me_without_its_audit_table_setting_is_a_configuration_error(
    tables: dict[str, str],
    rest_event: RestEventFactory,
    lambda_context: LambdaContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AUDIT_TABLE_NAME")
    response = _me(rest_event("/v1/me", claims=claims(), request_id="req-500"), lambda_context)
    assert response["statusCode"] == 500
    error = _body(response)["error"]
    assert error["code"] == "configuration_error"
    assert "AUDIT_TABLE_NAME" in error["message"]


# ---------------------------------------------------------------- machine clients


def test_me_names_an_integration_actor_for_its_tenant_and_audits_it(
    tables: dict[str, str],
    ddb: DynamoDBClient,
    rest_event: RestEventFactory,
    lambda_context: LambdaContext,
) -> None:
    clock.freeze(NOW)
    token = access_claims(scope="ats/identity.read ats/messages.write")

    response = _me(rest_event("/v1/me", claims=token, request_id="req-m2m"), lambda_context)

    assert response["statusCode"] == 200
    assert _body(response) == {
        "tenant": "acme",
        "actor": "integration",
        "subject": "client-acme-1",
        "username": None,
        "roles": [],
        "scopes": ["identity.read", "messages.write"],
    }
    (record,) = DynamoAuditLog(AUDIT_TABLE, client=ddb).entries("acme")
    assert (record.actor, record.outcome, record.request_id) == (
        "integration:client-acme-1",
        Outcome.ALLOWED,
        "req-m2m",
    )


def test_an_access_token_for_acme_never_reaches_globex(
    tables: dict[str, str],
    ddb: DynamoDBClient,
    rest_event: RestEventFactory,
    lambda_context: LambdaContext,
) -> None:
    event = rest_event("/v1/me", claims=access_claims(tenant="acme"))
    event["headers"]["X-Tenant"] = "globex"
    event["queryStringParameters"] = {"tenant": "globex"}
    event["pathParameters"] = {"tenant": "globex"}

    body = _body(_me(event, lambda_context))

    assert body["tenant"] == "acme"
    audit = DynamoAuditLog(AUDIT_TABLE, client=ddb)
    assert len(audit.entries("acme")) == 1
    assert audit.entries("globex") == []


def test_an_integration_without_the_identity_scope_is_403_and_audited(
    tables: dict[str, str],
    ddb: DynamoDBClient,
    rest_event: RestEventFactory,
    lambda_context: LambdaContext,
) -> None:
    response = _me(rest_event("/v1/me", claims=access_claims(scope="ats/messages.write")), lambda_context)

    assert response["statusCode"] == 403
    (record,) = DynamoAuditLog(AUDIT_TABLE, client=ddb).entries("acme")
    assert (record.outcome, record.actor, record.reason) == (
        Outcome.DENIED,
        "integration:client-acme-1",
        "missing scope",
    )


def test_a_machine_token_without_a_tenant_is_401(
    tables: dict[str, str], rest_event: RestEventFactory, lambda_context: LambdaContext
) -> None:
    response = _me(rest_event("/v1/me", claims=access_claims(tenant=None)), lambda_context)
    assert response["statusCode"] == 401


# ---------------------------------------------------------------- pre-token-generation trigger


def _register(ddb: DynamoDBClient, client_id: str, tenant: str) -> None:
    from functions.platform.dal.clients import DynamoClientRegistry

    DynamoClientRegistry(PLATFORM_TABLE, client=ddb).register(client_id, tenant)


def test_the_trigger_binds_a_registered_client_to_its_tenant_from_the_registry(
    tables: dict[str, str], ddb: DynamoDBClient, lambda_context: LambdaContext
) -> None:
    event = sample_event("cognito_pre_token_client_credentials.json")
    client_id = event["callerContext"]["clientId"]
    _register(ddb, client_id, "globex")

    result = _pre_token(event, lambda_context)

    access = result["response"]["claimsAndScopeOverrideDetails"]["accessTokenGeneration"]
    assert access == {"claimsToAddOrOverride": {"custom:tenant": "globex"}}
    stored = ddb.get_item(TableName=PLATFORM_TABLE, Key={"pk": {"S": "T#_platform#CLIENTS"}, "sk": {"S": client_id}})
    assert stored["Item"]["tenant"] == {"S": "globex"}


def test_the_trigger_refuses_an_unregistered_client(
    tables: dict[str, str], ddb: DynamoDBClient, lambda_context: LambdaContext
) -> None:
    from shared.errors import Unauthenticated

    _register(ddb, "some-other-client", "acme")

    with pytest.raises(Unauthenticated, match="not registered"):
        _pre_token(sample_event("cognito_pre_token_client_credentials.json"), lambda_context)


def test_a_token_the_trigger_bound_is_answered_as_an_integration_of_that_tenant(
    tables: dict[str, str],
    ddb: DynamoDBClient,
    rest_event: RestEventFactory,
    lambda_context: LambdaContext,
) -> None:
    trigger = sample_event("cognito_pre_token_client_credentials.json")
    client_id = trigger["callerContext"]["clientId"]
    _register(ddb, client_id, "globex")
    added = _pre_token(trigger, lambda_context)["response"]["claimsAndScopeOverrideDetails"]["accessTokenGeneration"]
    # What Cognito then issues: the requested scopes, the client as subject, and the claims the trigger added.
    token = access_claims(client_id=client_id, tenant=None, scope=" ".join(trigger["request"]["scopes"]))
    token.update(added["claimsToAddOrOverride"])

    body = _body(_me(rest_event("/v1/me", claims=token), lambda_context))

    assert (body["tenant"], body["actor"], body["subject"]) == ("globex", "integration", client_id)


# ---------------------------------------------------------------- the shared sample events


def test_the_sample_health_event(tables: dict[str, str], lambda_context: LambdaContext) -> None:
    response = _health(sample_event("apigw_get_health.json"), lambda_context)
    assert response["statusCode"] == 200
    assert _body(response)["status"] == "degraded"  # no health workflow has run in this fresh table


def test_the_sample_me_event(tables: dict[str, str], ddb: DynamoDBClient, lambda_context: LambdaContext) -> None:
    event = sample_event("apigw_get_me.json")
    token = event["requestContext"]["authorizer"]["claims"]

    response = _me(event, lambda_context)

    assert response["statusCode"] == 200
    body = _body(response)
    assert (body["tenant"], body["subject"], body["actor"]) == (token["custom:tenant"], token["sub"], "user")
    assert body["roles"] == sorted(body["roles"])
    (record,) = DynamoAuditLog(AUDIT_TABLE, client=ddb).entries(token["custom:tenant"])
    assert record.request_id == event["requestContext"]["requestId"]
