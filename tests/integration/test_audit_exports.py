"""Auditor exports end to end on moto, in process (issue 13, section 8): a real chain written by requests, linked
by the linker and digested hourly; an export of a range in the middle of the chain asked for through the API, run
by the worker, read back with its presigned links; `ats-audit verify` passes on the downloaded files and fails,
naming the entry, after a one-byte edit. The daily scheduled export writes the previous day of every tenant."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import boto3
import pytest

from functions.audit.cli import main as ats_audit
from functions.audit.dal.chain import DynamoChainStore
from functions.audit.dal.digests import KmsDigestSigner, S3DynamoDigestStore
from functions.audit.dal.exports import LambdaExportStarter
from functions.audit.handlers import export_routes, export_worker
from functions.audit.logic.digests import write_digests
from functions.audit.logic.linker import StreamChange, apply_changes
from shared import clock
from shared.audit import AuditEntry, DynamoAuditLog, Outcome, batched
from shared.http import build_resolver
from tests.conftest import make_lambda_context
from tests.integration.conftest import AUDIT_TABLE, EXPORT_BUCKET, REGION, RestEventFactory, claims

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
OFFICER = claims(sub="officer-1", groups="compliance_officer")


@dataclass
class World:
    ddb: Any
    s3: Any
    signer: KmsDigestSigner
    linked: set[str] = field(default_factory=set)

    def chain(self) -> DynamoChainStore:
        return DynamoChainStore(AUDIT_TABLE, client=self.ddb)

    def record(self, count: int, *, start: int, tenant: str = "acme") -> None:
        """`count` requests, each auditing one read."""
        for n in range(start, start + count):
            with batched():
                DynamoAuditLog(AUDIT_TABLE, client=self.ddb).append(
                    AuditEntry(
                        tenant=tenant,
                        actor=f"user:u-{n % 3}",
                        action="messages:read",
                        resource=f"/v1/messages/m-{n}",
                        outcome=Outcome.ALLOWED,
                        request_id=f"req-{n}",
                    )
                )

    def link(self) -> None:
        """What the table's stream gives the linker: every inbox item, in the order written (linked once)."""
        items = [
            i
            for i in self.ddb.scan(TableName=AUDIT_TABLE)["Items"]
            if "#AUDITIN#" in i["pk"]["S"] and i["pk"]["S"] + i["sk"]["S"] not in self.linked
        ]
        self.linked.update(i["pk"]["S"] + i["sk"]["S"] for i in items)
        items.sort(key=lambda i: int(i["written_ns"]["N"]))
        changes = [StreamChange("INSERT", i["pk"]["S"], i["sk"]["S"], i) for i in items]
        apply_changes(changes, self.chain())

    def digest(self, now: datetime) -> None:
        store = S3DynamoDigestStore(AUDIT_TABLE, EXPORT_BUCKET, dynamodb=self.ddb, s3=self.s3)
        store.publish_public_key(self.signer.key_id, self.signer.public_key_pem())
        for tenant in self.chain().tenants():
            write_digests(tenant, now, chain=self.chain(), store=store, signer=self.signer)

    def history(self, hours: int, tenants: tuple[str, ...] = ("acme",), start: datetime = T0) -> None:
        """`hours` hours of requests from `start`, linked as they come and digested after each hour."""
        for hour in range(hours):
            clock.freeze(start + timedelta(hours=hour, minutes=10))
            for tenant in tenants:
                self.record(12, start=hour * 100, tenant=tenant)
            self.link()
            clock.freeze(start + timedelta(hours=hour + 1, minutes=5))
            self.digest(clock.now())


@pytest.fixture
def world(tables: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    ddb = boto3.client("dynamodb", region_name=REGION)
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(
        Bucket=EXPORT_BUCKET,
        CreateBucketConfiguration={"LocationConstraint": REGION},  # type: ignore[typeddict-item]
        ObjectLockEnabledForBucket=True,
    )
    kms = boto3.client("kms", region_name=REGION)
    key = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
    monkeypatch.setenv("AUDIT_EXPORT_WORKER_NAME", "it-audit-export-worker")

    # The API's asynchronous invocation of the worker, run here in process (moto runs no Lambda code).
    def start(self: LambdaExportStarter, tenant: str, export_id: str) -> None:
        export_worker.lambda_handler(
            {"audit_export": {"tenant": tenant, "export_id": export_id}}, make_lambda_context("AuditExportWorker")
        )

    monkeypatch.setattr(LambdaExportStarter, "start", start)
    yield World(ddb, s3, KmsDigestSigner(key, kms))
    clock.freeze(None)


def call(rest_event: RestEventFactory, method: str, path: str, who: dict[str, str] | None, body: Any = None,
         request_id: str | None = None) -> tuple[int, dict[str, Any]]:  # fmt: skip
    app = build_resolver()
    app.include_router(export_routes.router)
    event = rest_event(path, method=method, claims=who, request_id=request_id)
    if path.count("/") == 3:
        event["resource"] = "/v1/audit-exports/{export_id}"
        event["pathParameters"] = {"export_id": path.rsplit("/", 1)[-1]}
    if body is not None:
        event["body"] = json.dumps(body)
        event["headers"]["Content-Type"] = "application/json"
    answer = app.resolve(event, make_lambda_context("AuditApi"))
    return answer["statusCode"], json.loads(answer["body"])


def audit_entries(tenant: str = "acme") -> list[AuditEntry]:
    return DynamoAuditLog(AUDIT_TABLE).entries(tenant, limit=10_000)


def download(world: World, exported: dict[str, Any], to: Path) -> Path:
    """Every file through its presigned link's key (moto serves no HTTP here), checked against the manifest."""
    manifest_key = urlparse(exported["manifest"]["url"]).path.lstrip("/")
    manifest_key = manifest_key.removeprefix(f"{EXPORT_BUCKET}/")
    prefix = manifest_key.removesuffix("manifest.json")
    manifest = world.s3.get_object(Bucket=EXPORT_BUCKET, Key=manifest_key)["Body"].read()
    assert hashlib.sha256(manifest).hexdigest() == exported["manifest"]["sha256"]
    listed = {f["path"]: f for f in json.loads(manifest)["files"]}
    assert sorted(listed) == sorted(f["path"] for f in exported["files"])
    for link in exported["files"]:
        key = urlparse(link["url"]).path.lstrip("/").removeprefix(f"{EXPORT_BUCKET}/")
        assert key == prefix + link["path"]
        data = world.s3.get_object(Bucket=EXPORT_BUCKET, Key=key)["Body"].read()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (listed[link["path"]]["size"], link["sha256"])
        (to / link["path"]).parent.mkdir(parents=True, exist_ok=True)
        (to / link["path"]).write_bytes(data)
    (to / "manifest.json").write_bytes(manifest)
    return to


def verify_args(folder: Path, exported: dict[str, Any]) -> list[str]:
    command = exported["verify"].split()
    assert command[:2] == ["ats-audit", "verify"]
    args = command[1:]
    for flag in ("--log", "--digests", "--public-key"):
        at = args.index(flag) + 1
        args[at] = str(folder / args[at])
    return [*args, "--quiet"]


def test_an_export_of_a_range_mid_chain_verifies_and_one_edited_byte_is_named(
    world: World, rest_event: RestEventFactory, tmp_path: Path
) -> None:
    # Given five hours of a chain, digested hourly
    world.history(5)
    clock.freeze(T0 + timedelta(hours=6))

    # When a compliance officer exports 10:20..11:40 (widened to 10:00..12:00, the middle of the chain)
    status, accepted = call(
        rest_event,
        "POST",
        "/v1/audit-exports",
        OFFICER,
        {"since": "2026-11-27T10:20:00Z", "until": "2026-11-27T11:40:00+00:00"},
        request_id="exp-1",
    )

    # Then it is accepted with the aligned range, and the worker has written it
    assert status == 202, accepted
    assert (accepted["since"], accepted["until"]) == ("2026-11-27T10:00:00Z", "2026-11-27T12:00:00Z")
    status, exported = call(rest_event, "GET", f"/v1/audit-exports/{accepted['export_id']}", OFFICER)
    assert status == 200 and exported["status"] == "ready", exported
    assert exported["counts"]["periods"] == 2 and exported["counts"]["entries"] >= 24
    paths = [f["path"] for f in exported["files"]]
    assert paths[0] == "entries/20261127.jsonl"
    assert [p for p in paths if p.startswith("digests/")] == [
        "digests/2026/11/27/20261127T100000Z.json",
        "digests/2026/11/27/20261127T110000Z.json",
    ]
    assert any(p.startswith("public-keys/") for p in paths)
    assert "X-Amz-Expires=900" in exported["manifest"]["url"]

    # And `ats-audit verify` passes on the downloaded files
    folder = download(world, exported, tmp_path / "export")
    args = verify_args(folder, exported)
    assert ats_audit(args) == 0

    # And it fails without --since (the first digest continues one the export does not hold)
    assert ats_audit([a for i, a in enumerate(args) if "--since" not in (a, args[i - 1])]) == 1

    # And one byte edited fails, naming the entry
    entries = folder / "entries" / "20261127.jsonl"
    lines = entries.read_bytes().split(b"\n")
    lines[5] = lines[5].replace(b'"outcome":"allowed"', b'"outcome":"allowee"')
    entries.write_bytes(b"\n".join(lines))
    assert ats_audit(args) == 1

    # And the request, the worker's export and the read are each audited
    acme = audit_entries()
    resource = f"/v1/audit-exports/{accepted['export_id']}"
    assert [(e.actor, e.outcome) for e in acme if e.resource == resource] == [
        ("user:officer-1", Outcome.ALLOWED),
        ("system:audit-export", Outcome.ALLOWED),
        ("user:officer-1", Outcome.ALLOWED),
    ]


def test_the_edit_is_named_by_entry_and_line(
    world: World, rest_event: RestEventFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world.history(3)
    clock.freeze(T0 + timedelta(hours=4))
    body = {"since": "2026-11-27T10:00:00Z", "until": "2026-11-27T11:00:00Z"}
    export_id = call(rest_event, "POST", "/v1/audit-exports", OFFICER, body)[1]["export_id"]
    exported = call(rest_event, "GET", f"/v1/audit-exports/{export_id}", OFFICER)[1]
    folder = download(world, exported, tmp_path / "x")
    entries = folder / "entries" / "20261127.jsonl"
    data = bytearray(entries.read_bytes())
    data[data.index(b"m-1")] = ord("n")  # one byte of the second hour's entry /v1/messages/m-1xx
    entries.write_bytes(bytes(data))
    capsys.readouterr()

    assert ats_audit(verify_args(folder, exported)) == 1
    out = capsys.readouterr().out
    assert "FAILED acme: entry shard" in out and "20261127.jsonl:" in out


def test_another_tenants_export_is_404_and_refusals_are_audited(world: World, rest_event: RestEventFactory) -> None:
    world.history(2)
    clock.freeze(T0 + timedelta(hours=3))
    body = {"since": "2026-11-27T09:00:00Z", "until": "2026-11-27T10:00:00Z"}
    export_id = call(rest_event, "POST", "/v1/audit-exports", OFFICER, body)[1]["export_id"]

    globex = claims(tenant="globex", sub="officer-9", groups="compliance_officer")
    assert call(rest_event, "GET", f"/v1/audit-exports/{export_id}", globex)[0] == 404
    assert call(rest_event, "GET", "/v1/audit-exports/not-an-id", OFFICER)[0] == 404
    recruiter = claims(sub="rec-1", groups="recruiter")
    assert call(rest_event, "POST", "/v1/audit-exports", recruiter, body, request_id="rec")[0] == 403
    assert call(rest_event, "GET", f"/v1/audit-exports/{export_id}", recruiter)[0] == 403

    denied = [e for e in audit_entries() if e.outcome is Outcome.DENIED]
    assert [e.actor for e in denied] == ["user:rec-1", "user:rec-1"]
    assert any(e.actor == "user:officer-9" for e in audit_entries("globex"))


@pytest.mark.parametrize(
    ("since", "until", "problem"),
    [
        ("2026-11-27T10:00:00Z", "2026-11-27T10:00:00Z", "until must be after since"),
        ("2026-11-27T10:00:00Z", "2026-11-28T10:00:00Z", "future"),
        ("2026-10-01T00:00:00Z", "2026-11-27T00:00:00Z", "more than 31 days"),
        ("2026-11-27T10:00:00Z", "2026-11-27T11:50:00Z", "digested a few minutes after it ends"),
    ],
)
def test_bad_ranges_are_refused_with_a_clear_400(
    world: World, rest_event: RestEventFactory, since: str, until: str, problem: str
) -> None:
    clock.freeze(datetime(2026, 11, 27, 12, 5, tzinfo=UTC))

    status, body = call(rest_event, "POST", "/v1/audit-exports", OFFICER, {"since": since, "until": until})

    assert status == 400 and problem in body["error"]["message"]


def test_a_range_without_its_digests_fails_with_the_reason(world: World, rest_event: RestEventFactory) -> None:
    world.history(1)  # only 09:00..10:00 is digested
    clock.freeze(T0 + timedelta(hours=5))
    body = {"since": "2026-11-27T09:00:00Z", "until": "2026-11-27T11:00:00Z"}
    export_id = call(rest_event, "POST", "/v1/audit-exports", OFFICER, body)[1]["export_id"]

    exported = call(rest_event, "GET", f"/v1/audit-exports/{export_id}", OFFICER)[1]

    assert exported["status"] == "failed" and exported["files"] == []
    assert exported["error"] == "digests_missing: no digest of the period starting 2026-11-27T10:00:00Z"


def test_the_daily_schedule_exports_the_previous_day_of_every_tenant(world: World, tmp_path: Path) -> None:
    # Given two tenants' chains from 21:00 (digested hourly; the hours before their first entry have none)
    world.history(3, tenants=("acme", "globex"), start=datetime(2026, 11, 27, 21, 0, tzinfo=UTC))

    # When the schedule fires after midnight (twice: a retried run)
    event = {"source": "aws.events", "detail-type": "Scheduled Event", "time": "2026-11-28T00:30:00Z"}
    first = export_worker.lambda_handler(event, make_lambda_context("AuditExportWorker"))
    again = export_worker.lambda_handler(event, make_lambda_context("AuditExportWorker"))

    # Then each tenant's day is exported once, under scheduled/<date>/, and verifies from its first digest
    assert first == {"day": "2026-11-27", "written": ["acme", "globex"], "skipped": []}
    assert again["skipped"] == ["acme", "globex"]
    prefix = "audit/exports/acme/scheduled/2026-11-27/"
    keys = [o["Key"] for o in world.s3.list_objects_v2(Bucket=EXPORT_BUCKET, Prefix=prefix)["Contents"]]
    for key in keys:
        (tmp_path / key).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / key).write_bytes(world.s3.get_object(Bucket=EXPORT_BUCKET, Key=key)["Body"].read())
    manifest = json.loads((tmp_path / prefix / "manifest.json").read_text())
    assert manifest["kind"] == "scheduled" and manifest["periods"] == 3 and manifest["entries"] == 36
    folder = tmp_path / prefix
    assert ats_audit(verify_args(folder, manifest)) == 0
    scheduled = [e for e in audit_entries() if e.actor == "system:audit-export"]
    assert [e.resource for e in scheduled] == [prefix.rstrip("/")]
