"""Audit figures (issue 13), counted rather than timed, through real API handlers on moto in process:

- `audit.append.request_path_writes`: DynamoDB write requests to the audit table per audited request (target at
  most 1), the most any of the requests below made;
- `audit.append.request_path_reads`: read requests to the audit table per audited request (target 0).

The requests: GET /v1/me (one entry), GET /v1/messages by a recruiter (two entries: metadata and content, each
its own permission check), and POST /v1/message-exports by a compliance officer (two: the export and the
decision to include content). Every entry a request makes is collected and inserted once, at its end
(shared/audit.py `batched`, opened by the resolver).

Run: `python -m benchmarks.audit`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from benchmarks.messages import moto_world
from benchmarks.results import Figure, record
from benchmarks.retention import ENV

_READS = {"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"}
_WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}


def _event(
    method: str, path: str, groups: str, *, query: dict[str, str] | None = None, body: Any = None
) -> dict[str, Any]:
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": {"Host": "bench", **({"Content-Type": "application/json"} if body is not None else {})},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in (query or {}).items()} or None,
        "body": json.dumps(body) if body is not None else None,
        "requestContext": {
            "requestId": f"bench-{method}-{path}",
            "identity": {"sourceIp": "198.51.100.1"},
            "authorizer": {
                "claims": {
                    "sub": "bench-user",
                    "cognito:username": "bench",
                    "custom:tenant": "acme",
                    "cognito:groups": groups,
                    "token_use": "id",
                }
            },
        },
    }


@contextmanager
def dynamodb_calls() -> Iterator[list[tuple[str, str]]]:
    """(operation, table) of every DynamoDB request the shared client makes, from its API parameters."""
    from shared.aws import client

    calls: list[tuple[str, str]] = []

    def hook(params: dict[str, Any], model: Any, **_: Any) -> None:
        calls.append((model.name, str(params.get("TableName", ""))))

    ddb = client("dynamodb")
    ddb.meta.events.register("before-parameter-build.dynamodb", hook)
    try:
        yield calls
    finally:
        ddb.meta.events.unregister("before-parameter-build.dynamodb", hook)


def audit_requests_per_request() -> dict[str, tuple[int, int, int]]:
    """For each request: (entries it audited, write requests and read requests to the audit table)."""
    from functions.messages.handlers import api, export_api
    from functions.platform.handlers import me
    from shared.audit import DynamoAuditLog
    from tests.conftest import make_lambda_context

    requests = {
        "me": (me.lambda_handler, _event("GET", "/v1/me", "recruiter")),
        "message_search": (api.lambda_handler, _event("GET", "/v1/messages", "recruiter", query={"limit": "50"})),
        "message_export": (
            export_api.lambda_handler,
            _event("POST", "/v1/message-exports", "compliance_officer", body={"candidate_id": "cand-1"}),
        ),
    }
    table = ENV["AUDIT_TABLE_NAME"]
    out: dict[str, tuple[int, int, int]] = {}
    with moto_world():
        log = DynamoAuditLog(table)
        for name, (handler, event) in requests.items():
            before = len(log.entries("acme"))
            with dynamodb_calls() as calls:
                answer = handler(event, make_lambda_context(name))
            if answer["statusCode"] >= 400:
                raise RuntimeError(f"{name} answered {answer['statusCode']}: {answer.get('body')}")
            on_audit = [op for op, name_ in calls if name_ == table]
            entries = len(log.entries("acme")) - before
            out[name] = (entries, sum(op in _WRITES for op in on_audit), sum(op in _READS for op in on_audit))
    return out


def main() -> None:
    per_request = audit_requests_per_request()
    for name, (entries, writes, reads) in per_request.items():
        print(f"{name}: {entries} audit entries, {writes} write(s) and {reads} read(s) of the audit table")
    writes = max(w for _, w, _ in per_request.values())
    reads = max(r for _, _, r in per_request.values())
    path = record(
        [
            Figure("audit.append.request_path_writes", writes, "requests", 1),
            Figure("audit.append.request_path_reads", reads, "requests", 0),
            *(Figure(f"audit.append.entries_per_request.{n}", e, "entries") for n, (e, _, _) in per_request.items()),
        ]
    )
    print(f"figures written to {path}")


if __name__ == "__main__":
    main()
