"""The provable audit trail on moto (issue 13): requests insert, the linker links from the table's stream, the
hourly job signs digests with an asymmetric KMS key into an Object Lock bucket, and both `ats-audit verify` (on an
export) and the table-side check (on the chain) catch the review's attacks: an entry overwritten with the chain
recomputed after it, the head rewound, the table restored to an earlier point."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from functions.audit.dal.chain import DynamoChainStore, chain_pk
from functions.audit.dal.digests import KmsDigestSigner, S3DynamoDigestStore, digest_files
from functions.audit.handlers import linker
from functions.audit.logic.digests import write_digests
from functions.audit.logic.verify import period_lines, verify_trail
from shared import clock
from shared.audit import AuditEntry, DynamoAuditLog, Outcome, batched, inbox_item
from shared.audit_proof import canonical, entry_hash, load_public_key, parse_export_line
from shared.keys import sequence_key
from tests.conftest import make_lambda_context
from tests.integration.conftest import REGION, new_stream_records

TABLE = "it-audit-trail"
BUCKET = "it-audit-locked"
T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


@dataclass
class Trail:
    ddb: Any
    streams: Any
    stream_arn: str
    signer: KmsDigestSigner
    iterators: dict[str, str] = field(default_factory=dict)

    def log(self) -> DynamoAuditLog:
        return DynamoAuditLog(TABLE, client=self.ddb)

    def chain(self) -> DynamoChainStore:
        return DynamoChainStore(TABLE, client=self.ddb)

    def records(self) -> list[dict[str, Any]]:
        """The stream records not read yet, every shard."""
        return new_stream_records(self.streams, self.stream_arn, self.iterators)

    def link(self, records: list[dict[str, Any]] | None = None) -> dict[str, int]:
        """Hand the stream's new records to the linker, as Lambda's poller does."""
        records = self.records() if records is None else records
        result: dict[str, int] = linker.lambda_handler(
            {"Records": records}, make_lambda_context("Linker"), store=self.chain()
        )
        return result

    def digests(self, now: datetime, tenant: str = "acme") -> list[str]:
        store = S3DynamoDigestStore(TABLE, BUCKET, dynamodb=self.ddb, s3=boto3.client("s3", region_name=REGION))
        return write_digests(tenant, now, chain=self.chain(), store=store, signer=self.signer)

    def export(self, directory: Path, tenant: str = "acme") -> Path:
        """What an auditor downloads: the digests, the public key, and the chain's lines period by period."""
        (directory / "digests").mkdir(parents=True)
        files = digest_files(BUCKET, tenant, boto3.client("s3", region_name=REGION))
        with (directory / "export.jsonl").open("wb") as out:
            for item in files:
                (directory / "digests" / Path(item.name).name).write_bytes(item.raw)
                out.writelines(line + b"\n" for line in period_lines(self.chain(), item.digest))
        (directory / "public.pem").write_bytes(self.signer.public_key_pem())
        return directory

    def verify_table(self, tenant: str = "acme") -> Any:
        files = digest_files(BUCKET, tenant, boto3.client("s3", region_name=REGION))
        return verify_trail(
            tenant, chain=self.chain(), digests=files, public_key=load_public_key(self.signer.public_key_pem())
        )


@pytest.fixture
def trail(aws: Any) -> Iterator[Trail]:
    ddb = boto3.client("dynamodb", region_name=REGION)
    ddb.create_table(
        TableName=TABLE,
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    stream_arn = ddb.describe_table(TableName=TABLE)["Table"]["LatestStreamArn"]
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(
        Bucket=BUCKET,
        CreateBucketConfiguration={"LocationConstraint": REGION},  # type: ignore[typeddict-item]
        ObjectLockEnabledForBucket=True,
    )
    kms = boto3.client("kms", region_name=REGION)
    key = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
    clock.freeze(T0)
    # botocore now calls `<account>.streams-ddb.<region>`, a host moto's mock does not route: name moto's own.
    streams = boto3.client(
        "dynamodbstreams", region_name=REGION, endpoint_url=f"https://streams.dynamodb.{REGION}.amazonaws.com"
    )
    yield Trail(ddb, streams, stream_arn, KmsDigestSigner(key, kms))
    clock.freeze(None)


def entry(n: int, *, tenant: str = "acme", request: str | None = None) -> AuditEntry:
    return AuditEntry(
        tenant=tenant,
        actor=f"user:u-{n % 3}",
        action="messages:read",
        resource=f"/v1/messages/m-{n}",
        outcome=Outcome.ALLOWED,
        request_id=request or f"req-{n}",
        source_ip="203.0.113.7",
    )


def calls_to(client: Any) -> list[str]:
    made: list[str] = []
    client.meta.events.register("before-call.dynamodb.*", lambda model, **_: made.append(model.name))
    return made


def record_requests(trail: Trail, count: int, *, start: int = 0, tenant: str = "acme") -> None:
    for n in range(start, start + count):
        with batched():
            trail.log().append(entry(n, tenant=tenant))


# --- the request path -----------------------------------------------------------------------------------------


def test_a_request_inserts_all_it_audited_in_one_write_and_reads_nothing(trail: Trail) -> None:
    made = calls_to(trail.ddb)
    log = trail.log()

    with batched():
        for n in range(3):
            log.append(entry(n, request="req-one"))

    assert made == ["PutItem"]
    (item,) = trail.ddb.scan(TableName=TABLE)["Items"]
    assert "#AUDITIN#" in item["pk"]["S"] and item["count"] == {"N": "3"}
    assert [e.resource for e in log.entries("acme")] == [f"/v1/messages/m-{n}" for n in range(3)]


def test_a_retried_request_is_recorded_once(trail: Trail) -> None:
    with batched():
        trail.log().append(entry(1))
    clock.freeze(T0 + timedelta(seconds=3))  # the retry's entries carry a later time: the facts are the same
    with batched():
        trail.log().append(entry(1))

    assert len(trail.ddb.scan(TableName=TABLE)["Items"]) == 1


# --- the single writer ------------------------------------------------------------------------------------------


def test_the_linker_links_every_entry_once_into_per_shard_chains(trail: Trail) -> None:
    record_requests(trail, 20)
    record_requests(trail, 3, tenant="globex")
    records = trail.records()

    first = trail.link(records)
    again = trail.link(records)  # Lambda delivers a batch again after a failure: nothing is linked twice

    assert first["linked_entries"] == 23 and first["changes_not_inserts"] == 0
    assert again["linked_entries"] == 0 and again["already_linked"] == 23
    chain, seen = trail.chain(), 0
    for shard in range(8):
        prev = bytes(32)
        for seq, line in enumerate(chain.lines("acme", shard, after_seq=0), start=1):
            exported = parse_export_line(line.encode())
            assert (exported.entry["seq"], exported.entry["shard"]) == (seq, shard)
            assert exported.stored_hash == entry_hash(prev, exported.entry)  # SHA-256(prev || canonical entry)
            assert exported.body == canonical(exported.entry)
            prev, seen = exported.stored_hash, seen + 1
    assert seen == 20
    assert trail.chain().tenants() == ["acme", "globex"]


def test_the_warm_linker_reads_a_head_once_and_a_head_remembered_past_a_restore_leaves_no_gap(
    trail: Trail, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The deployed store's heads are remembered between invocations; every link checks the head it follows."""
    monkeypatch.setenv("AUDIT_TABLE_NAME", TABLE)
    monkeypatch.setattr(linker, "_HEADS", {})
    from shared.aws import client

    head_reads: list[str] = []  # Queries of a chain on the client the deployed store uses (the detector's aside)

    def note(params: dict[str, Any], **_: Any) -> None:
        pk = params.get("ExpressionAttributeValues", {}).get(":pk", {}).get("S", "")
        if pk.rsplit("#", 1)[-1].isdigit() and "#AUDIT#" in pk:  # T#<tenant>#AUDIT#<shard>
            head_reads.append(pk)

    client("dynamodb").meta.events.register("before-parameter-build.dynamodb.Query", note)

    def link_new() -> dict[str, int]:
        return linker.lambda_handler({"Records": trail.records()}, make_lambda_context("Linker"))

    # Given a chain the warm linker has linked into once
    record_requests(trail, 1)
    assert link_new()["linked_entries"] == 1
    (ref,) = linker._HEADS
    assert len(head_reads) == 1
    # When more of that chain's items come in later batches, its head is not read again
    for n in range(1, 40):
        with batched():
            trail.log().append(entry(n))
    linked = 0
    records = [r for r in trail.records() if f"#AUDITIN#{ref[1]}" in r["dynamodb"]["Keys"]["pk"]["S"]]
    for start in range(0, len(records), 2):
        linked += linker.lambda_handler({"Records": records[start : start + 2]}, make_lambda_context("Linker"))[
            "linked_entries"
        ]
    assert linked == len(records) >= 2 and len(head_reads) == 1
    head = linker._HEADS[ref]
    # And when the table goes back to an earlier point (its last entry gone) while the linker remembers the head,
    # the next link is refused, the head read, and the chain goes on without a gap
    trail.ddb.delete_item(
        TableName=TABLE, Key={"pk": {"S": chain_pk(*ref)}, "sk": {"S": sequence_key("SEQ", head.seq)}}
    )
    extra = next(e for n in range(100, 400) if inbox_ref_of(e := entry(n)) == ref)
    with batched():
        trail.log().append(extra)
    assert link_new()["linked_entries"] == 1
    seqs = [int(i["sk"]["S"].split("#")[1]) for i in _chain_items(trail) if i["pk"]["S"] == chain_pk(*ref)]
    assert sorted(seqs) == list(range(1, head.seq + 1)) and len(head_reads) == 2


def inbox_ref_of(audit_entry: AuditEntry) -> tuple[str, int]:
    pk = inbox_item(audit_entry.tenant, [audit_entry], audit_entry.at)["pk"]["S"]
    return audit_entry.tenant, int(pk.rsplit("#", 1)[1])


def test_a_change_that_is_not_an_insert_is_counted_and_alarmed(trail: Trail) -> None:
    record_requests(trail, 1)
    trail.link()
    (chained,) = [i for i in trail.ddb.scan(TableName=TABLE)["Items"] if i["sk"]["S"].startswith("SEQ#")]
    trail.ddb.update_item(
        TableName=TABLE,
        Key={"pk": chained["pk"], "sk": chained["sk"]},
        UpdateExpression="SET #o = :o",
        ExpressionAttributeNames={"#o": "outcome"},
        ExpressionAttributeValues={":o": {"S": "denied"}},
    )
    trail.ddb.delete_item(TableName=TABLE, Key={"pk": chained["pk"], "sk": chained["sk"]})

    assert trail.link()["changes_not_inserts"] == 2


# --- digests, export, verification -----------------------------------------------------------------------------


def build_history(trail: Trail) -> None:
    """Three hours of requests, linked as they come, digested after each hour."""
    for hour in range(3):
        clock.freeze(T0 + timedelta(hours=hour, minutes=10))
        record_requests(trail, 15, start=hour * 100)
        trail.link()
        clock.freeze(T0 + timedelta(hours=hour + 1, minutes=5))
        assert len(trail.digests(clock.now())) == 1


def test_hourly_digests_are_signed_chained_and_an_export_verifies(trail: Trail, tmp_path: Path) -> None:
    from functions.audit.cli import main

    build_history(trail)

    keys = sorted(o["Key"] for o in boto3.client("s3", region_name=REGION).list_objects_v2(Bucket=BUCKET)["Contents"])
    assert [k for k in keys if k.startswith("audit/digests/acme/")] == [
        "audit/digests/acme/2026/11/27/20261127T090000Z.json",
        "audit/digests/acme/2026/11/27/20261127T100000Z.json",
        "audit/digests/acme/2026/11/27/20261127T110000Z.json",
    ]
    assert trail.verify_table().ok
    exported = trail.export(tmp_path / "audit")
    args = ["verify", "--log", str(exported / "export.jsonl"), "--digests", str(exported / "digests")]
    args += ["--public-key", str(exported / "public.pem"), "--quiet"]
    assert main(args) == 0

    # One byte of the export edited: the verification fails and names the entry.
    lines = (exported / "export.jsonl").read_bytes().split(b"\n")
    lines[20] = lines[20].replace(b"messages:read", b"messages:reaD")
    (exported / "export.jsonl").write_bytes(b"\n".join(lines))
    assert main(args) == 1


def test_an_empty_hour_gets_its_digest_and_a_missed_run_catches_up(trail: Trail) -> None:
    record_requests(trail, 2)
    trail.link()
    assert len(trail.digests(T0 + timedelta(hours=1, minutes=5))) == 1
    assert len(trail.digests(T0 + timedelta(hours=4, minutes=5))) == 3  # two empty hours and one more
    assert len(trail.digests(T0 + timedelta(hours=4, minutes=35))) == 0  # nothing twice
    assert trail.verify_table().ok


def _chain_items(trail: Trail, tenant: str = "acme") -> list[dict[str, Any]]:
    items = []
    for shard in range(8):
        items += trail.ddb.query(
            TableName=TABLE,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :s)",
            ExpressionAttributeValues={":pk": {"S": chain_pk(tenant, shard)}, ":s": {"S": "SEQ#"}},
        )["Items"]
    return items


def test_an_entry_overwritten_with_the_chain_recomputed_after_it_is_caught(trail: Trail) -> None:
    build_history(trail)
    shard = next(s for s in range(8) if len(list(trail.chain().lines("acme", s, after_seq=0))) >= 3)
    lines = [parse_export_line(line.encode()) for line in trail.chain().lines("acme", shard, after_seq=0)]
    # The attacker rewrites the first entry and every hash after it, so the chain in the table links again.
    prev = bytes(32)
    for index, exported in enumerate(lines):
        fields = dict(exported.entry)
        if index == 0:
            fields["outcome"] = "denied"
        digest = entry_hash(prev, fields)
        trail.ddb.put_item(
            TableName=TABLE,
            Item={
                "pk": {"S": chain_pk("acme", shard)},
                "sk": {"S": sequence_key("SEQ", fields["seq"])},
                "line": {"S": digest.hex() + "\t" + canonical(fields).decode()},
                "hash": {"S": digest.hex()},
            },
        )
        prev = digest

    result = trail.verify_table()

    assert not result.ok and f"shard {shard} seq 1" in str(result.problem)
    assert trail.link()["changes_not_inserts"] == len(lines)  # and every overwrite raised the alarm's metric


def test_a_rewound_head_is_caught(trail: Trail) -> None:
    build_history(trail)
    last = max(_chain_items(trail), key=lambda i: (i["at"]["S"], i["sk"]["S"]))
    trail.ddb.delete_item(TableName=TABLE, Key={"pk": last["pk"], "sk": last["sk"]})

    result = trail.verify_table()

    assert not result.ok and "2026-11-27T11:00:00Z" in str(result.problem)  # the last period lost its tail


def test_a_table_restored_to_an_earlier_point_is_caught(trail: Trail) -> None:
    build_history(trail)
    # What a restore to 10:30 gives back: the chain as it was then, without what was linked afterwards.
    for item in _chain_items(trail):
        if item["linked_at"]["S"] > "2026-11-27T10:30":
            trail.ddb.delete_item(TableName=TABLE, Key={"pk": item["pk"], "sk": item["sk"]})

    result = trail.verify_table()

    assert not result.ok and "2026-11-27T11:00:00Z" in str(result.problem)


def test_the_digest_store_never_replaces_a_digest(trail: Trail) -> None:
    store = S3DynamoDigestStore(TABLE, BUCKET, dynamodb=trail.ddb, s3=boto3.client("s3", region_name=REGION))
    assert store.put_object("audit/digests/acme/x.json", b'{"a":1}') == b'{"a":1}'
    assert store.put_object("audit/digests/acme/x.json", b'{"a":2}') == b'{"a":1}'  # If-None-Match: kept as is
    body = boto3.client("s3", region_name=REGION).get_object(Bucket=BUCKET, Key="audit/digests/acme/x.json")
    assert json.loads(body["Body"].read()) == {"a": 1}
