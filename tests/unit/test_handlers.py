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
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.platform.handlers import audit_refusals, health, health_probe, me
from functions.platform.models.entities import Heartbeat
from shared import clock
from shared.audit import Outcome
from shared.keys import GATEWAY_TENANT
from shared.observability import metrics
from tests.unit.fakes import FakeAuditLog

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

EVENTS = Path(__file__).resolve().parents[2] / "events"
AT = datetime(2025, 11, 20, 9, 15, 30, tzinfo=UTC)
EXECUTION = (
    "arn:aws:states:eu-west-1:123456789012:execution:"
    "HealthWorkflow3F1E2D4C-Xk9PqR2sT7uV:6b1f0c3e-8d2a-4e7b-9f51-0a3c2d4e6b78"
)


class FakeHeartbeatStore:
    def __init__(self, latest: Heartbeat | None = None) -> None:
        self.saved: list[Heartbeat] = []
        self.tables: list[str] = []
        self._latest = latest

    def save(self, heartbeat: Heartbeat) -> None:
        self.saved.append(heartbeat)

    def latest(self) -> Heartbeat | None:
        return self.saved[-1] if self.saved else self._latest


def lambda_context(name: str = "test-function") -> LambdaContext:
    context = LambdaContext()
    context._function_name = name
    context._memory_limit_in_mb = 512
    context._invoked_function_arn = f"arn:aws:lambda:eu-west-1:123456789012:function:{name}"
    context._aws_request_id = "lambda-request-1"
    return context


def load(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return event


@pytest.fixture(autouse=True)
def _function_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {
        "POWERTOOLS_SERVICE_NAME": "ats-compliance",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "STAGE": "test",
        "PLATFORM_TABLE_NAME": "platform-table",
        "SERVICE_VERSION": "9.9.9",
        "AUDIT_TABLE_NAME": "audit-table",
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
    response = health.lambda_handler(load("apigw_get_health.json"), lambda_context("HealthApi"))

    assert response["statusCode"] == 200
    body = json.loads(response["body"])
    assert body["status"] == "ok"
    assert body["versions"]["service"] == "9.9.9"
    assert set(body["versions"]) == {"service", "python", "powertools"}
    assert datetime.fromisoformat(body["now"]) == AT
    assert datetime.fromisoformat(body["last_heartbeat"]) == datetime(2025, 11, 20, 9, 10, tzinfo=UTC)
    assert heartbeats.tables == ["platform-table"]


def test_health_before_any_heartbeat(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(health, "DynamoHeartbeatStore", lambda table_name: FakeHeartbeatStore())

    response = health.lambda_handler(load("apigw_get_health.json"), lambda_context("HealthApi"))

    assert response["statusCode"] == 200
    assert json.loads(response["body"])["last_heartbeat"] is None


def test_health_without_its_settings_is_a_500_configuration_error(
    heartbeats: FakeHeartbeatStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SERVICE_VERSION")

    response = health.lambda_handler(load("apigw_get_health.json"), lambda_context("HealthApi"))

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
    response = me.lambda_handler(load("apigw_get_me.json"), lambda_context("MeApi"))

    assert response["statusCode"] == 200
    assert json.loads(response["body"]) == {
        "tenant": "acme",
        "subject": "7c1e9a42-3d6b-4f0a-8e2c-9b5d1f607a38",
        "username": "jane.doe",
        "roles": ["auditor", "recruiter"],
    }


def test_me_audits_the_read(audit: FakeAuditLog) -> None:
    me.lambda_handler(load("apigw_get_me.json"), lambda_context("MeApi"))

    [entry] = audit.entries
    assert entry.outcome is Outcome.ALLOWED
    assert (entry.tenant, entry.actor, entry.action) == (
        "acme",
        "7c1e9a42-3d6b-4f0a-8e2c-9b5d1f607a38",
        "identity:read",
    )
    assert entry.request_id == "9d4b2a61-7e3f-4c05-b8a9-1f6e0d2c3b47"
    assert entry.source_ip == "198.51.100.7"
    assert entry.at == AT


def test_me_without_claims_is_a_401_and_audits_nothing(audit: FakeAuditLog) -> None:
    event = load("apigw_get_me.json")
    del event["requestContext"]["authorizer"]

    response = me.lambda_handler(event, lambda_context("MeApi"))

    assert response["statusCode"] == 401
    assert json.loads(response["body"])["error"]["code"] == "unauthenticated"
    assert audit.entries == []


def test_me_ignores_a_tenant_in_the_request(audit: FakeAuditLog) -> None:
    event = load("apigw_get_me.json")
    event["headers"]["X-Tenant"] = "globex"
    event["queryStringParameters"] = {"tenant": "globex"}

    response = me.lambda_handler(event, lambda_context("MeApi"))

    assert json.loads(response["body"])["tenant"] == "acme"
    assert [e.tenant for e in audit.entries] == ["acme"]


def test_me_with_only_unknown_groups_is_refused_and_audited(audit: FakeAuditLog) -> None:
    event = load("apigw_get_me.json")
    event["requestContext"]["authorizer"]["claims"]["cognito:groups"] = "superusers"

    response = me.lambda_handler(event, lambda_context("MeApi"))

    assert response["statusCode"] == 403
    assert json.loads(response["body"])["error"]["code"] == "forbidden"
    assert [(e.outcome, e.reason) for e in audit.entries] == [(Outcome.DENIED, "missing role")]


# ---- health workflow probe -----------------------------------------------------------------------------


def test_probe_records_a_heartbeat_for_the_execution() -> None:
    store = FakeHeartbeatStore()

    result = health_probe.lambda_handler(load("stepfunctions_health_probe.json"), lambda_context("HealthProbe"), store)

    assert result == {"checked_at": "2025-11-20T09:15:30.000Z", "execution": EXECUTION}
    assert store.saved == [Heartbeat(checked_at=AT, execution=EXECUTION)]


def test_probe_without_an_execution_id() -> None:
    store = FakeHeartbeatStore()

    result = health_probe.lambda_handler({}, lambda_context("HealthProbe"), store)

    assert result["execution"] is None
    assert len(store.saved) == 1


# ---- gateway refusal auditor ---------------------------------------------------------------------------


def subscription_event(messages: list[str]) -> dict[str, Any]:
    payload = load("cloudwatch_logs_api_access_refusals.decoded.json")
    payload["logEvents"] = [
        {"id": f"{n:056d}", "timestamp": 1763630150000 + n, "message": message} for n, message in enumerate(messages)
    ]
    data = base64.b64encode(gzip.compress(json.dumps(payload).encode())).decode()
    return {"awslogs": {"data": data}}


def test_refusal_auditor_audits_the_401_and_the_403_of_the_sample() -> None:
    log = FakeAuditLog()

    result = audit_refusals.lambda_handler(
        load("cloudwatch_logs_api_access_refusals.json"), lambda_context("GatewayRefusalAuditor"), log
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
        subscription_event(["not json at all", refusal]), lambda_context("GatewayRefusalAuditor"), log
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
        subscription_event([json.dumps(line)]), lambda_context("GatewayRefusalAuditor"), log
    )

    assert result == {"audited": 0, "skipped": 1}
    assert log.entries == []


def test_refusal_auditor_fills_missing_fields_with_placeholders() -> None:
    log = FakeAuditLog()

    audit_refusals.lambda_handler(
        subscription_event([json.dumps({"status": 403})]), lambda_context("GatewayRefusalAuditor"), log
    )

    [entry] = log.entries
    assert (entry.action, entry.resource, entry.request_id, entry.source_ip) == ("- -", "-", "-", None)
    assert entry.reason == "403: refused by the gateway"
