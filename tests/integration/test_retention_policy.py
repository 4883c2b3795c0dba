"""The retention-policy routes and the policy-change recompute end to end in process, on moto: REST events in,
the retention table, the audit chain, the bus and the export bucket behind."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.retention.models.entities import POLICY_BOUNDS, DueKind
from shared.audit import DynamoAuditLog, Outcome
from tests.integration.conftest import (
    AUDIT_TABLE,
    EXPORT_BUCKET,
    REGION,
    RETENTION_TABLE,
    RestEventFactory,
    RetentionWorld,
    access_claims,
    claims,
    published,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

ACME_ADMIN = claims(tenant="acme", sub="acme-admin", groups="company_admin")
ACME_ACCOUNT_ADMIN = claims(tenant="acme", sub="acme-owner", groups="account_admin")
ACME_RECRUITER = claims(tenant="acme", sub="acme-recruiter", groups="recruiter")
GLOBEX_ADMIN = claims(tenant="globex", sub="globex-admin", groups="company_admin")
ATS_ACME = access_claims(client_id="ats-acme", tenant="acme", scope="ats/retention.write")
MAXIMA = {name: bound.maximum for name, bound in POLICY_BOUNDS.items()}


def _body(expected_version: int = 0, **changes: Any) -> dict[str, Any]:
    return {**MAXIMA, "fingerprint_fields": ["email"], "expected_version": expected_version, **changes}


def _policy(
    rest_event: RestEventFactory,
    context: LambdaContext,
    method: str,
    who: dict[str, str],
    body: dict[str, Any] | None = None,
) -> tuple[int, dict[str, Any]]:
    from functions.retention.handlers import policy

    event = rest_event("/v1/retention-policy", method=method, claims=who)
    if body is not None:
        event["body"] = json.dumps(body)
        event["headers"]["Content-Type"] = "application/json"
    response = policy.lambda_handler(event, context)
    return response["statusCode"], json.loads(response["body"])


def _vacancy(
    rest_event: RestEventFactory, context: LambdaContext, vacancy_id: str, body: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    from functions.retention.handlers import vacancies

    event = rest_event(f"/v1/vacancies/{vacancy_id}", method="PUT", claims=ATS_ACME)
    event["resource"] = event["requestContext"]["resourcePath"] = "/v1/vacancies/{vacancy_id}"
    event["pathParameters"] = {"vacancy_id": vacancy_id}
    event["body"] = json.dumps(body)
    event["headers"]["Content-Type"] = "application/json"
    response = vacancies.lambda_handler(event, context)
    return response["statusCode"], json.loads(response["body"])


def _due_index(ddb: DynamoDBClient, kind: DueKind, tenant: str = "acme") -> dict[str, str]:
    items = ddb.query(
        TableName=RETENTION_TABLE,
        IndexName=kind.index_name,
        KeyConditionExpression="tenant = :t",
        ExpressionAttributeValues={":t": {"S": tenant}},
    )["Items"]
    return {item["vacancy_id"]["S"]: item[kind.attribute]["S"] for item in items}


def test_a_tenant_without_a_policy_reads_the_defaults_and_the_bounds(
    retention_world: RetentionWorld, rest_event: RestEventFactory, lambda_context: LambdaContext
) -> None:
    status, body = _policy(rest_event, lambda_context, "GET", claims(tenant="acme", groups="hr_admin"))

    assert status == 200 and body["version"] == 0
    assert {name: body[name] for name in MAXIMA} == MAXIMA
    assert body["bounds"]["candidate_months"] == {
        "minimum": 3,
        "maximum": 6,
        "label": "candidates are kept 3 to 6 months",
    }


def test_a_recruiter_cannot_change_the_policy_and_the_refusal_is_audited(
    retention_world: RetentionWorld, rest_event: RestEventFactory, lambda_context: LambdaContext
) -> None:
    """Seed: "To edit your organisations data retention policies you must be have the "Company Admin" or
    "Account Admin" security role". Issue 11 acceptance: "A policy edit by a recruiter gets a 403"."""
    status, body = _policy(rest_event, lambda_context, "PUT", ACME_RECRUITER, _body(candidate_months=3))

    assert status == 403 and body["error"]["code"] == "forbidden"
    assert [(e.actor, e.action, e.outcome) for e in DynamoAuditLog(AUDIT_TABLE).entries("acme")] == [
        ("user:acme-recruiter", "retention:manage", Outcome.DENIED)
    ]
    assert _policy(rest_event, lambda_context, "GET", ACME_ADMIN)[1]["version"] == 0
    assert published(retention_world) == []


@pytest.mark.parametrize(("field", "months"), [("candidate_months", 7), ("archive_after_months", 2)])
def test_an_out_of_bounds_value_is_a_400_naming_the_bound(
    retention_world: RetentionWorld,
    rest_event: RestEventFactory,
    lambda_context: LambdaContext,
    field: str,
    months: int,
) -> None:
    """Issue 11 acceptance: "An out-of-bounds value gets a 400 naming the bound"."""
    status, body = _policy(rest_event, lambda_context, "PUT", ACME_ADMIN, _body(**{field: months}))

    assert status == 400 and body["error"]["code"] == "bad_request"
    assert POLICY_BOUNDS[field].label in body["error"]["message"] and field in body["error"]["message"]
    assert body["error"]["details"][0]["loc"] == ["body", field]
    assert published(retention_world) == []


def test_an_admin_changes_the_policy_audited_and_published_and_a_stale_version_is_a_409(
    retention_world: RetentionWorld, rest_event: RestEventFactory, lambda_context: LambdaContext
) -> None:
    """Issue 11: "Every change is audited and published as an event"."""
    status, body = _policy(
        rest_event,
        lambda_context,
        "PUT",
        ACME_ACCOUNT_ADMIN,
        _body(candidate_months=4, keep_archived_months=6, notification_url="https://ats.example.com/hooks"),
    )
    stale = _policy(rest_event, lambda_context, "PUT", ACME_ADMIN, _body(candidate_months=3))

    assert status == 200
    assert (body["version"], body["candidate_months"], body["updated_by"]) == (1, 4, "user:acme-owner")
    assert body["shortened"] == ["candidate_months", "keep_archived_months"]
    [event] = published(retention_world)
    assert (event["source"], event["detail-type"]) == ("ats.retention", "RetentionPolicyChanged")
    assert event["detail"]["metadata"]["tenant"] == "acme"
    assert event["detail"]["data"] == {"policy_version": 1, "shortened": ["candidate_months", "keep_archived_months"]}
    assert stale[0] == 409 and stale[1]["error"]["code"] == "conflict"
    assert [(e.action, e.outcome, e.resource) for e in DynamoAuditLog(AUDIT_TABLE).entries("acme")] == [
        ("retention:manage", Outcome.ALLOWED, "retention-policy"),
        ("retention:policy:changed", Outcome.ALLOWED, "retention-policy/1"),
        ("retention:manage", Outcome.ALLOWED, "retention-policy"),
    ]
    after = _policy(rest_event, lambda_context, "GET", ACME_ADMIN)[1]
    assert (after["version"], after["candidate_months"], after["notification_url"]) == (
        1,
        4,
        "https://ats.example.com/hooks",
    )


def test_one_tenants_admin_never_sees_or_changes_anothers_policy(
    retention_world: RetentionWorld, rest_event: RestEventFactory, lambda_context: LambdaContext
) -> None:
    """Issue 11 acceptance: "A recruiter of `acme` reaches no `globex` record by id, list or search"."""
    _policy(rest_event, lambda_context, "PUT", GLOBEX_ADMIN, _body(candidate_months=3))

    acme = _policy(rest_event, lambda_context, "GET", ACME_ADMIN)[1]
    changed = _policy(rest_event, lambda_context, "PUT", ACME_ADMIN, _body(candidate_months=5))
    globex = _policy(rest_event, lambda_context, "GET", GLOBEX_ADMIN)[1]

    assert (acme["version"], acme["candidate_months"]) == (0, 6)
    assert changed[0] == 200 and changed[1]["version"] == 1
    assert (globex["version"], globex["candidate_months"]) == (1, 3)


def test_a_malformed_body_is_a_422(
    retention_world: RetentionWorld, rest_event: RestEventFactory, lambda_context: LambdaContext
) -> None:
    status, body = _policy(rest_event, lambda_context, "PUT", ACME_ADMIN, _body(candidate_months="six"))

    assert status == 422 and body["error"]["code"] == "validation_failed"


# --- the recompute workflow -----------------------------------------------------------------------------------


def _run_recompute(start: dict[str, Any], context: LambdaContext) -> tuple[dict[str, Any], int]:
    """The state machine's loop: invoke the step until it says done."""
    from functions.retention.handlers import recompute

    state, steps = start, 0
    while True:
        state = recompute.lambda_handler(state, context)
        steps += 1
        if state["done"]:
            return state, steps


def test_a_shortening_change_brings_forward_only_the_due_dates_it_makes_earlier_and_reports_them(
    retention_world: RetentionWorld,
    ddb: DynamoDBClient,
    rest_event: RestEventFactory,
    lambda_context: LambdaContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 11: "A policy change applies to future due dates: recompute what it shortens, and report it"."""
    from functions.retention.handlers import recompute

    monkeypatch.setattr(recompute, "PAGE_SIZE", 2)
    # under the defaults (archive 12 months after closing): three closed vacancies, one archived
    for vid, closed in (("V-1", "2026-01-10"), ("V-2", "2026-02-10"), ("V-3", "2026-03-10")):
        _vacancy(
            rest_event,
            lambda_context,
            vid,
            {"status": "closed", "opened_at": "2025-12-01T00:00:00Z", "closed_at": f"{closed}T00:00:00Z"},
        )
    _vacancy(
        rest_event,
        lambda_context,
        "V-4",
        {
            "status": "archived",
            "opened_at": "2025-12-01T00:00:00Z",
            "closed_at": "2026-01-01T00:00:00Z",
            "archived_at": "2026-01-02T00:00:00Z",
        },
    )
    # V-3 was already given an earlier date than the new policy's (as a shorter, later-lengthened policy would)
    ddb.update_item(
        TableName=RETENTION_TABLE,
        Key={"pk": {"S": "T#acme#VACANCY#V-3"}, "sk": {"S": "VACANCY"}},
        UpdateExpression="SET archive_due = :d",
        ExpressionAttributeValues={":d": {"S": "2026-04-01T00:00:00.000Z"}},
    )
    assert _due_index(ddb, DueKind.ARCHIVE)["V-1"] == "2027-01-10T00:00:00.000Z"
    published(retention_world)

    status, _ = _policy(rest_event, lambda_context, "PUT", ACME_ADMIN, _body(archive_after_months=6))
    [event] = published(retention_world)
    final, steps = _run_recompute(event, lambda_context)

    assert status == 200
    assert _due_index(ddb, DueKind.ARCHIVE) == {
        "V-1": "2026-07-10T00:00:00.000Z",
        "V-2": "2026-08-10T00:00:00.000Z",
        "V-3": "2026-04-01T00:00:00.000Z",  # already earlier: untouched
    }
    assert _due_index(ddb, DueKind.REMOVAL) == {"V-4": "2029-01-02T00:00:00.000Z"}  # its period did not change
    assert final["counts"] == {"archive": 2} and final["examined"] == {"archive": 3} and steps == 2
    s3 = boto3.client("s3", region_name=REGION)
    report = json.loads(s3.get_object(Bucket=EXPORT_BUCKET, Key="retention/policy-changes/acme/1.json")["Body"].read())
    assert (report["policy_version"], report["shortened"]) == (1, {"archive": 2})
    entries = DynamoAuditLog(AUDIT_TABLE).entries("acme")
    assert [(e.actor, e.action, e.resource) for e in entries if e.action == "retention.recompute"] == [
        ("system:retention-recompute", "retention.recompute", "retention-policy/1")
    ]

    # a repeated last step (a retried task) writes nothing new
    again = recompute.lambda_handler({**final, "done": False}, lambda_context)
    assert again["done"] and again["counts"] == {"archive": 2}
    assert len(s3.list_object_versions(Bucket=EXPORT_BUCKET, Prefix="retention/policy-changes/")["Versions"]) == 1
    assert len([e for e in DynamoAuditLog(AUDIT_TABLE).entries("acme") if e.action == "retention.recompute"]) == 1


def test_lengthening_a_period_changes_no_due_date(
    retention_world: RetentionWorld,
    ddb: DynamoDBClient,
    rest_event: RestEventFactory,
    lambda_context: LambdaContext,
) -> None:
    """Seed: "All of these limits are "upper limits" for data retention"."""
    _policy(rest_event, lambda_context, "PUT", ACME_ADMIN, _body(archive_after_months=3))
    _vacancy(
        rest_event,
        lambda_context,
        "V-1",
        {"status": "closed", "opened_at": "2025-12-01T00:00:00Z", "closed_at": "2026-01-10T00:00:00Z"},
    )
    before = _due_index(ddb, DueKind.ARCHIVE)
    _, body = _policy(rest_event, lambda_context, "PUT", ACME_ADMIN, _body(expected_version=1))
    # the event names nothing shortened; even a walk of the archive index changes nothing
    final, _ = _run_recompute(
        {"tenant": "acme", "policy_version": 2, "kinds": ["archive"], "kind_index": 0, "cursor": None, "counts": {}},
        lambda_context,
    )

    assert body["shortened"] == []
    assert before == _due_index(ddb, DueKind.ARCHIVE) == {"V-1": "2026-04-10T00:00:00.000Z"}
    assert final["counts"] == {"archive": 0}
