"""The platform handlers end to end in-process, with their AWS adapters replaced by in-memory fakes."""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from functions.platform.handlers import audit_refusals, health, health_probe, me, pre_token
from functions.platform.models.entities import Heartbeat
from shared import clock
from shared.audit import Outcome
from shared.errors import Unauthenticated
from shared.keys import GATEWAY_TENANT
from shared.observability import metrics
from tests.conftest import make_lambda_context, sample_event
from tests.fakes import FakeAuditLog, FakeClientRegistry, FakeHeartbeatStore

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

EVENTS = Path(__file__).resolve().parents[2] / "events"
AT = datetime(2025, 11, 20, 9, 15, 30, tzinfo=UTC)
EXECUTION = (
    "arn:aws:states:eu-west-1:123456789012:execution:"
    "HealthWorkflow3F1E2D4C-Xk9PqR2sT7uV:6b1f0c3e-8d2a-4e7b-9f51-0a3c2d4e6b78"
)


@pytest.fixture(autouse=True)
def _function_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {
        "POWERTOOLS_SERVICE_NAME": "ats-compliance",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "STAGE": "test",
        "PLATFORM_TABLE_NAME": "platform-table",
        "SERVICE_VERSION": "9.9.9",
        "AUDIT_TABLE_NAME": "audit-table",
        "HEALTH_STALE_AFTER_SECONDS": "900",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(metrics, "namespace", "AtsCompliance")
    clock.freeze(AT)
    yield
    clock.freeze(None)


# ---- GET /v1/health ------------------------------------------------------------------------------------


@pytest.fixture
def heartbeats(monkeypatch: pytest.MonkeyPatch) -> FakeHeartbeatStore:
    store = FakeHeartbeatStore(Heartbeat(checked_at=datetime(2025, 11, 20, 9, 10, tzinfo=UTC), execution="run-1"))

    def factory(table_name: str) -> FakeHeartbeatStore:
        store.tables.append(table_name)
        return store

    monkeypatch.setattr(health, "DynamoHeartbeatStore", factory)
    return store


def test_health_answers_with_versions_clock_and_heartbeat(heartbeats: FakeHeartbeatStore) -> None:
    response = health.lambda_handler(sample_event("apigw_get_health.json"), make_lambda_context("HealthApi"))

    assert response["statusCode"] == 200
    body = json.loads(response["body"])
    assert body["status"] == "ok"
    assert body["versions"]["service"] == "9.9.9"
    assert set(body["versions"]) == {"service", "python", "powertools"}
    assert datetime.fromisoformat(body["now"]) == AT
    assert datetime.fromisoformat(body["last_heartbeat"]) == datetime(2025, 11, 20, 9, 10, tzinfo=UTC)
    assert heartbeats.tables == ["platform-table"]


def test_health_before_any_heartbeat_is_degraded_but_answers_200(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(health, "DynamoHeartbeatStore", lambda table_name: FakeHeartbeatStore())

    response = health.lambda_handler(sample_event("apigw_get_health.json"), make_lambda_context("HealthApi"))

    assert response["statusCode"] == 200
    body = json.loads(response["body"])
    assert (body["status"], body["last_heartbeat"]) == ("degraded", None)


def test_health_with_a_stale_heartbeat_is_degraded(heartbeats: FakeHeartbeatStore) -> None:
    clock.freeze(datetime(2025, 11, 20, 9, 25, 1, tzinfo=UTC))  # 15 min 1 s after the heartbeat at 9:10

    response = health.lambda_handler(sample_event("apigw_get_health.json"), make_lambda_context("HealthApi"))

    assert response["statusCode"] == 200
    assert json.loads(response["body"])["status"] == "degraded"


def test_the_staleness_threshold_is_read_from_the_environment(
    heartbeats: FakeHeartbeatStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HEALTH_STALE_AFTER_SECONDS", "60")  # the heartbeat is 5 min 30 s old

    response = health.lambda_handler(sample_event("apigw_get_health.json"), make_lambda_context("HealthApi"))

    assert json.loads(response["body"])["status"] == "degraded"


def test_health_without_a_staleness_threshold_is_a_configuration_error(
    heartbeats: FakeHeartbeatStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HEALTH_STALE_AFTER_SECONDS")

    response = health.lambda_handler(sample_event("apigw_get_health.json"), make_lambda_context("HealthApi"))

    assert response["statusCode"] == 500
    assert "HEALTH_STALE_AFTER_SECONDS" in json.loads(response["body"])["error"]["message"]


def test_health_without_its_settings_is_a_500_configuration_error(
    heartbeats: FakeHeartbeatStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SERVICE_VERSION")

    response = health.lambda_handler(sample_event("apigw_get_health.json"), make_lambda_context("HealthApi"))

    assert response["statusCode"] == 500
    error = json.loads(response["body"])["error"]
    assert error["code"] == "configuration_error"
    assert "SERVICE_VERSION" in error["message"]
    assert error["request_id"] == "5f0c1e7a-3b2d-4c8e-9a61-2d7b4e9f0a13"


# ---- GET /v1/me ----------------------------------------------------------------------------------------


@pytest.fixture
def audit(monkeypatch: pytest.MonkeyPatch) -> FakeAuditLog:
    log = FakeAuditLog()
    monkeypatch.setattr(me, "DynamoAuditLog", lambda table_name: log)
    return log


def test_me_returns_the_verified_identity(audit: FakeAuditLog) -> None:
    response = me.lambda_handler(sample_event("apigw_get_me.json"), make_lambda_context("MeApi"))

    assert response["statusCode"] == 200
    assert json.loads(response["body"]) == {
        "tenant": "acme",
        "actor": "user",
        "subject": "7c1e9a42-3d6b-4f0a-8e2c-9b5d1f607a38",
        "username": "jane.doe",
        "roles": ["auditor", "recruiter"],
        "scopes": [],
    }


def test_me_answers_an_integration_with_its_tenant_and_scopes(audit: FakeAuditLog) -> None:
    response = me.lambda_handler(sample_event("apigw_get_me_integration.json"), make_lambda_context("MeApi"))

    assert response["statusCode"] == 200
    assert json.loads(response["body"]) == {
        "tenant": "acme",
        "actor": "integration",
        "subject": "5m3n7b9v1c2x4z6l8k0j2h4g6f",
        "username": None,
        "roles": [],
        "scopes": ["identity.read", "messages.write"],
    }
    assert [(e.tenant, e.actor, e.outcome) for e in audit.entries] == [
        ("acme", "integration:5m3n7b9v1c2x4z6l8k0j2h4g6f", Outcome.ALLOWED)
    ]


def test_me_refuses_an_integration_without_the_identity_scope(audit: FakeAuditLog) -> None:
    event = sample_event("apigw_get_me_integration.json")
    event["requestContext"]["authorizer"]["claims"]["scope"] = "ats/messages.write"

    response = me.lambda_handler(event, make_lambda_context("MeApi"))

    assert response["statusCode"] == 403
    assert [(e.outcome, e.reason) for e in audit.entries] == [(Outcome.DENIED, "missing scope")]


def test_me_audits_the_read(audit: FakeAuditLog) -> None:
    me.lambda_handler(sample_event("apigw_get_me.json"), make_lambda_context("MeApi"))

    [entry] = audit.entries
    assert entry.outcome is Outcome.ALLOWED
    assert (entry.tenant, entry.actor, entry.action) == (
        "acme",
        "user:7c1e9a42-3d6b-4f0a-8e2c-9b5d1f607a38",
        "identity:read",
    )
    assert entry.request_id == "9d4b2a61-7e3f-4c05-b8a9-1f6e0d2c3b47"
    assert entry.source_ip == "198.51.100.7"
    assert entry.at == AT


def test_me_without_claims_is_a_401_and_audits_nothing(audit: FakeAuditLog) -> None:
    event = sample_event("apigw_get_me.json")
    del event["requestContext"]["authorizer"]

    response = me.lambda_handler(event, make_lambda_context("MeApi"))

    assert response["statusCode"] == 401
    assert json.loads(response["body"])["error"]["code"] == "unauthenticated"
    assert audit.entries == []


def test_me_ignores_a_tenant_in_the_request(audit: FakeAuditLog) -> None:
    event = sample_event("apigw_get_me.json")
    event["headers"]["X-Tenant"] = "globex"
    event["queryStringParameters"] = {"tenant": "globex"}

    response = me.lambda_handler(event, make_lambda_context("MeApi"))

    assert json.loads(response["body"])["tenant"] == "acme"
    assert [e.tenant for e in audit.entries] == ["acme"]


@pytest.mark.parametrize("groups", ["superusers", "x,auditor", "recruiter,superusers"])
def test_me_with_an_unknown_group_is_refused_and_audited(audit: FakeAuditLog, groups: str) -> None:
    event = sample_event("apigw_get_me.json")
    event["requestContext"]["authorizer"]["claims"]["cognito:groups"] = groups

    response = me.lambda_handler(event, make_lambda_context("MeApi"))

    assert response["statusCode"] == 403
    assert json.loads(response["body"])["error"]["code"] == "forbidden"
    assert [(e.outcome, e.reason) for e in audit.entries] == [(Outcome.DENIED, "missing role")]


@pytest.mark.parametrize("tenant", ["_gateway", "_platform"])
def test_me_refuses_a_token_for_a_system_tenant_and_audits_nothing(audit: FakeAuditLog, tenant: str) -> None:
    event = sample_event("apigw_get_me_integration.json")
    event["requestContext"]["authorizer"]["claims"]["custom:tenant"] = tenant

    response = me.lambda_handler(event, make_lambda_context("MeApi"))

    assert response["statusCode"] == 401
    assert audit.entries == []


# ---- pre-token-generation trigger ----------------------------------------------------------------------

CLIENT_ID = "5m3n7b9v1c2x4z6l8k0j2h4g6f"


def test_pre_token_adds_the_registered_tenant_to_a_machines_access_token() -> None:
    registry = FakeClientRegistry({CLIENT_ID: "globex"})
    event = sample_event("cognito_pre_token_client_credentials.json")

    result = pre_token.lambda_handler(event, make_lambda_context("PreTokenGeneration"), registry)

    assert result["response"] == {
        "claimsAndScopeOverrideDetails": {
            "accessTokenGeneration": {"claimsToAddOrOverride": {"custom:tenant": "globex"}}
        }
    }
    assert {k: v for k, v in result.items() if k != "response"} == {
        k: v for k, v in sample_event("cognito_pre_token_client_credentials.json").items() if k != "response"
    }
    assert registry.lookups == [CLIENT_ID]


def test_pre_token_ignores_a_tenant_the_client_asks_for() -> None:
    event = sample_event("cognito_pre_token_client_credentials.json")
    event["request"]["clientMetadata"] = {"tenant": "globex", "custom:tenant": "globex"}

    result = pre_token.lambda_handler(
        event, make_lambda_context("PreTokenGeneration"), FakeClientRegistry({CLIENT_ID: "acme"})
    )

    claims = result["response"]["claimsAndScopeOverrideDetails"]["accessTokenGeneration"]["claimsToAddOrOverride"]
    assert claims == {"custom:tenant": "acme"}


@pytest.mark.parametrize(
    "tenants", [{}, {"another-client": "acme"}, {CLIENT_ID: "_platform"}], ids=["empty", "other", "system"]
)
def test_pre_token_issues_no_token_to_an_unregistered_client(tenants: dict[str, str]) -> None:
    with pytest.raises(Unauthenticated):
        pre_token.lambda_handler(
            sample_event("cognito_pre_token_client_credentials.json"),
            make_lambda_context("PreTokenGeneration"),
            FakeClientRegistry(tenants),
        )


@pytest.mark.parametrize(
    "trigger",
    [
        "TokenGeneration_Authentication",
        "TokenGeneration_HostedAuth",
        "TokenGeneration_RefreshTokens",
        "TokenGeneration_NewPasswordChallenge",
        "TokenGeneration_AuthenticateDevice",
    ],
)
def test_pre_token_leaves_the_tokens_of_people_unchanged(trigger: str) -> None:
    registry = FakeClientRegistry({CLIENT_ID: "globex"})
    event = sample_event("cognito_pre_token_client_credentials.json")
    event["triggerSource"] = trigger
    event["request"]["userAttributes"] = {"sub": "user-1", "custom:tenant": "acme"}
    expected = json.loads(json.dumps(event))

    result = pre_token.lambda_handler(event, make_lambda_context("PreTokenGeneration"), registry)

    assert result == expected
    assert registry.lookups == []


# ---- health workflow probe -----------------------------------------------------------------------------


def test_probe_records_a_heartbeat_for_the_execution() -> None:
    store = FakeHeartbeatStore()

    result = health_probe.lambda_handler(
        sample_event("stepfunctions_health_probe.json"), make_lambda_context("HealthProbe"), store
    )

    assert result == {"checked_at": "2025-11-20T09:15:30.000Z", "execution": EXECUTION}
    assert store.saved == [Heartbeat(checked_at=AT, execution=EXECUTION)]


def test_probe_without_an_execution_id() -> None:
    store = FakeHeartbeatStore()

    result = health_probe.lambda_handler({}, make_lambda_context("HealthProbe"), store)

    assert result["execution"] is None
    assert len(store.saved) == 1


# ---- gateway refusal auditor ---------------------------------------------------------------------------


def subscription_event(messages: list[str]) -> dict[str, Any]:
    payload = sample_event("cloudwatch_logs_api_access_refusals.decoded.json")
    payload["logEvents"] = [
        {"id": f"{n:056d}", "timestamp": 1763630150000 + n, "message": message} for n, message in enumerate(messages)
    ]
    data = base64.b64encode(gzip.compress(json.dumps(payload).encode())).decode()
    return {"awslogs": {"data": data}}


def test_refusal_auditor_audits_the_401_and_the_403_of_the_sample() -> None:
    log = FakeAuditLog()

    result = audit_refusals.lambda_handler(
        sample_event("cloudwatch_logs_api_access_refusals.json"), make_lambda_context("GatewayRefusalAuditor"), log
    )

    assert result == {"audited": 2, "skipped": 1}
    assert [
        (e.tenant, e.actor, e.action, e.resource, e.outcome, e.request_id, e.reason, e.source_ip) for e in log.entries
    ] == [
        (
            GATEWAY_TENANT,
            "anonymous",
            "GET /v1/me",
            "/prod/v1/me",
            Outcome.DENIED,
            "0a8c3e51-6b2f-4d97-a1e4-5c7b9d0f2e36",
            "401: Unauthorized",
            "203.0.113.99",
        ),
        (
            GATEWAY_TENANT,
            "anonymous",
            "GET /v1/health",
            "/prod/v1/health",
            Outcome.DENIED,
            "b3d5f7a9-1c2e-4a6b-8d0f-e2c4a6b8d0f1",
            "403: Forbidden",
            "192.0.2.45",
        ),
    ]


def test_refusal_auditor_skips_lines_that_are_not_json() -> None:
    log = FakeAuditLog()
    refusal = json.dumps({"status": "401", "integrationStatus": "-", "requestId": "r-1", "path": "/prod/v1/me"})

    result = audit_refusals.lambda_handler(
        subscription_event(["not json at all", refusal]), make_lambda_context("GatewayRefusalAuditor"), log
    )

    assert result == {"audited": 1, "skipped": 1}
    assert log.entries[0].request_id == "r-1"


@pytest.mark.parametrize(
    "line",
    [
        {"status": "403", "integrationStatus": "200"},
        {"status": "401", "integrationStatus": "401"},
        {"status": "404", "integrationStatus": "-"},
        {"status": "500", "integrationStatus": "-"},
        {"status": "200", "integrationStatus": "200"},
    ],
)
def test_refusal_auditor_skips_anything_but_gateway_refusals(line: dict[str, str]) -> None:
    log = FakeAuditLog()

    result = audit_refusals.lambda_handler(
        subscription_event([json.dumps(line)]), make_lambda_context("GatewayRefusalAuditor"), log
    )

    assert result == {"audited": 0, "skipped": 1}
    assert log.entries == []


def test_refusal_auditor_fills_missing_fields_with_placeholders() -> None:
    log = FakeAuditLog()

    audit_refusals.lambda_handler(
        subscription_event([json.dumps({"status": 403})]), make_lambda_context("GatewayRefusalAuditor"), log
    )

    [entry] = log.entries
    assert (entry.action, entry.resource, entry.request_id, entry.source_ip) == ("- -", "-", "-", None)
    assert entry.reason == "403: refused by the gateway"
