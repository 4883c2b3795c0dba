"""functions/platform/handlers/audit_refusals.py: API access-log lines from a CloudWatch Logs subscription
become DENIED audit entries under the `_gateway` pseudo-tenant (infra/constructs/api.py's log format)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.audit import DynamoAuditLog, Outcome
from shared.keys import GATEWAY_TENANT
from tests.conftest import cloudwatch_logs_event, sample_event
from tests.integration.conftest import AUDIT_TABLE

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


def access_log(status: str, request_id: str, *, integration_status: str = "-", **overrides: str) -> str:
    """One access-log line with every field of infra/constructs/api.py ACCESS_LOG_FIELDS."""
    line = {
        "requestId": request_id,
        "ip": "198.51.100.23",
        "requestTime": "01/Mar/2025:12:00:00 +0000",
        "httpMethod": "GET",
        "resourcePath": "/v1/me",
        "path": "/v1/me",
        "status": status,
        "protocol": "HTTP/1.1",
        "responseLength": "120",
        "integrationStatus": integration_status,
        "errorMessage": "Unauthorized" if status == "401" else "-",
        "sub": "-",
        "tenant": "-",
    }
    line.update(overrides)
    return json.dumps(line)


def _handle(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    from functions.platform.handlers import audit_refusals

    result: dict[str, int] = audit_refusals.lambda_handler(event, context)
    return result


def test_gateway_refusals_become_denied_entries_and_other_lines_are_skipped(
    tables: dict[str, str], ddb: DynamoDBClient, lambda_context: LambdaContext
) -> None:
    event = cloudwatch_logs_event(
        [
            access_log("401", "rid-401"),
            access_log("200", "rid-200", integration_status="200"),
            access_log("403", "rid-403", errorMessage="User is not authorized to access this resource"),
        ]
    )

    assert _handle(event, lambda_context) == {"audited": 2, "skipped": 1}

    audit = DynamoAuditLog(AUDIT_TABLE, client=ddb)
    records = audit.entries(GATEWAY_TENANT)
    assert sorted(r.request_id for r in records) == ["rid-401", "rid-403"]
    first, second = sorted(records, key=lambda r: r.request_id)
    assert (first.tenant, first.actor, first.outcome) == (GATEWAY_TENANT, "anonymous", Outcome.DENIED)
    assert (first.action, first.resource, first.source_ip) == ("GET /v1/me", "/v1/me", "198.51.100.23")
    assert first.reason == "401: Unauthorized"
    assert second.reason == "403: User is not authorized to access this resource"
    # One insert for the batch, and nothing under a real tenant: an unverified token's tenant claim is never trusted.
    (item,) = ddb.scan(TableName=AUDIT_TABLE)["Items"]
    assert item["pk"]["S"].startswith("T#_gateway#AUDITIN#")


def test_refusals_made_after_a_function_ran_are_left_to_the_function(
    tables: dict[str, str], ddb: DynamoDBClient, lambda_context: LambdaContext
) -> None:
    # The function audits its own 401/403 with the verified tenant; the gateway auditor must not double-count.
    event = cloudwatch_logs_event(
        [
            access_log("403", "rid-fn-403", integration_status="200"),
            access_log("401", "rid-fn-401", integration_status="200"),
            access_log("401", "rid-empty", integration_status=""),
        ]
    )

    assert _handle(event, lambda_context) == {"audited": 1, "skipped": 2}
    assert [r.request_id for r in DynamoAuditLog(AUDIT_TABLE, client=ddb).entries(GATEWAY_TENANT)] == ["rid-empty"]


def test_lines_that_are_not_json_are_skipped(
    tables: dict[str, str], ddb: DynamoDBClient, lambda_context: LambdaContext
) -> None:
    event = cloudwatch_logs_event(["not json at all", "{truncated", access_log("401", "rid-ok"), ""])

    assert _handle(event, lambda_context) == {"audited": 1, "skipped": 3}
    assert [r.request_id for r in DynamoAuditLog(AUDIT_TABLE, client=ddb).entries(GATEWAY_TENANT)] == ["rid-ok"]


def test_json_lines_that_are_not_objects_are_skipped(
    tables: dict[str, str], ddb: DynamoDBClient, lambda_context: LambdaContext
) -> None:
    event = cloudwatch_logs_event(["42", "null", '["a"]', '"-"', access_log("403", "rid-object")])

    assert _handle(event, lambda_context) == {"audited": 1, "skipped": 4}
    assert [r.request_id for r in DynamoAuditLog(AUDIT_TABLE, client=ddb).entries(GATEWAY_TENANT)] == ["rid-object"]


def test_an_overlong_request_id_is_truncated_not_fatal(
    tables: dict[str, str], ddb: DynamoDBClient, lambda_context: LambdaContext
) -> None:
    event = cloudwatch_logs_event([access_log("401", "r" * 300)])

    assert _handle(event, lambda_context) == {"audited": 1, "skipped": 0}
    (entry,) = DynamoAuditLog(AUDIT_TABLE, client=ddb).entries(GATEWAY_TENANT)
    assert entry.request_id == "r" * 128


def test_sparse_lines_get_placeholders_and_long_fields_are_truncated(
    tables: dict[str, str], ddb: DynamoDBClient, lambda_context: LambdaContext
) -> None:
    sparse = json.dumps({"status": 401})  # numeric status, no request id, method, path or ip
    long_path = "/v1/" + "x" * 600
    long = access_log("403", "rid-long", path=long_path, resourcePath=long_path, errorMessage="e" * 600)

    assert _handle(cloudwatch_logs_event([sparse, long]), lambda_context) == {"audited": 2, "skipped": 0}

    first, second = DynamoAuditLog(AUDIT_TABLE, client=ddb).entries(GATEWAY_TENANT)
    assert (first.request_id, first.action, first.resource, first.source_ip) == ("-", "- -", "-", None)
    assert first.reason == "401: refused by the gateway"
    assert (len(second.action), len(second.resource), len(second.reason or "")) == (128, 512, 512)
    assert second.resource == long_path[:512]


def test_refusals_of_later_batches_join_the_gateway_trail(
    tables: dict[str, str], ddb: DynamoDBClient, lambda_context: LambdaContext
) -> None:
    _handle(cloudwatch_logs_event([access_log("401", "rid-a")]), lambda_context)
    _handle(cloudwatch_logs_event([access_log("403", "rid-b"), access_log("401", "rid-c")]), lambda_context)

    audit = DynamoAuditLog(AUDIT_TABLE, client=ddb)
    assert sorted(r.request_id for r in audit.entries(GATEWAY_TENANT)) == ["rid-a", "rid-b", "rid-c"]


def test_a_retried_batch_adds_no_duplicates(
    tables: dict[str, str], ddb: DynamoDBClient, lambda_context: LambdaContext
) -> None:
    # Given a batch whose refusals are written together, in one insert, at the end of the invocation
    batch = cloudwatch_logs_event([access_log("401", "rid-1"), access_log("403", "rid-2")])
    _handle(batch, lambda_context)
    # When Lambda retries the whole batch (the invocation failed after writing)
    _handle(batch, lambda_context)
    # Then each refusal is in the trail once
    audit = DynamoAuditLog(AUDIT_TABLE, client=ddb)
    assert sorted(r.request_id for r in audit.entries(GATEWAY_TENANT)) == ["rid-1", "rid-2"]


@pytest.mark.parametrize("path", ["cloudwatch_logs_api_access_refusals.json"])
def test_the_shared_sample_event(
    tables: dict[str, str], ddb: DynamoDBClient, lambda_context: LambdaContext, path: str
) -> None:
    """The sample in events/ parses and audits only gateway refusals."""
    decoded = sample_event(path.replace(".json", ".decoded.json"))
    lines = [json.loads(e["message"]) for e in decoded["logEvents"]]
    expected = [
        line["requestId"]
        for line in lines
        if str(line["status"]) in ("401", "403") and line["integrationStatus"] in ("-", "")
    ]

    result = _handle(sample_event(path), lambda_context)

    records = DynamoAuditLog(AUDIT_TABLE, client=ddb).entries(GATEWAY_TENANT)
    assert result == {"audited": len(expected), "skipped": len(lines) - len(expected)}
    assert [r.request_id for r in records] == expected
    assert {r.outcome for r in records} == {Outcome.DENIED}
