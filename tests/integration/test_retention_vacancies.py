"""The vacancy routes end to end in process: REST events in, the retention table and the audit chain behind, on
moto."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.audit import DynamoAuditLog, Outcome
from tests.integration.conftest import (
    AUDIT_TABLE,
    RETENTION_TABLE,
    RestEventFactory,
    access_claims,
    claims,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

OPEN = {"status": "open", "opened_at": "2026-01-05T09:00:00Z"}
CLOSED = {**OPEN, "status": "closed", "closed_at": "2026-02-04T17:30:00Z"}
ATS_ACME = access_claims(client_id="ats-acme", tenant="acme", scope="ats/retention.write")
ATS_GLOBEX = access_claims(client_id="ats-globex", tenant="globex", scope="ats/retention.write ats/retention.read")


def _call(
    rest_event: RestEventFactory,
    context: LambdaContext,
    method: str,
    vacancy_id: str,
    claims: dict[str, str],
    body: dict[str, Any] | None = None,
) -> tuple[int, dict[str, Any]]:
    from functions.retention.handlers import vacancies

    event = rest_event(f"/v1/vacancies/{vacancy_id}", method=method, claims=claims)
    event["resource"] = event["requestContext"]["resourcePath"] = "/v1/vacancies/{vacancy_id}"
    event["pathParameters"] = {"vacancy_id": vacancy_id}
    if body is not None:
        event["body"] = json.dumps(body)
        event["headers"]["Content-Type"] = "application/json"
    response = vacancies.lambda_handler(event, context)
    return response["statusCode"], json.loads(response["body"])


def test_the_ats_reports_a_vacancy_once_and_a_repeat_changes_nothing(
    tables: dict[str, str], rest_event: RestEventFactory, lambda_context: LambdaContext
) -> None:
    first = _call(rest_event, lambda_context, "PUT", "V-100", ATS_ACME, OPEN)
    again = _call(rest_event, lambda_context, "PUT", "V-100", ATS_ACME, OPEN)

    assert first[0] == 201 and again[0] == 200
    assert first[1] == again[1]
    assert (first[1]["status"], first[1]["version"]) == ("open", 1)


def test_closing_is_recorded_and_reopening_is_a_conflict_that_stores_nothing(
    tables: dict[str, str], rest_event: RestEventFactory, lambda_context: LambdaContext
) -> None:
    _call(rest_event, lambda_context, "PUT", "V-100", ATS_ACME, OPEN)
    closed = _call(rest_event, lambda_context, "PUT", "V-100", ATS_ACME, CLOSED)
    reopened = _call(rest_event, lambda_context, "PUT", "V-100", ATS_ACME, OPEN)

    assert closed[0] == 200 and closed[1]["closed_at"].startswith("2026-02-04T17:30:00")
    assert reopened[0] == 409 and reopened[1]["error"]["code"] == "conflict"
    stored = _call(rest_event, lambda_context, "GET", "V-100", claims(tenant="acme", groups="hr_admin"))
    assert (stored[1]["status"], stored[1]["version"]) == ("closed", 2)


def test_a_malformed_report_is_a_422_naming_the_field_and_stores_nothing(
    tables: dict[str, str], ddb: DynamoDBClient, rest_event: RestEventFactory, lambda_context: LambdaContext
) -> None:
    status, body = _call(rest_event, lambda_context, "PUT", "V-100", ATS_ACME, {"status": "closed", "opened_at": 1})

    assert status == 422 and body["error"]["code"] == "validation_failed"
    assert (
        ddb.query(
            TableName=RETENTION_TABLE,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": "T#acme#VACANCY#V-100"}},
        )["Items"]
        == []
    )


def test_a_person_cannot_report_but_can_read_and_another_tenant_gets_404(
    tables: dict[str, str], rest_event: RestEventFactory, lambda_context: LambdaContext
) -> None:
    recruiter = claims(tenant="acme", groups="recruiter")
    _call(rest_event, lambda_context, "PUT", "V-100", ATS_ACME, OPEN)

    refused = _call(rest_event, lambda_context, "PUT", "V-200", recruiter, OPEN)
    mine = _call(rest_event, lambda_context, "GET", "V-100", recruiter)
    theirs = _call(rest_event, lambda_context, "GET", "V-100", ATS_GLOBEX)

    assert refused[0] == 403
    assert mine[0] == 200 and mine[1]["vacancy_id"] == "V-100"
    assert theirs[0] == 404 and theirs[1]["error"]["message"] == "no vacancy"
    acme = DynamoAuditLog(AUDIT_TABLE).entries("acme")
    assert [(e.actor.split(":")[0], e.action, e.outcome) for e in acme] == [
        ("integration", "retention:report", Outcome.ALLOWED),
        ("user", "retention:report", Outcome.DENIED),
        ("user", "retention:records:read", Outcome.ALLOWED),
    ]
    assert [(e.action, e.outcome) for e in DynamoAuditLog(AUDIT_TABLE).entries("globex")] == [
        ("retention:records:read", Outcome.ALLOWED)
    ]
