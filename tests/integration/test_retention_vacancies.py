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


def test_a_reported_vacancy_stores_its_current_due_date_indexed_and_registers_its_tenant(
    tables: dict[str, str], ddb: DynamoDBClient, rest_event: RestEventFactory, lambda_context: LambdaContext
) -> None:
    """Issue 11: "Due dates are computed by a pure function of the policy and the record's dates, stored on the
    records, and indexed (a sparse index per due kind), so a sweep reads only what is due"."""
    from functions.retention.models.entities import DueKind

    def index(kind: DueKind) -> list[tuple[str, str]]:
        items = ddb.query(
            TableName=RETENTION_TABLE,
            IndexName=kind.index_name,
            KeyConditionExpression="tenant = :t",
            ExpressionAttributeValues={":t": {"S": "acme"}},
        )["Items"]
        return [(i["vacancy_id"]["S"], i[kind.attribute]["S"]) for i in items]

    opened = _call(rest_event, lambda_context, "PUT", "V-100", ATS_ACME, OPEN)
    closed = _call(rest_event, lambda_context, "PUT", "V-100", ATS_ACME, CLOSED)
    archive_index = index(DueKind.ARCHIVE)
    archived = _call(
        rest_event,
        lambda_context,
        "PUT",
        "V-100",
        ATS_ACME,
        {**CLOSED, "status": "archived", "archived_at": "2026-03-01T00:00:00Z"},
    )

    assert opened[1]["archive_due"] is None and opened[1]["holds"] == 0
    assert closed[1]["archive_due"] == "2027-02-04T17:30:00Z"  # the defaults: archived a year after closing
    assert archive_index == [("V-100", "2027-02-04T17:30:00.000Z")]
    assert archived[1]["archive_due"] is None and archived[1]["removal_due"] == "2029-03-01T00:00:00Z"
    assert index(DueKind.ARCHIVE) == []
    assert index(DueKind.REMOVAL) == [("V-100", "2029-03-01T00:00:00.000Z")]
    registry = ddb.query(
        TableName=RETENTION_TABLE,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": "T#_platform#RETENTION_TENANTS"}},
    )["Items"]
    assert [i["sk"]["S"] for i in registry] == ["acme"]


def test_removed_is_never_reported_and_a_removed_vacancy_cannot_be_archived_again(
    tables: dict[str, str], ddb: DynamoDBClient, rest_event: RestEventFactory, lambda_context: LambdaContext
) -> None:
    archived = {**CLOSED, "status": "archived", "archived_at": "2026-03-01T00:00:00Z"}
    _call(rest_event, lambda_context, "PUT", "V-100", ATS_ACME, archived)
    # the sweep removes it (status and date; the ATS never reports `removed`)
    ddb.update_item(
        TableName=RETENTION_TABLE,
        Key={"pk": {"S": "T#acme#VACANCY#V-100"}, "sk": {"S": "VACANCY"}},
        UpdateExpression="SET #s = :removed, removed_at = :at ADD version :one",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={
            ":removed": {"S": "removed"},
            ":at": {"S": "2029-03-01T00:00:00.000Z"},
            ":one": {"N": "1"},
        },
    )

    reported_removed = _call(rest_event, lambda_context, "PUT", "V-200", ATS_ACME, {**archived, "status": "removed"})
    rearchived = _call(
        rest_event, lambda_context, "PUT", "V-100", ATS_ACME, {**archived, "archived_at": "2026-03-02T00:00:00Z"}
    )

    assert reported_removed[0] == 400 and "set by the retention sweep" in reported_removed[1]["error"]["message"]
    assert rearchived[0] == 409 and "is removed; it cannot go back to archived" in rearchived[1]["error"]["message"]


def test_a_first_report_inherits_the_active_holds_on_the_vacancy_and_updates_never_drop_a_hold(
    tables: dict[str, str], ddb: DynamoDBClient, rest_event: RestEventFactory, lambda_context: LambdaContext
) -> None:
    """Issue 11 acceptance: "a legal hold stops all of it until released"."""
    for hold_id, vacancy_id, released in (("H-1", "V-300", False), ("H-2", "V-300", True), ("H-3", "V-999", False)):
        ddb.put_item(
            TableName=RETENTION_TABLE,
            Item={
                "pk": {"S": "T#acme#HOLDS"},
                "sk": {"S": hold_id},
                "tenant": {"S": "acme"},
                "hold_id": {"S": hold_id},
                "subject_kind": {"S": "vacancy"},
                "subject_id": {"S": vacancy_id},
                **({"released_at": {"S": "2026-01-01T00:00:00.000Z"}} if released else {}),
            },
        )

    first = _call(rest_event, lambda_context, "PUT", "V-300", ATS_ACME, OPEN)
    # a hold placed after the first report is added to the vacancy's item by the hold's use case
    ddb.update_item(
        TableName=RETENTION_TABLE,
        Key={"pk": {"S": "T#acme#VACANCY#V-300"}, "sk": {"S": "VACANCY"}},
        UpdateExpression="ADD holds :h",
        ExpressionAttributeValues={":h": {"SS": ["H-4"]}},
    )
    closed = _call(rest_event, lambda_context, "PUT", "V-300", ATS_ACME, CLOSED)

    assert first[1]["holds"] == 1 and closed[1]["holds"] == 2
    item = ddb.get_item(TableName=RETENTION_TABLE, Key={"pk": {"S": "T#acme#VACANCY#V-300"}, "sk": {"S": "VACANCY"}})
    assert set(item["Item"]["holds"]["SS"]) == {"H-1", "H-4"}
