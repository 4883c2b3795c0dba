"""The eDiscovery export end to end in process, on moto: a compliance officer posts an export, the workflow's step
function is run until the export is done (its first input is the very event the API published on the bus), the
status read hands out presigned links, and everything the manifest lists is downloaded and checked.

Covers the issue's acceptance on this tier: 2,000 messages exported, every file's SHA-256 matches the manifest,
every .eml parses as RFC 5322, the load files and JSON lines hold every document once; content only for those
allowed it; another tenant's export is a 404; every start, status read and link is audited; uploads carry the
checksum that the export bucket's Object Lock requires.
"""

from __future__ import annotations

import base64
import csv
import email
import hashlib
import io
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email import policy
from typing import Any

import boto3
import pytest
import requests

from functions.messages.dal.items import to_item
from functions.messages.logic.lifecycle import message_id_for
from functions.messages.models.message import Channel, Direction, HistoryEntry, MessageState, Party, Status
from shared import clock
from shared.audit import DynamoAuditLog, Outcome
from shared.crypto import FieldCipher
from tests.conftest import make_lambda_context
from tests.integration.conftest import (
    ARCHIVE_BUCKET,
    AUDIT_TABLE,
    EXPORT_BUCKET,
    MESSAGES_TABLE,
    PLATFORM_TABLE,
    REGION,
    TENANT_SECRET_PREFIX,
    RestEventFactory,
    RetentionWorld,
    claims,
    published,
)

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
CHANNELS = list(Channel)


@pytest.fixture
def world(retention_world: RetentionWorld) -> Iterator[RetentionWorld]:
    """The tables, data key, bus (with its tap) and buckets; the export bucket retains every object by default,
    as Object Lock does in the stack, so each upload must carry a checksum."""
    boto3.client("s3", region_name=REGION).put_object_lock_configuration(
        Bucket=EXPORT_BUCKET,
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}},
        },
    )
    clock.freeze(NOW)
    yield retention_world
    clock.freeze(None)


def subject_of(i: int) -> str:
    return f"Entretien n°{i} — étape suivante ✓"


def body_of(i: int) -> str:
    return f"Bonjour,\nvotre entretien {i} est confirmé.\nCordialement\n"


def seed(world: RetentionWorld, count: int, *, tenant: str = "acme") -> dict[str, MessageState]:
    """`count` messages of every channel over 60 days: nine in ten with sealed content (a `full` policy), the
    others metadata only, one in a hundred redacted."""
    cipher = FieldCipher(world.data_key)
    ddb = boto3.client("dynamodb", region_name=REGION)
    seeded: dict[str, MessageState] = {}
    items: list[Any] = []
    for i in range(count):
        channel = CHANNELS[i % len(CHANNELS)]
        key = f"seed-{tenant}-{i}"
        message_id = message_id_for(tenant, "ats", key)
        at = NOW - timedelta(days=60) + timedelta(minutes=37 * i)
        is_email = channel is Channel.EMAIL
        state = MessageState(
            tenant=tenant,
            message_id=message_id,
            channel=channel,
            direction=Direction.OUTBOUND if i % 3 else Direction.INBOUND,
            provider="ats",
            message_key=key,
            status=Status.DELIVERED,
            first_at=at,
            last_at=at + timedelta(minutes=1),
            history=[
                HistoryEntry(f"{key}-sent", Status.SENT, at, "ats", "sent"),
                HistoryEntry(f"{key}-delivered", Status.DELIVERED, at + timedelta(minutes=1), "ats", "delivered"),
            ],
            rfc_message_id=f"{key}@mail.acme.example" if is_email else None,
            thread_id=f"{key}@mail.acme.example" if is_email else f"conversation-{i % 30}",
            candidate_id=f"cand-{i % 40}",
            requisition_id=f"req-{i % 7}",
            sender=Party("recrutement@acme.example", "Acme Recrutement") if is_email else Party("+33612345678"),
            recipients=(Party(f"candidat{i}@example.com", "Zoë Ångström"),) if is_email else (Party("+33698765432"),),
            version=1,
        )
        if i % 100 == 42:
            state.redacted_at = NOW - timedelta(days=2)
            state.content_hash = "0" * 64
        elif i % 10 != 9:
            state.sealed_subject = cipher.encrypt(tenant, "message", subject_of(i), record=message_id, field="subject")
            state.sealed_body = cipher.encrypt(tenant, "message", body_of(i), record=message_id, field="body")
        seeded[message_id] = state
        items.append({"PutRequest": {"Item": to_item(state)}})
    for start in range(0, len(items), 25):
        ddb.batch_write_item(RequestItems={MESSAGES_TABLE: items[start : start + 25]})
    return seeded


def call(
    rest_event: RestEventFactory,
    method: str,
    path: str,
    *,
    body: dict[str, Any] | None = None,
    groups: str = "compliance_officer",
    tenant: str = "acme",
) -> tuple[dict[str, Any], Any]:
    from functions.messages.handlers import export_api

    path, _, query = path.partition("?")
    parts = path.split("/")
    resource = "/".join(["/v1/message-exports/{export_id}", *parts[4:]]) if len(parts) > 3 else path
    event = rest_event(resource, method=method, claims=claims(tenant=tenant, groups=groups))
    event["path"] = path
    if resource != path:
        event["pathParameters"] = {"export_id": parts[3]}
    if query:
        event["queryStringParameters"] = dict(p.split("=", 1) for p in query.split("&"))
    if body is not None:
        event["body"] = json.dumps(body)
        event["headers"]["Content-Type"] = "application/json"
    response = export_api.lambda_handler(event, make_lambda_context())
    return response, json.loads(response["body"]) if response.get("body") else None


def start(world: RetentionWorld, rest_event: RestEventFactory, body: dict[str, Any], **kw: Any) -> tuple[str, Any]:
    """POST the export; the event the API published on the bus (the workflow's first input)."""
    response, answer = call(rest_event, "POST", "/v1/message-exports", body=body, **kw)
    assert response["statusCode"] == 202, answer
    assert response["multiValueHeaders"]["Location"] == [f"/v1/message-exports/{answer['export_id']}"]
    (event,) = [e for e in published(world) if e["detail-type"] == "MessageExportRequested"]
    assert event["source"] == "ats.messages" and event["detail"]["data"] == {"export_id": answer["export_id"]}
    return answer["export_id"], event


def run_workflow(event: dict[str, Any], *, time_left: Callable[[], float] | None = None, steps: int = 50) -> int:
    """Call the step function as the state machine does, until done; the number of steps."""
    from functions.messages.handlers import export_worker

    state = event
    for step in range(1, steps + 1):
        state = export_worker.lambda_handler(state, make_lambda_context("export-step"), time_left=time_left)
        if state["done"]:
            return step
    raise AssertionError("the export workflow did not finish")


def download(key: str) -> bytes:
    body: bytes = boto3.client("s3", region_name=REGION).get_object(Bucket=EXPORT_BUCKET, Key=key)["Body"].read()
    return body


def finished(rest_event: RestEventFactory, export_id: str, **kw: Any) -> tuple[dict[str, Any], bytes]:
    """The status read of a finished export, and its manifest fetched through the presigned link."""
    response, status = call(rest_event, "GET", f"/v1/message-exports/{export_id}", **kw)
    assert response["statusCode"] == 200, status
    assert status["status"] == "succeeded", status
    url = status["manifest"]["url"]
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in url and "X-Amz-Expires=900" in url
    assert f".s3.{REGION}.amazonaws.com/messages/exports/acme/{export_id}/manifest.json" in url
    manifest = requests.get(url, timeout=5)  # moto answers the presigned URL in process
    assert manifest.status_code == 200
    return status, manifest.content


def audit_trail(tenant: str = "acme") -> list[tuple[str, str, str]]:
    return [(e.action, e.resource, e.outcome.value) for e in DynamoAuditLog(AUDIT_TABLE).entries(tenant, limit=1000)]


def test_2000_messages_are_exported_and_every_file_matches_the_manifest(
    world: RetentionWorld, rest_event: RestEventFactory
) -> None:
    seeded = seed(world, 2000)
    export_id, event = start(world, rest_event, {"docid_prefix": "MATTER7"})

    steps = run_workflow(event)

    status, raw_manifest = finished(rest_event, export_id)
    assert steps == 1 and status["segments"] == 1 and status["content_included"] is True
    assert status["manifest"]["sha256"] == hashlib.sha256(raw_manifest).hexdigest()
    assert status["manifest"]["size"] == len(raw_manifest)
    assert status["counts"] | {"bytes": 0} == {
        "documents": 2000,
        "emails": 400,
        "other_channels": 1600,
        "content_included": 1780,
        "content_withheld": 0,
        "content_not_kept": 200,
        "content_redacted": 20,
        "content_unreadable": 0,
        "bytes": 0,
    }
    manifest = json.loads(raw_manifest)
    prefix = f"messages/exports/acme/{export_id}/"
    assert manifest["export_id"] == export_id and manifest["requested_by"] == "user:user-123"
    assert manifest["counts"]["documents"] == 2000 and manifest["order"] == "oldest_first"

    # Every file the manifest lists is there, with its size and SHA-256; nothing else is.
    listed = {f["path"]: f for f in manifest["files"]}
    assert len(listed) == 400 + 3
    s3 = boto3.client("s3", region_name=REGION)
    stored = {
        o["Key"].removeprefix(prefix)
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=EXPORT_BUCKET, Prefix=prefix)
        for o in page["Contents"]
    }
    assert stored == set(listed) | {"manifest.json"}
    files = {path: download(prefix + path) for path in listed}
    for path, entry in listed.items():
        assert (len(files[path]), hashlib.sha256(files[path]).hexdigest()) == (entry["size"], entry["sha256"]), path

    # Every native parses as RFC 5322 and is the message it says it is.
    natives = {path: data for path, data in files.items() if path.startswith("native/")}
    for path, data in natives.items():
        parsed = email.message_from_bytes(data, policy=policy.default)
        original = seeded[parsed["X-ATS-Message-Id"]]
        assert parsed["X-ATS-Document-Id"] == path.removeprefix("native/").removesuffix(".eml")
        assert parsed["Message-ID"] == f"<{original.rfc_message_id}>"
        assert parsed["From"].addresses[0].addr_spec == "recrutement@acme.example"
        assert parsed["To"].addresses[0].display_name == "Zoë Ångström"
        index = int(original.message_key.rsplit("-", 1)[1])
        if parsed["X-ATS-Content"] == "included":
            assert parsed["Subject"] == subject_of(index)
            assert parsed.get_content().replace("\r\n", "\n") == body_of(index)
        else:
            assert parsed["Subject"] is None
    # The bucket holds each native's SHA-256 as its checksum: S3 verified the bytes against the manifest's hash.
    first = manifest["files"][0]
    head = s3.head_object(Bucket=EXPORT_BUCKET, Key=prefix + first["path"], ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == base64.b64encode(bytes.fromhex(first["sha256"])).decode()

    # The other channels: one JSON line each; the load files: one row per document, the same documents.
    lines = files["messages.jsonl"].split(b"\n")[:-1]
    assert len(lines) == 1600
    jsonl_ids = {json.loads(line)["message_id"] for line in lines}
    native_ids = {email.message_from_bytes(d, policy=policy.default)["X-ATS-Message-Id"] for d in natives.values()}
    assert jsonl_ids | native_ids == set(seeded) and not jsonl_ids & native_ids
    rows = list(csv.DictReader(io.StringIO(files["loadfile.csv"].decode("utf-8-sig"), newline="")))
    assert [r["DOCID"] for r in rows] == [f"MATTER7-{n:08d}" for n in range(1, 2001)]
    assert [d["docid"] for d in manifest["documents"]] == [r["DOCID"] for r in rows]
    assert [r["FIRSTAT"] for r in rows] == sorted(r["FIRSTAT"] for r in rows)  # oldest first
    dat = files["loadfile.dat"].decode("utf-8-sig").split("\r\n")
    assert dat[-1] == "" and len(dat) - 2 == 2000
    assert dat[1].split("þ\x14þ")[0] == "þMATTER7-00000001"

    # The listing link: a ListObjectsV2 of the export's prefix, signed for 15 minutes.
    listing = requests.get(status["listing"]["url"], timeout=5)
    assert listing.status_code == 200 and f"<Key>{prefix}loadfile.csv</Key>".encode() in listing.content

    # The start, the content decision, the status read and both links are audited; so is the workflow's end.
    trail = audit_trail()
    resource = f"/v1/message-exports/{export_id}"
    for entry in [
        ("messages:export", "/v1/message-exports", "allowed"),
        ("messages:content:read", "/v1/message-exports", "allowed"),
        ("messages:export", resource, "allowed"),
        ("messages:export", f"{resource}/manifest.json", "allowed"),
        ("messages:export", f"{resource}/listing", "allowed"),
        ("messages.export", resource, "allowed"),
    ]:
        assert entry in trail, entry


def test_an_auditor_exports_one_candidate_without_content(world: RetentionWorld, rest_event: RestEventFactory) -> None:
    from datetime import timedelta as span

    from functions.platform.dal.auditor_grants import DynamoAuditorGrantStore
    from shared.access_grants import AuditorGrant, AuditorResourceKind

    DynamoAuditorGrantStore(PLATFORM_TABLE).create(  # a compliance officer's time-bound grant to this auditor
        AuditorGrant(
            tenant="acme",
            grant_id="ag-20260101000000-00000001",
            grantee="user-123",
            kinds=frozenset({AuditorResourceKind.MESSAGES}),
            reason="matter 7 review",
            granted_by="user:officer-1",
            granted_at=clock.now(),
            expires_at=clock.now() + span(days=1),
        )
    )
    seed(world, 200)
    export_id, event = start(world, rest_event, {"candidate_id": "cand-5"}, groups="auditor")

    run_workflow(event)

    status, raw_manifest = finished(rest_event, export_id, groups="auditor")
    manifest = json.loads(raw_manifest)
    prefix = f"messages/exports/acme/{export_id}/"
    assert status["content_included"] is False and status["filters"]["candidate_id"] == "cand-5"
    assert status["counts"]["documents"] == 5 and status["counts"]["content_withheld"] == 5
    natives = [download(prefix + f["path"]) for f in manifest["files"] if f["path"].startswith("native/")]
    assert natives  # cand-5 is messages 5, 45, 85...: every one an email
    for data in natives:
        parsed = email.message_from_bytes(data, policy=policy.default)
        assert parsed["X-ATS-Candidate-Id"] == "cand-5" and parsed["Subject"] is None
        assert "Entretien" not in data.decode()
    assert not any(a == "messages:content:read" for a, _, _ in audit_trail())


def test_a_text_export_finds_the_messages_holding_the_words(
    world: RetentionWorld, rest_event: RestEventFactory
) -> None:
    from functions.messages.dal.messages import DynamoMessageStore
    from functions.messages.logic.blind_index import BlindIndex
    from shared.crypto import TenantKeys
    from shared.secrets import TenantSecrets

    seeded = seed(world, 40)
    index, store = BlindIndex(TenantKeys(TenantSecrets(TENANT_SECRET_PREFIX))), DynamoMessageStore(MESSAGES_TABLE)
    for state in list(seeded.values())[::4]:  # ten of them say "onboarding"
        store.put_terms(state, index.terms("acme", "Welcome to onboarding day"))
    export_id, event = start(world, rest_event, {"q": "Onboarding"})

    run_workflow(event)

    status, raw_manifest = finished(rest_event, export_id)
    manifest = json.loads(raw_manifest)
    assert status["counts"]["documents"] == 10 and manifest["order"] == "newest_first"
    wanted = {s.message_id for s in list(seeded.values())[::4]}
    assert {d["message_id"] for d in manifest["documents"]} == wanted


def test_a_long_export_is_written_in_segments_that_the_manifest_ties_together(
    world: RetentionWorld, rest_event: RestEventFactory
) -> None:
    seed(world, 250)
    export_id, event = start(world, rest_event, {})
    budget = iter([1000.0, 0.0] * 50)  # a step reads two pages before its time runs short

    steps = run_workflow(event, time_left=lambda: next(budget))

    status, raw_manifest = finished(rest_event, export_id)
    manifest = json.loads(raw_manifest)
    prefix = f"messages/exports/acme/{export_id}/"
    assert steps == 2 and status["segments"] == 2 and status["counts"]["documents"] == 250
    assert [s["documents"] for s in manifest["segments"]] == [200, 50]
    assert [s["files"] for s in manifest["segments"]][1] == [
        "messages-0002.jsonl",
        "loadfile-0002.csv",
        "loadfile-0002.dat",
    ]
    for entry in manifest["files"]:
        assert hashlib.sha256(download(prefix + entry["path"])).hexdigest() == entry["sha256"], entry["path"]
    assert [d["docid"] for d in manifest["documents"]] == [f"ACME-{n:08d}" for n in range(1, 251)]


def test_messages_in_the_warm_and_cold_tiers_are_exported_whole(
    world: RetentionWorld, rest_event: RestEventFactory
) -> None:
    from functions.messages.dal.archive import STORAGE_CLASS, S3MessageArchive, archive_key_for, for_archive, stub_of
    from functions.messages.models.policy import Tier

    seeded = seed(world, 30)
    archive, ddb = S3MessageArchive(ARCHIVE_BUCKET), boto3.client("dynamodb", region_name=REGION)
    archived = [s for s in seeded.values() if s.sealed_body][:6]
    for n, state in enumerate(archived):  # what the tiering does: the whole message to S3, a stub in the table
        tier, key = (Tier.WARM if n % 2 else Tier.COLD), archive_key_for(state)
        archive.put(key, for_archive(state), STORAGE_CLASS[tier])
        ddb.put_item(TableName=MESSAGES_TABLE, Item=to_item(stub_of(state, tier, key)))
    export_id, event = start(world, rest_event, {})

    run_workflow(event)

    status, raw_manifest = finished(rest_event, export_id)
    manifest = json.loads(raw_manifest)
    prefix = f"messages/exports/acme/{export_id}/"
    assert status["counts"]["documents"] == 30 and status["counts"]["content_unreadable"] == 0
    exported: dict[str, str] = {}  # message id -> the body the export holds
    for entry in manifest["files"]:
        data = download(prefix + entry["path"])
        if entry["path"].startswith("native/"):
            parsed = email.message_from_bytes(data, policy=policy.default)
            if parsed["X-ATS-Content"] == "included":
                exported[parsed["X-ATS-Message-Id"]] = parsed.get_content().replace("\r\n", "\n")
        elif entry["path"].endswith(".jsonl"):
            for line in data.splitlines():
                document = json.loads(line)
                if document.get("content"):
                    exported[document["message_id"]] = document["content"]["body"]
    for state in archived:
        index = int(state.message_key.rsplit("-", 1)[1])
        assert exported[state.message_id] == body_of(index), state.channel


def test_each_file_of_a_finished_export_is_downloaded_through_its_own_link(
    world: RetentionWorld, rest_event: RestEventFactory
) -> None:
    seed(world, 20)
    export_id, event = start(world, rest_event, {})
    base = f"/v1/message-exports/{export_id}/file"
    response, body = call(rest_event, "GET", f"{base}?path=loadfile.csv")
    assert response["statusCode"] == 409 and "queued" in body["error"]["message"]  # not written yet

    run_workflow(event)

    _, raw_manifest = finished(rest_event, export_id)
    for entry in json.loads(raw_manifest)["files"]:
        response, link = call(rest_event, "GET", f"{base}?path={entry['path']}")
        assert response["statusCode"] == 200, link
        assert "X-Amz-Expires=900" in link["url"]
        downloaded = requests.get(link["url"], timeout=5)
        assert hashlib.sha256(downloaded.content).hexdigest() == entry["sha256"], entry["path"]
    assert ("messages:export", f"/v1/message-exports/{export_id}/loadfile.dat", "allowed") in audit_trail()
    for bad in ("../manifest.json", "native/x.eml", "other.txt"):
        response, body = call(rest_event, "GET", f"{base}?path={bad}")
        assert response["statusCode"] in (400, 422), bad
    response, _ = call(rest_event, "GET", f"{base}?path=loadfile.csv", tenant="globex")
    assert response["statusCode"] == 404
    response, _ = call(rest_event, "GET", f"{base}?path=loadfile.csv", groups="recruiter")
    assert response["statusCode"] == 403


def test_a_failed_workflow_marks_the_export_failed(world: RetentionWorld, rest_event: RestEventFactory) -> None:
    from functions.messages.handlers import export_worker

    export_id, _ = start(world, rest_event, {})
    caught = {
        "tenant": "acme",
        "export_id": export_id,
        "error": {"Error": "States.Timeout", "Cause": "the step timed out"},
    }

    answer = export_worker.lambda_handler(caught, make_lambda_context("export-step"))

    assert answer == {"tenant": "acme", "export_id": export_id, "status": "failed", "done": True}
    response, status = call(rest_event, "GET", f"/v1/message-exports/{export_id}")
    assert status["status"] == "failed" and status["error"] == "States.Timeout: the step timed out"
    assert status["manifest"] is None and status["listing"] is None
    assert ("messages.export", f"/v1/message-exports/{export_id}", Outcome.FAILED.value) in audit_trail()


def test_who_may_export_and_whose_export_may_be_read(world: RetentionWorld, rest_event: RestEventFactory) -> None:
    response, body = call(rest_event, "POST", "/v1/message-exports", body={}, groups="recruiter")
    assert response["statusCode"] == 403 and body["error"]["code"] == "forbidden"
    assert ("messages:export", "/v1/message-exports", "denied") in audit_trail()

    export_id, _ = start(world, rest_event, {})
    response, _ = call(rest_event, "GET", f"/v1/message-exports/{export_id}", tenant="globex")
    assert response["statusCode"] == 404
    response, _ = call(rest_event, "GET", "/v1/message-exports/11111111-2222-4333-8444-555555555555")
    assert response["statusCode"] == 404
    response, body = call(rest_event, "GET", f"/v1/message-exports/{export_id}")
    assert response["statusCode"] == 200 and body["status"] == "queued" and body["manifest"] is None


@pytest.mark.parametrize(
    "body",
    [
        {"since": "2026-11-01T00:00:00+00:00", "until": "2026-10-01T00:00:00+00:00"},
        {"since": "2026-11-01T00:00:00"},
        {"channel": "fax"},
        {"docid_prefix": "acme-1"},
        {"unknown": "field"},
    ],
)
def test_a_malformed_request_is_refused_and_nothing_starts(
    world: RetentionWorld, rest_event: RestEventFactory, body: dict[str, Any]
) -> None:
    response, _ = call(rest_event, "POST", "/v1/message-exports", body=body)

    assert response["statusCode"] == 422
    assert [e for e in published(world) if e["detail-type"] == "MessageExportRequested"] == []


def test_a_file_larger_than_a_part_is_uploaded_in_parts_to_the_locked_bucket(world: RetentionWorld) -> None:
    from functions.messages.dal.export_files import S3ExportFiles

    files = S3ExportFiles(EXPORT_BUCKET, "acme", "11111111-2222-4333-8444-555555555555", part_size=5 * 1024 * 1024)
    writer = files.writer("loadfile.csv", "text/csv; charset=utf-8")
    digest, size = hashlib.sha256(), 0
    row = "þ".join(["ACME-00000001", "Zoë Ångström <candidate@example.com>"] * 20).encode() + b"\r\n"
    while size < 12 * 1024 * 1024:  # two full parts and a smaller last one
        writer.write(row)
        digest.update(row)
        size += len(row)
    writer.close()

    stored = download(files.key("loadfile.csv"))
    assert (len(stored), hashlib.sha256(stored).hexdigest()) == (size, digest.hexdigest())
    assert b"".join(files.lines("loadfile.csv")) == stored
