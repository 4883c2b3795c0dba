"""Issue 13's acceptance on the local runtime: every operation of the served OpenAPI document audits its request
(found in the trail by its request id, so a route added later is covered without an edit); three actions make
three entries; an auditor export with its digests verifies with `ats-audit verify`, and one edited byte fails
naming the entry; an expired grant and a system_admin asking for auditor access are refused, and audited."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import urllib.request
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, find, settings

from shared.audit_proof import digest_object_key, format_instant
from tests.e2e.conftest import Api, wait_for

pytestmark = pytest.mark.e2e

# The one route that touches no personal data and takes anonymous callers (docs/audit.md, "Coverage").
NO_PERSONAL_DATA = {"GET /v1/health"}
SHARDS = range(8)  # shared.audit.INBOX_SHARDS
# A role that holds no permission over any personal data of the tenant: every route either refuses it, audited,
# or (GET /v1/me) answers it, audited.
OUTSIDER = "it_asset_manager"


def _now(runtime: Api) -> datetime:
    return datetime.fromisoformat(runtime.call("GET", "/_local/clock")[1]["now"])


def _advance(runtime: Api, seconds: float) -> None:
    status, body = runtime.call("POST", "/_local/clock/advance", body={"seconds": seconds})
    assert status == 200, body


def _trail(runtime: Api, tenant: str) -> list[dict[str, Any]]:
    """Every entry the request path inserted for `tenant` (the inbox items, shared/audit.py)."""
    dynamodb, table = runtime.aws("dynamodb"), runtime.resource("AuditAuditTable")
    entries: list[dict[str, Any]] = []
    for shard in SHARDS:
        pages = dynamodb.get_paginator("query").paginate(
            TableName=table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"T#{tenant}#AUDITIN#{shard}"}},
        )
        for page in pages:
            for item in page["Items"]:
                entries.extend(json.loads(item["entries"]["S"]))
    return entries


def _by_request(runtime: Api, *tenants: str) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for tenant in tenants:
        for entry in _trail(runtime, tenant):
            found.setdefault(entry["request_id"], []).append(entry)
    return found


def _call(runtime: Api, method: str, path: str, token: str | None = None, body: Any = None) -> tuple[int, Any, str]:
    """(status, parsed body, request id)."""
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    response = requests.request(method, runtime.base + path, json=body, headers=headers, timeout=60)
    try:
        parsed: Any = response.json()
    except ValueError:
        parsed = response.text
    return response.status_code, parsed, response.headers["x-amzn-RequestId"]


def _request_id(headers: Any) -> str:
    """The gateway's request id from a response's headers (a mapping of names to a value or a list of values)."""
    for name, value in dict(headers).items():
        if name.lower() == "x-amzn-requestid":
            return str(value[0] if isinstance(value, list) else value)
    raise AssertionError(f"no x-amzn-RequestId header in {headers}")


# --- coverage --------------------------------------------------------------------------------------------------


def test_every_operation_of_the_served_document_audits_its_request(runtime: Api) -> None:
    schema = schemathesis.openapi.from_url(runtime.base + "/openapi.json")
    token = runtime.token("acme", OUTSIDER)
    called: dict[str, tuple[int, str]] = {}
    for result in schema.get_all_operations():
        operation = cast(Any, result).ok()
        if operation.label in NO_PERSONAL_DATA:
            continue
        case = find(
            operation.as_strategy(),
            lambda _: True,
            settings=settings(database=None, max_examples=5, suppress_health_check=list(HealthCheck)),
        )
        if "tenant" in (case.path_parameters or {}):
            # A webhook of a real tenant, refused unsigned and audited; globex, so that acme's receivers stay cold for
            # tests that rotate its provider secrets (a warm receiver keeps a secret it read for minutes).
            case.path_parameters["tenant"] = "globex"
        # The token goes to every route: the public ones (webhooks, the applicant's links) do not read it.
        response = case.call(base_url=runtime.base, headers={"Authorization": f"Bearer {token}"})
        called[operation.label] = (response.status_code, _request_id(response.headers))
    assert {"GET /v1/me", "POST /v1/audit-exports", "GET /v1/messages"} <= set(called)

    def unaudited() -> dict[str, tuple[int, str]]:
        found = _by_request(runtime, "acme", "_gateway")
        return {label: call for label, call in called.items() if call[1] not in found}

    # Refusals at the gateway are audited from its access log, asynchronously: wait for them.
    wait_for(lambda: not unaudited(), timeout=60)
    missing = unaudited()
    assert missing == {}, f"operations whose request left no audit entry (status, request id): {missing}"


def test_three_different_actions_make_three_entries(runtime: Api) -> None:
    officer = runtime.token("acme", "compliance_officer")
    requests_made = [
        _call(runtime, "GET", "/v1/me", officer),
        _call(runtime, "GET", "/v1/retention-policy", officer),
        _call(runtime, "GET", "/v1/audit-alert-policy", officer),
    ]
    assert [status for status, _, _ in requests_made] == [200, 200, 200], requests_made

    found = _by_request(runtime, "acme")
    entries = [found.get(request_id, []) for _, _, request_id in requests_made]
    assert [len(e) for e in entries] == [1, 1, 1], entries
    assert len({e[0]["action"] for e in entries}) == 3
    for (entry,) in entries:
        assert entry["outcome"] == "allowed" and entry["actor"].startswith("user:") and entry["tenant"] == "acme"


# --- auditor export, verified offline --------------------------------------------------------------------------


def _linked(runtime: Api, tenant: str, request_ids: list[str]) -> bool:
    """Whether the newest links of the tenant's chains hold every one of `request_ids`."""
    dynamodb, table = runtime.aws("dynamodb"), runtime.resource("AuditAuditTable")
    lines = ""
    for shard in SHARDS:
        items = dynamodb.query(
            TableName=table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :seq)",
            ExpressionAttributeValues={":pk": {"S": f"T#{tenant}#AUDIT#{shard}"}, ":seq": {"S": "SEQ#"}},
            ScanIndexForward=False,
            Limit=50,
        )["Items"]
        lines += "".join(item["line"]["S"] for item in items)
    return all(request_id in lines for request_id in request_ids)


def _exports_bucket(runtime: Api) -> str:
    return next(
        v for k, v in runtime.session["resources"].items() if k.startswith("StorageAuditExports") and "Policy" not in k
    )


def _download(url: str, to: Path) -> None:
    to.parent.mkdir(parents=True, exist_ok=True)
    with urllib.request.urlopen(url, timeout=30) as response:
        to.write_bytes(response.read())


def _verify(folder: Path, command: str) -> subprocess.CompletedProcess[str]:
    argv = shlex.split(command)
    assert argv[:2] == ["ats-audit", "verify"], command
    cli = [sys.executable, "-c", "import sys; from functions.audit.cli import main; sys.exit(main())"]
    return subprocess.run([*cli, *argv[1:]], cwd=folder, capture_output=True, text=True, timeout=300)


def test_an_export_and_its_digests_verify_and_one_edited_byte_names_the_entry(runtime: Api, tmp_path: Path) -> None:
    officer = runtime.token("acme", "compliance_officer")
    marks = [_call(runtime, "GET", "/v1/me", officer)[2] for _ in range(3)]
    start = _now(runtime).replace(minute=0, second=0, microsecond=0)
    end = start + timedelta(hours=1)
    # The linker chains them off the request path (the table's stream); the hour's digest signs what is linked.
    assert wait_for(lambda: _linked(runtime, "acme", marks), timeout=60), "the linker did not chain the entries"
    # Past the hour's digest (minute 5 of the next hour) and the export's margin: the digest job fires, linked
    # entries are signed.
    _advance(runtime, (end + timedelta(minutes=25) - _now(runtime)).total_seconds())
    s3, bucket = runtime.aws("s3"), _exports_bucket(runtime)
    digest = digest_object_key("acme", format_instant(start))

    def signed() -> bool:
        return bool(s3.list_objects_v2(Bucket=bucket, Prefix=digest).get("KeyCount"))

    assert wait_for(signed, timeout=120, interval=1), f"the digest job wrote no {digest}"

    status, started, _ = _call(
        runtime, "POST", "/v1/audit-exports", officer, {"since": start.isoformat(), "until": end.isoformat()}
    )
    assert status == 202, started

    def ready() -> dict[str, Any] | None:
        status, body, _ = _call(runtime, "GET", f"/v1/audit-exports/{started['export_id']}", officer)
        assert status == 200, body
        assert body["status"] != "failed", json.dumps(body)
        return body if body["status"] == "ready" else None

    done = wait_for(ready, timeout=180, interval=1)
    assert done, "the export did not finish"
    folder = tmp_path / "export"
    _download(done["manifest"]["url"], folder / done["manifest"]["path"])
    for file in done["files"]:
        _download(file["url"], folder / file["path"])
    manifest = json.loads((folder / done["manifest"]["path"]).read_text())
    assert manifest and done["verify"]

    verified = _verify(folder, done["verify"])
    assert verified.returncode == 0, verified.stdout + verified.stderr

    # The three requests are in the export, by request id.
    entries_files = sorted((folder / "entries").glob("*"))
    lines = [line for f in entries_files for line in f.read_bytes().splitlines(keepends=True)]
    exported = [json.loads(line.split(b"\t", 1)[1]) for line in lines]
    assert set(marks) <= {e["request_id"] for e in exported}

    # One byte edited in the line of the first of them: the verifier fails and names that entry.
    target = next(f for f in entries_files if marks[0].encode() in f.read_bytes())
    data = target.read_bytes()
    at = data.index(marks[0].encode())
    edited = data[:at] + (b"0" if data[at : at + 1] != b"0" else b"1") + data[at + 1 :]
    target.write_bytes(edited)
    entry = next(e for e in exported if e["request_id"] == marks[0])
    failed = _verify(folder, done["verify"])
    output = failed.stdout + failed.stderr
    assert failed.returncode == 1, output
    assert f"seq {entry['seq']}" in output or f"seq={entry['seq']}" in output or str(entry["seq"]) in output, output


# --- just-in-time access ---------------------------------------------------------------------------------------


def test_an_expired_grant_and_a_system_admin_asking_for_auditor_access_are_refused_and_audited(runtime: Api) -> None:
    officer, admin = runtime.token("acme", "compliance_officer"), runtime.token("acme", "system_admin")
    auditor = runtime.token("acme", "auditor")
    auditor_sub = _call(runtime, "GET", "/v1/me", auditor)[1]["subject"]

    # A system_admin asking for auditor access (separation of duties: docs/auditor-access.md)
    asked = {"grantee": auditor_sub, "resource_kinds": ["audit"], "duration_hours": 1, "reason": "year-end review"}
    status, body, admin_request = _call(runtime, "POST", "/v1/auditor-grants", admin, asked)
    assert status == 403, body

    expires = _now(runtime) + timedelta(minutes=20)
    grant_body = {
        "grantee": auditor_sub,
        "resource_kinds": ["messages"],
        "expires_at": expires.isoformat(),
        "reason": f"case {uuid.uuid4()}",
    }
    status, grant, _ = _call(runtime, "POST", "/v1/auditor-grants", officer, grant_body)
    assert status == 201, grant
    status, body, _ = _call(runtime, "GET", "/v1/messages?limit=1", auditor)
    assert status == 200, body  # within the grant
    _advance(runtime, (expires - _now(runtime)).total_seconds() + 60)
    status, body, expired_request = _call(runtime, "GET", "/v1/messages?limit=1", auditor)
    assert status == 403, body

    found = _by_request(runtime, "acme")
    (refused_admin,) = [e for e in found.get(admin_request, []) if e["outcome"] == "denied"]
    (refused_expired,) = [e for e in found.get(expired_request, []) if e["outcome"] == "denied"]
    assert refused_admin["reason"] and refused_expired["reason"]
