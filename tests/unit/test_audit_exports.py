"""Auditor exports' logic with fakes (issue 13, section 8): the range check and alignment, who may ask (audited
either way), what an export holds (the verifier's line format, every digest and key, a manifest of sizes and
SHA-256), the streamed multipart writer, and what a read shows."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from functions.audit.logic import export as logic
from shared.audit import Outcome
from shared.audit_proof import (
    GENESIS,
    DigestFile,
    LocalSigner,
    build_digest,
    digest_bytes,
    format_instant,
    link,
    parse_digest,
)
from shared.auth import Actor, ActorKind, Role
from shared.errors import BadRequest, Forbidden, NotFound
from shared.s3_objects import S3ObjectWriter
from tests.fakes import FakeAuditLog, FakeGrantReader

NOW = datetime(2026, 11, 27, 12, 30, tzinfo=UTC)
T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def person(*roles: Role, tenant: str = "acme", sub: str = "u-1") -> Actor:
    return Actor(ActorKind.USER, tenant, sub, roles=frozenset(roles))


OFFICER = person(Role.COMPLIANCE_OFFICER)


# --- fakes ---------------------------------------------------------------------------------------------------------


@dataclass
class FakeJobs:
    items: dict[tuple[str, str], logic.ExportJob] = field(default_factory=dict)

    def insert_request(self, job: logic.ExportJob) -> None:
        self.items[(job.tenant, job.export_id)] = job

    def insert_outcome(self, job: logic.ExportJob) -> None:
        self.items[(job.tenant, job.export_id)] = job

    def get(self, tenant: str, export_id: str) -> logic.ExportJob | None:
        return self.items.get((tenant, export_id))


@dataclass
class FakeStarter:
    started: list[tuple[str, str]] = field(default_factory=list)
    fail: bool = False

    def start(self, tenant: str, export_id: str) -> None:
        if self.fail:
            raise RuntimeError("lambda unavailable")
        self.started.append((tenant, export_id))


class Sink:
    def __init__(self, files: FakeFiles, key: str) -> None:
        self.files, self.key, self.data = files, key, bytearray()

    def write(self, data: bytes) -> None:
        self.data += data

    def close(self) -> None:
        self.files.objects[self.key] = bytes(self.data)

    def abort(self) -> None:
        self.data = bytearray()


@dataclass
class FakeFiles:
    trail: list[DigestFile] = field(default_factory=list)
    keys: dict[str, bytes] = field(default_factory=dict)
    objects: dict[str, bytes] = field(default_factory=dict)

    def digests(self, tenant: str, start: datetime, end: datetime) -> list[DigestFile]:
        low, high = (m.strftime("%Y-%m-%dT%H:%M:%SZ") for m in (start, end))
        return [d for d in self.trail if d.digest.tenant == tenant and low <= d.digest.period_start < high]

    def public_key(self, key_id: str) -> tuple[str, bytes]:
        return f"{key_id}.pem", self.keys[key_id]

    def writer(self, prefix: str, path: str, content_type: str) -> Sink:
        return Sink(self, prefix + path)

    def put(self, prefix: str, path: str, data: bytes, content_type: str) -> None:
        self.objects[prefix + path] = data

    def exists(self, prefix: str, path: str) -> bool:
        return prefix + path in self.objects

    def read(self, prefix: str, path: str) -> bytes:
        return self.objects[prefix + path]


@dataclass
class FakeChain:
    lines_by_shard: dict[int, list[str]] = field(default_factory=dict)

    def lines(self, tenant: str, shard: int, *, after_seq: int, up_to_seq: int | None = None) -> Iterator[str]:
        stored = self.lines_by_shard.get(shard, [])
        yield from stored[after_seq : up_to_seq if up_to_seq is not None else None]


class FakeLinks:
    def download(self, key: str, seconds: int) -> str:
        return f"https://bucket.s3/{key}?X-Amz-Expires={seconds}"


def trail(hours: int, per_hour: int = 3) -> tuple[FakeChain, FakeFiles]:
    """`hours` signed digests from T0 over a two-shard chain, and the chain's stored lines."""
    signer = LocalSigner.generate("k1")
    chain, files = FakeChain(), FakeFiles(keys={"k1": signer.public_key_pem()})
    heads = {0: GENESIS, 1: GENESIS}
    previous: bytes | None = None
    for hour in range(hours):
        linked = []
        for n in range(per_hour):
            shard = n % 2
            seq = len(chain.lines_by_shard.get(shard, [])) + 1
            entry = {
                "v": 2, "tenant": "acme", "shard": shard, "seq": seq, "at": format_instant(T0 + hour * HOUR),
                "actor": "user:u-1", "action": "messages:read", "resource": f"/v1/messages/m-{hour}-{n}",
                "outcome": "allowed", "request_id": f"r-{hour}-{n}",
            }  # fmt: skip
            (item,) = link([entry], heads[shard])
            heads[shard] = item.hash
            linked.append(item)
            chain.lines_by_shard.setdefault(shard, []).append(
                item.hash.hex() + "\t" + json.dumps(entry, sort_keys=True, separators=(",", ":"))
            )
        digest = build_digest(
            tenant="acme",
            period_start=T0 + hour * HOUR,
            period_end=T0 + (hour + 1) * HOUR,
            entries=linked,
            previous=previous,
            signer=signer,
        )
        previous = digest_bytes(digest)
        files.trail.append(DigestFile(f"d{hour}.json", previous, parse_digest(previous)))
    return chain, files


# --- the range -----------------------------------------------------------------------------------------------------


def test_a_range_is_widened_to_whole_digest_periods() -> None:
    aligned = logic.align_range(T0 + timedelta(minutes=20), T0 + timedelta(hours=1, minutes=40), NOW)

    assert (aligned.start, aligned.end, aligned.periods) == (T0, T0 + 2 * HOUR, 2)
    assert logic.align_range(T0, T0 + HOUR, NOW).periods == 1  # already whole: unchanged


@pytest.mark.parametrize(
    ("since", "until", "problem"),
    [
        (T0, T0, "until must be after since"),
        (T0 + HOUR, T0, "until must be after since"),
        (T0, NOW + HOUR, "future"),
        (T0 - timedelta(days=31), T0 + HOUR, "more than 31 days"),
        (T0, datetime(2026, 11, 27, 12, 1, tzinfo=UTC), "ask for a range ending by 2026-11-27T12:00:00Z"),
        (T0.replace(tzinfo=None), T0 + HOUR, "time zone"),
    ],
)
def test_bad_ranges_are_refused(since: datetime, until: datetime, problem: str) -> None:
    with pytest.raises(BadRequest, match=problem):
        logic.align_range(since, until, NOW)


def test_the_last_closed_hour_is_exportable_once_its_digest_is_due() -> None:
    at_12_10 = datetime(2026, 11, 27, 12, 10, tzinfo=UTC)
    with pytest.raises(BadRequest):
        logic.align_range(T0, T0 + 3 * HOUR, at_12_10)  # 11:00..12:00 is digested at 12:05: not yet safe
    assert logic.align_range(T0, T0 + 3 * HOUR, at_12_10 + timedelta(minutes=5)).end == T0 + 3 * HOUR


# --- asking ---------------------------------------------------------------------------------------------------------


def ask(actor: Actor, **kwargs: Any) -> tuple[logic.ExportJob, FakeJobs, FakeStarter, FakeAuditLog]:
    jobs, starter, audit = FakeJobs(), kwargs.pop("starter", FakeStarter()), FakeAuditLog()
    job = logic.request_export(
        actor, T0, T0 + HOUR, jobs=jobs, starter=starter, audit=audit, request_id="r1", now=NOW,
        new_id=lambda: "e" * 32, **kwargs,
    )  # fmt: skip
    return job, jobs, starter, audit


def test_a_compliance_officer_starts_an_export_and_the_decision_is_audited() -> None:
    job, jobs, starter, audit = ask(OFFICER)

    assert job.status is logic.ExportStatus.RUNNING and jobs.get("acme", job.export_id) == job
    assert starter.started == [("acme", "e" * 32)]
    (entry,) = audit.entries
    assert (entry.action, entry.outcome, entry.resource) == (
        "audit:export",
        Outcome.ALLOWED,
        f"/v1/audit-exports/{'e' * 32}",
    )


def test_an_auditor_needs_a_grant_and_a_recruiter_is_refused_both_audited() -> None:
    auditor = person(Role.AUDITOR, sub="aud-1")
    assert ask(auditor, grants=FakeGrantReader(everyone=True))[0].requested_by == "user:aud-1"

    for actor, grants in ((auditor, FakeGrantReader()), (person(Role.RECRUITER), None)):
        jobs, starter, audit = FakeJobs(), FakeStarter(), FakeAuditLog()
        with pytest.raises(Forbidden):
            logic.request_export(
                actor, T0, T0 + HOUR, jobs=jobs, starter=starter, audit=audit, request_id="r", now=NOW, grants=grants
            )
        assert [e.outcome for e in audit.entries] == [Outcome.DENIED]
        assert not jobs.items and not starter.started


def test_a_worker_that_cannot_be_started_leaves_a_failed_export_not_a_running_one() -> None:
    jobs = FakeJobs()
    with pytest.raises(RuntimeError):
        logic.request_export(
            OFFICER, T0, T0 + HOUR, jobs=jobs, starter=FakeStarter(fail=True), audit=FakeAuditLog(),
            request_id="r", now=NOW,
        )  # fmt: skip
    (job,) = jobs.items.values()
    assert job.status is logic.ExportStatus.FAILED and job.error and job.error.startswith("start_failed")


# --- the export -----------------------------------------------------------------------------------------------------


def test_an_export_holds_the_ranges_entries_digests_key_and_a_manifest_of_hashes() -> None:
    chain, files = trail(4)
    aligned = logic.align_range(T0 + HOUR, T0 + 3 * HOUR, NOW)  # the middle two hours

    result = logic.write_export(
        "acme", "p/", aligned, chain=chain, files=files, export_id="x", kind=logic.ExportKind.ON_DEMAND, now=NOW
    )

    manifest = json.loads(files.objects["p/manifest.json"])
    assert (result.periods, result.entries) == (2, 6) and manifest["entries"] == 6
    assert manifest["verify"] == (
        "ats-audit verify --log entries --digests digests --public-key public-keys/k1.pem "
        "--since 2026-11-27T10:00:00Z --until 2026-11-27T12:00:00Z"
    )
    for listed in manifest["files"]:
        data = files.objects["p/" + listed["path"]]
        assert (len(data), hashlib.sha256(data).hexdigest()) == (listed["size"], listed["sha256"])
    entries = files.objects["p/entries/20261127.jsonl"].decode().splitlines()
    # Period by period, shard by shard in seq order: hour 1 is shard 0 seq 3, shard 1 seq 2, shard 0 seq 4 ...
    expected = chain.lines_by_shard[0][2:4] + chain.lines_by_shard[1][1:2]
    assert entries[:3] == expected
    assert files.objects["p/digests/2026/11/27/20261127T100000Z.json"] == files.trail[1].raw
    assert result.manifest.sha256 == hashlib.sha256(files.objects["p/manifest.json"]).hexdigest()


def test_a_range_before_the_tenants_trail_starts_at_its_first_digest_and_a_gap_fails() -> None:
    chain, files = trail(2)
    early = logic.ExportRange(T0 - 3 * HOUR, T0 + 2 * HOUR, T0 - 3 * HOUR, T0 + 2 * HOUR)
    logic.write_export(
        "acme", "a/", early, chain=chain, files=files, export_id="a", kind=logic.ExportKind.SCHEDULED, now=NOW
    )
    assert json.loads(files.objects["a/manifest.json"])["since"] == "2026-11-27T09:00:00Z"

    files.trail.pop(0)  # a digest that names a previous one, with no earlier digest in the range
    with pytest.raises(logic.DigestsMissing, match="2026-11-27T06:00:00Z"):
        logic.write_export(
            "acme", "b/", early, chain=chain, files=files, export_id="b", kind=logic.ExportKind.SCHEDULED, now=NOW
        )
    assert "b/manifest.json" not in files.objects


# --- reading --------------------------------------------------------------------------------------------------------


def test_a_read_is_audited_another_tenant_gets_404_and_a_stalled_export_shows_failed() -> None:
    job = ask(OFFICER)[0]
    jobs, audit = FakeJobs({("acme", job.export_id): job}), FakeAuditLog()
    read = lambda actor, now=NOW: logic.read_export(  # noqa: E731
        actor, job.export_id, jobs=jobs, files=FakeFiles(), links=FakeLinks(), audit=audit, request_id="g", now=now
    )

    assert read(OFFICER).job.status is logic.ExportStatus.RUNNING
    assert read(OFFICER, NOW + 2 * HOUR).job.status is logic.ExportStatus.FAILED
    with pytest.raises(NotFound):
        read(person(Role.COMPLIANCE_OFFICER, tenant="globex"))
    assert [(e.tenant, e.outcome) for e in audit.entries] == [("acme", Outcome.ALLOWED)] * 2 + [
        ("globex", Outcome.ALLOWED)
    ]


def test_a_ready_export_links_its_manifest_and_every_file_for_15_minutes() -> None:
    chain, files = trail(1)
    job = ask(OFFICER)[0]
    prefix = logic.export_prefix("acme", job.export_id)
    result = logic.write_export(
        "acme", prefix, job.range, chain=chain, files=files, export_id=job.export_id,
        kind=logic.ExportKind.ON_DEMAND, now=NOW,
    )  # fmt: skip
    ready = replace(job, status=logic.ExportStatus.READY, result=result, finished_at=NOW)
    jobs = FakeJobs({("acme", job.export_id): ready})

    view = logic.read_export(
        OFFICER, job.export_id, jobs=jobs, files=files, links=FakeLinks(), audit=FakeAuditLog(), request_id="g", now=NOW
    )

    assert view.manifest is not None and view.manifest.url.endswith("manifest.json?X-Amz-Expires=900")
    assert [f.path for f in view.files] == [
        "entries/20261127.jsonl", "digests/2026/11/27/20261127T090000Z.json", "public-keys/k1.pem",
    ]  # fmt: skip
    assert view.links_expire_at == NOW + timedelta(minutes=15) and view.verify and "--since" in view.verify


# --- the streamed writer --------------------------------------------------------------------------------------------


class RecordingS3:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        def call(**kwargs: Any) -> dict[str, Any]:
            self.calls.append((name, kwargs))
            return {"UploadId": "u1", "ETag": f"e{len(self.calls)}"}

        return call


def test_a_big_file_is_streamed_in_parts_each_with_its_sha256_and_a_small_one_is_put_whole() -> None:
    s3 = RecordingS3()
    writer = S3ObjectWriter(s3, "b", "k", "application/x-ndjson", part_size=10)  # type: ignore[arg-type]
    for _ in range(5):
        writer.write(b"0123456")
        assert len(writer._buffer) < 10  # never more than a part held
    writer.close()

    names = [name for name, _ in s3.calls]
    assert names == ["create_multipart_upload", *["upload_part"] * 4, "complete_multipart_upload"]
    parts = [kw for name, kw in s3.calls if name == "upload_part"]
    assert b"".join(p["Body"] for p in parts) == b"0123456" * 5
    assert all(p["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(p["Body"]).digest()).decode() for p in parts)

    small = RecordingS3()
    one = S3ObjectWriter(small, "b", "k", "text/plain", part_size=10)  # type: ignore[arg-type]
    one.write(b"abc")
    one.close()
    ((name, kwargs),) = small.calls
    assert (
        name == "put_object" and kwargs["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(b"abc").digest()).decode()
    )
