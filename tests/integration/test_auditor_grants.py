"""Just-in-time auditor access end to end in process: the auditor-grant routes write the platform table on moto, and a
route auditors use (GET /v1/retention-policy) reads the grants through the permission check, with no cache.

Issue 13 acceptance: "An expired grant gets a 403, and so does a system_admin asking for auditor access. Both
refusals are themselves audited."
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared import clock
from shared.audit import AuditEntry, DynamoAuditLog, Outcome
from tests.integration.conftest import AUDIT_TABLE, PLATFORM_TABLE, RestEventFactory, claims

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
OFFICER = claims(tenant="acme", sub="officer-1", groups="compliance_officer")
AUDITOR = claims(tenant="acme", sub="auditor-1", groups="auditor")
ADMIN_AUDITOR = claims(tenant="acme", sub="admin-1", groups="system_admin,auditor")
SOD_HOLD = "separation of duties: a system_admin cannot hold auditor access"


@pytest.fixture(autouse=True)
def frozen(tables: dict[str, str]) -> None:
    clock.freeze(NOW)  # the integration conftest lets the clock run again after each test


def call(
    rest_event: RestEventFactory,
    context: LambdaContext,
    method: str,
    path: str,
    who: dict[str, str],
    body: dict[str, Any] | None = None,
    query: dict[str, str] | None = None,
    request_id: str | None = None,
) -> tuple[int, dict[str, Any]]:
    """Invoke the function behind `method path`: the auditor-grant routes, or the retention policy read."""
    from functions.platform.handlers import auditor_grants
    from functions.retention.handlers import policy

    event = rest_event(path, method=method, claims=who, request_id=request_id)
    parts = path.strip("/").split("/")
    if len(parts) >= 3 and parts[1] == "auditor-grants":
        resource = "/v1/auditor-grants/{grant_id}" + ("/revoke" if len(parts) == 4 else "")
        event["resource"] = event["requestContext"]["resourcePath"] = resource
        event["pathParameters"] = {"grant_id": parts[2]}
    if body is not None:
        event["body"] = json.dumps(body)
        event["headers"]["Content-Type"] = "application/json"
    event["queryStringParameters"] = query
    handler = policy.lambda_handler if path == "/v1/retention-policy" else auditor_grants.lambda_handler
    response = handler(event, context)
    return response["statusCode"], json.loads(response["body"])


def grant_body(grantee: str = "auditor-1", **extra: Any) -> dict[str, Any]:
    return {
        "grantee": grantee,
        "resource_kinds": ["retention", "audit"],
        "duration_hours": 1,
        "reason": "SOC 2 audit, ticket AUD-7",
        **extra,
    }


def entry_of(request_id: str, tenant: str = "acme") -> AuditEntry:
    [entry] = [e for e in DynamoAuditLog(AUDIT_TABLE).entries(tenant) if e.request_id == request_id]
    return entry


def test_an_auditor_uses_a_grant_until_it_expires_and_the_expired_grant_gets_an_audited_403(
    rest_event: RestEventFactory, lambda_context: LambdaContext
) -> None:
    # Given a grant of one hour
    status, grant = call(rest_event, lambda_context, "POST", "/v1/auditor-grants", OFFICER, grant_body())
    assert status == 201 and grant["status"] == "active"
    assert grant["expires_at"].startswith("2026-11-27T10:00:00") and grant["resource_kinds"] == ["audit", "retention"]

    # When the auditor reads within the hour, then it is allowed, and the entry names the grant
    status, _ = call(rest_event, lambda_context, "GET", "/v1/retention-policy", AUDITOR, request_id="use-1")
    assert status == 200
    used = entry_of("use-1")
    assert (used.action, used.outcome, used.reason) == (
        "retention:read",
        Outcome.ALLOWED,
        f"auditor grant {grant['grant_id']}",
    )

    # When the hour is over, then 403, audited with the reason
    clock.freeze(NOW + timedelta(hours=1))
    status, body = call(rest_event, lambda_context, "GET", "/v1/retention-policy", AUDITOR, request_id="use-2")
    assert status == 403 and body["error"]["code"] == "forbidden"
    refused = entry_of("use-2")
    assert (refused.actor, refused.outcome) == ("user:auditor-1", Outcome.DENIED)
    assert refused.reason == f"grant expired: {grant['grant_id']} at 2026-11-27T10:00:00.000Z"
    listed = call(rest_event, lambda_context, "GET", f"/v1/auditor-grants/{grant['grant_id']}", OFFICER)[1]
    assert listed["status"] == "expired"


def test_a_system_admin_asking_for_auditor_access_gets_an_audited_403(
    rest_event: RestEventFactory, lambda_context: LambdaContext
) -> None:
    # Given a grant to a user who also holds system_admin (roles are known only from their token)
    assert call(rest_event, lambda_context, "POST", "/v1/auditor-grants", OFFICER, grant_body("admin-1"))[0] == 201

    # When they use it, then 403, audited as separation of duties
    status, body = call(rest_event, lambda_context, "GET", "/v1/retention-policy", ADMIN_AUDITOR, request_id="adm-1")
    assert status == 403 and body["error"]["message"] == SOD_HOLD
    assert (entry_of("adm-1").outcome, entry_of("adm-1").reason) == (Outcome.DENIED, SOD_HOLD)

    # And a system_admin may neither give nor manage grants, even as a compliance officer too
    admin_officer = claims(tenant="acme", sub="officer-2", groups="compliance_officer,system_admin")
    status, body = call(
        rest_event, lambda_context, "POST", "/v1/auditor-grants", admin_officer, grant_body(), request_id="adm-2"
    )
    assert status == 403
    assert entry_of("adm-2").reason == "separation of duties: a system_admin cannot grant auditor access"


def test_an_auditor_without_a_grant_is_refused_and_revocation_takes_effect_at_once(
    rest_event: RestEventFactory, lambda_context: LambdaContext
) -> None:
    assert call(rest_event, lambda_context, "GET", "/v1/retention-policy", AUDITOR, request_id="none")[0] == 403
    assert entry_of("none").reason == "no active grant for retention"
    grant = call(rest_event, lambda_context, "POST", "/v1/auditor-grants", OFFICER, grant_body())[1]
    assert call(rest_event, lambda_context, "GET", "/v1/retention-policy", AUDITOR)[0] == 200

    status, revoked = call(
        rest_event,
        lambda_context,
        "POST",
        f"/v1/auditor-grants/{grant['grant_id']}/revoke",
        OFFICER,
        {"reason": "engagement over"},
    )

    assert status == 200 and revoked["status"] == "revoked" and revoked["revoked_by"] == "user:officer-1"
    status, _ = call(rest_event, lambda_context, "GET", "/v1/retention-policy", AUDITOR, request_id="after")
    assert status == 403 and entry_of("after").reason == f"grant revoked: {grant['grant_id']}"


def test_both_copies_of_a_grant_are_written_and_revoked_together(
    ddb: DynamoDBClient, rest_event: RestEventFactory, lambda_context: LambdaContext
) -> None:
    grant = call(rest_event, lambda_context, "POST", "/v1/auditor-grants", OFFICER, grant_body())[1]
    call(
        rest_event,
        lambda_context,
        "POST",
        f"/v1/auditor-grants/{grant['grant_id']}/revoke",
        OFFICER,
        {"reason": "engagement over"},
    )

    items = ddb.scan(TableName=PLATFORM_TABLE)["Items"]
    assert sorted(i["pk"]["S"] for i in items) == ["T#acme#GRANT#auditor-1", "T#acme#GRANTS"]
    assert {i["sk"]["S"] for i in items} == {grant["grant_id"]}
    assert all(i["revoke_reason"]["S"] == "engagement over" for i in items)


@pytest.mark.parametrize(
    ("who", "body", "status", "reason"),
    [
        pytest.param(OFFICER, grant_body("officer-1"), 403, "separation of duties: nobody grants access to themselves"),
        pytest.param(OFFICER, grant_body(reason="   "), 403, "a grant needs a reason", id="blank-reason"),
        pytest.param(AUDITOR, grant_body("auditor-2"), 403, "missing role", id="auditor-grants-itself-more"),
        pytest.param(OFFICER, grant_body(duration_hours=None, expires_at="2026-12-28T09:00:00Z"), 400, None),
    ],
)
def test_refused_grants_store_nothing_and_refusals_are_audited_with_their_reason(
    ddb: DynamoDBClient,
    rest_event: RestEventFactory,
    lambda_context: LambdaContext,
    who: dict[str, str],
    body: dict[str, Any],
    status: int,
    reason: str | None,
) -> None:
    answer = call(rest_event, lambda_context, "POST", "/v1/auditor-grants", who, body, request_id="refused")

    assert answer[0] == status, answer
    assert ddb.scan(TableName=PLATFORM_TABLE)["Items"] == []
    entry = entry_of("refused")
    if reason is not None:
        assert (entry.action, entry.outcome, entry.reason) == ("audit:grant", Outcome.DENIED, reason)


@pytest.mark.parametrize(
    "body",
    [
        {"grantee": "auditor-1", "resource_kinds": ["audit"], "duration_hours": 1},  # no reason
        grant_body(duration_hours=721),
        grant_body(resource_kinds=[]),
        grant_body(resource_kinds=["identity"]),
    ],
)
def test_a_malformed_grant_is_a_422(
    rest_event: RestEventFactory, lambda_context: LambdaContext, body: dict[str, Any]
) -> None:
    status, answer = call(rest_event, lambda_context, "POST", "/v1/auditor-grants", OFFICER, body)

    assert status == 422 and answer["error"]["code"] == "validation_failed"


def test_grants_are_listed_newest_first_a_page_at_a_time(
    rest_event: RestEventFactory, lambda_context: LambdaContext
) -> None:
    ids = []
    for minute in range(3):
        clock.freeze(NOW + timedelta(minutes=minute))
        ids.append(call(rest_event, lambda_context, "POST", "/v1/auditor-grants", OFFICER, grant_body())[1]["grant_id"])

    status, first = call(rest_event, lambda_context, "GET", "/v1/auditor-grants", OFFICER, query={"limit": "2"})
    assert status == 200 and first["next_cursor"]
    second = call(
        rest_event,
        lambda_context,
        "GET",
        "/v1/auditor-grants",
        OFFICER,
        query={"limit": "2", "cursor": first["next_cursor"]},
    )[1]

    assert [g["grant_id"] for g in first["grants"] + second["grants"]] == ids[::-1]
    assert second["next_cursor"] is None
    bad = call(rest_event, lambda_context, "GET", "/v1/auditor-grants", OFFICER, query={"cursor": "bm9wZQ"})
    assert bad[0] == 400


def test_a_grant_is_read_by_its_tenants_officers_only(
    rest_event: RestEventFactory, lambda_context: LambdaContext
) -> None:
    grant = call(rest_event, lambda_context, "POST", "/v1/auditor-grants", OFFICER, grant_body())[1]
    path = f"/v1/auditor-grants/{grant['grant_id']}"
    globex = claims(tenant="globex", sub="officer-9", groups="compliance_officer")

    assert call(rest_event, lambda_context, "GET", path, OFFICER)[1] == grant
    assert call(rest_event, lambda_context, "GET", path, globex)[0] == 404
    assert call(rest_event, lambda_context, "GET", path, AUDITOR, request_id="peek")[0] == 403
    assert entry_of("peek").reason == "missing role"
    assert call(rest_event, lambda_context, "GET", "/v1/auditor-grants/nope", OFFICER)[0] == 400
