"""The eDiscovery export's logic with fakes: who may start and read an export, what each file holds (natives that
parse as RFC 5322, JSON lines, CSV and Concordance DAT load files, a manifest whose hashes match), content only
for those allowed it, segments and retries, the S3 writer's parts, and memory that does not grow with the export.
"""

from __future__ import annotations

import base64
import csv
import email
import gc
import hashlib
import io
import json
import os
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email import policy
from pathlib import Path
from typing import Any

import pytest

from functions.messages.dal.export_files import S3ExportFiles
from functions.messages.dal.exports import StaleExport
from functions.messages.dal.messages import Page
from functions.messages.logic.export import (
    DAT_COLUMN,
    DAT_NEWLINE,
    DAT_QUOTE,
    LOADFILE_FIELDS,
    MANIFEST,
    ExportView,
    default_prefix,
    error_of,
    fail_export,
    read_export,
    run_export_step,
    segment_files,
    start_export,
)
from functions.messages.models.export_io import (
    ExportFilters,
    ExportJob,
    ExportPhase,
    ExportStatus,
    MessageExportRequested,
)
from functions.messages.models.message import Channel, Direction, HistoryEntry, MessageState, Party, Status
from shared import clock
from shared.audit import Outcome
from shared.auth import Actor, Role
from shared.errors import BadRequest, DependencyFailure, Forbidden, NotFound
from shared.s3_objects import PART_SIZE, S3ObjectWriter
from tests.fakes import FakeAuditLog

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
OFFICER = Actor.user("acme", "officer-1", frozenset({Role.COMPLIANCE_OFFICER}))
AUDITOR = Actor.user("acme", "auditor-1", frozenset({Role.AUDITOR}))
RECRUITER = Actor.user("acme", "recruiter-1", frozenset({Role.RECRUITER}))
OTHER_OFFICER = Actor.user("globex", "officer-9", frozenset({Role.COMPLIANCE_OFFICER}))
CHANNELS = list(Channel)


@pytest.fixture(autouse=True)
def auditors_hold_grants() -> Iterator[None]:
    """Auditors here act under an active grant of every kind (the grants themselves: test_auditor_grants.py)."""
    from shared.access_grants import use_grant_reader
    from tests.fakes import FakeGrantReader

    use_grant_reader(FakeGrantReader(everyone=True))
    yield
    use_grant_reader(None)


@pytest.fixture(autouse=True)
def _clock() -> Iterator[None]:
    clock.freeze(NOW)
    yield
    clock.freeze(None)


# --- fakes ---------------------------------------------------------------------------------------------------------


class FakeExportStore:
    """The ExportStore port in memory, with the adapter's version check."""

    def __init__(self) -> None:
        self.jobs: dict[tuple[str, str], ExportJob] = {}

    def create(self, job: ExportJob) -> ExportJob:
        if (job.tenant, job.export_id) in self.jobs:
            raise StaleExport(job.export_id)
        stored = replace(job, version=1)
        self.jobs[(job.tenant, job.export_id)] = stored
        return stored

    def get(self, tenant: str, export_id: str) -> ExportJob | None:
        return self.jobs.get((tenant, export_id))

    def save(self, job: ExportJob) -> ExportJob:
        current = self.jobs.get((job.tenant, job.export_id))
        if current is None or current.version != job.version:
            raise StaleExport(job.export_id)
        stored = replace(job, version=job.version + 1)
        self.jobs[(job.tenant, job.export_id)] = stored
        return stored


class _DiskWriter:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._final, self._part = path, path.with_name(path.name + ".part")
        self._file = self._part.open("wb")

    def write(self, data: bytes) -> None:
        self._file.write(data)

    def close(self) -> None:
        self._file.close()
        self._part.replace(self._final)

    def abort(self) -> None:
        self._file.close()
        self._part.unlink(missing_ok=True)


class DiskFiles:
    """The ExportFiles port on a directory: what is written goes to disk, so memory measures the export alone."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.puts = 0

    def writer(self, path: str, content_type: str) -> _DiskWriter:
        return _DiskWriter(self.root / path)

    def put(self, path: str, data: bytes, *, sha256: bytes, content_type: str) -> None:
        assert hashlib.sha256(data).digest() == sha256, "the caller's digest is of other bytes"
        # os.path, not pathlib: pathlib interns every name it parses, which would grow with the export.
        target = os.path.join(self.root, path)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as f:
            f.write(data)
        self.puts += 1

    def drain(self) -> None:
        pass

    def lines(self, path: str) -> Iterator[bytes]:
        with (self.root / path).open("rb") as f:
            yield from f

    def read(self, path: str) -> bytes:
        return (self.root / path).read_bytes()


class _DiskBody:
    """A stored object read back as a stream, as botocore's StreamingBody is."""

    def __init__(self, path: str) -> None:
        self._file = open(path, "rb")  # noqa: SIM115  # closed by close(), as the S3 body is

    def iter_lines(self, chunk_size: int = 1024, keepends: bool = False) -> Iterator[bytes]:
        for line in self._file:
            yield line if keepends else line.rstrip(b"\r\n")

    def read(self) -> bytes:
        return self._file.read()

    def close(self) -> None:
        self._file.close()


class DiskS3:
    """The S3 calls of functions/messages/dal/export_files.py answered from a directory: the real adapter (its part
    buffer, its threads, its bounded uploads in flight) runs, and what it uploads is on disk, not in memory."""

    def __init__(self, root: str) -> None:
        self.root = root
        self._uploads: dict[str, list[str]] = {}

    def _path(self, key: str) -> str:
        path = os.path.join(self.root, key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return path

    def put_object(self, *, Key: str, Body: bytes, ChecksumSHA256: str, **_: Any) -> dict[str, Any]:  # noqa: N803
        assert ChecksumSHA256 == base64.b64encode(hashlib.sha256(Body).digest()).decode()
        with open(self._path(Key), "wb") as f:
            f.write(Body)
        return {"VersionId": "v1"}

    def create_multipart_upload(self, *, Key: str, **_: Any) -> dict[str, Any]:  # noqa: N803
        upload_id = f"upload-{len(self._uploads)}"
        self._uploads[upload_id] = []
        return {"UploadId": upload_id}

    def upload_part(self, *, Key: str, UploadId: str, PartNumber: int, Body: Any, **_: Any) -> dict[str, Any]:  # noqa: N803
        part = self._path(f"{Key}.{UploadId}.{PartNumber}")
        with open(part, "wb") as f:
            f.write(Body)
        self._uploads[UploadId].append(part)
        return {"ETag": f'"{PartNumber}"'}

    def complete_multipart_upload(self, *, Key: str, UploadId: str, **_: Any) -> dict[str, Any]:  # noqa: N803
        with open(self._path(Key), "wb") as out:
            for part in self._uploads.pop(UploadId):
                with open(part, "rb") as f:
                    while chunk := f.read(64 * 1024):
                        out.write(chunk)
                os.unlink(part)
        return {"VersionId": "v1"}

    def abort_multipart_upload(self, *, UploadId: str, **_: Any) -> dict[str, Any]:  # noqa: N803
        for part in self._uploads.pop(UploadId, []):
            os.unlink(part)
        return {}

    def get_object(self, *, Key: str, **_: Any) -> dict[str, Any]:  # noqa: N803
        return {"Body": _DiskBody(os.path.join(self.root, Key))}


class FakeOpener:
    """Sealed values are `sealed:<text>`; `broken:` ones do not decrypt."""

    def open(self, tenant: str, message_id: str, field_name: str, sealed: str) -> str:
        if sealed.startswith("broken:"):
            raise BadRequest("encrypted field does not belong to this tenant, purpose, record and field")
        return sealed.removeprefix("sealed:")


def message(i: int, *, tenant: str = "acme", **changes: Any) -> MessageState:
    at = NOW - timedelta(days=30) + timedelta(minutes=i)
    channel = CHANNELS[i % len(CHANNELS)]
    email_channel = channel is Channel.EMAIL
    state = MessageState(
        tenant=tenant,
        message_id=f"00000000-0000-5000-8000-{i:012d}",
        channel=channel,
        direction=Direction.OUTBOUND if i % 2 else Direction.INBOUND,
        provider="ses" if email_channel else "twilio",
        message_key=f"key-{i}",
        status=Status.DELIVERED,
        first_at=at,
        last_at=at + timedelta(seconds=30),
        history=[
            HistoryEntry(f"ev-{i}-sent", Status.SENT, at, "ses", "Send"),
            HistoryEntry(f"ev-{i}-delivered", Status.DELIVERED, at + timedelta(seconds=30), "ses", "Delivery"),
        ],
        rfc_message_id=f"msg-{i}@mail.acme.example" if email_channel else None,
        thread_id=f"msg-{i}@mail.acme.example" if email_channel else f"conv-{i % 50}",
        candidate_id=f"cand-{i % 100}",
        requisition_id=f"req-{i % 10}",
        sender=Party("jobs@acme.example", "Acme Recruiting") if email_channel else Party("+447700900123"),
        recipients=(Party(f"candidate{i}@example.com", "Zoë Ångström"),)
        if email_channel
        else (Party("+447700900456"),),
        sealed_subject=f"sealed:Interview {i} — next steps",
        sealed_body=f"sealed:Hello,\nyour interview {i} is confirmed.\n",
        version=3,
    )
    return replace(state, **changes)


class GeneratedSource:
    """`count` messages made as each page is asked for (nothing kept); the cursor is the next offset."""

    def __init__(
        self, count: int, *, page_size: int = 100, make: Callable[[int], MessageState] = message, fail_at: int = -1
    ) -> None:
        self.count, self.page_size, self.make, self.fail_at = count, page_size, make, fail_at
        self.pages = 0

    def page(self, job: ExportJob, cursor: str | None) -> Page:
        start = int(cursor or 0)
        if start == self.fail_at:
            raise DependencyFailure("DynamoDB throttled past the SDK's retries")
        self.pages += 1
        end = min(start + self.page_size, self.count)
        return Page([self.make(i) for i in range(start, end)], str(end) if end < self.count else None, end - start)


class FakePublisher:
    def __init__(self, fail: bool = False) -> None:
        self.events: list[Any] = []
        self.fail = fail

    def publish(self, events: Any) -> None:
        if self.fail:
            raise DependencyFailure("EventBridge is down")
        self.events.extend(events)


def new_job(store: FakeExportStore, actor: Actor = OFFICER, **filters: Any) -> ExportJob:
    return start_export(
        actor,
        ExportFilters(**filters),
        docid_prefix=None,
        store=store,
        publisher=FakePublisher(),
        audit=FakeAuditLog(),
        request_id="req-start",
    )


def run_all(
    job: ExportJob,
    store: FakeExportStore,
    files: Any,
    source: Any,
    audit: FakeAuditLog | None = None,
    *,
    time_left: Callable[[], float] = lambda: float("inf"),
    steps: int = 100,
) -> ExportJob:
    for _ in range(steps):
        job = run_export_step(
            job.tenant,
            job.export_id,
            store=store,
            files=files,
            source=source,
            audit=audit or FakeAuditLog(),
            time_left=time_left,
            opener=FakeOpener(),
        )
        if job.status.finished:
            return job
    raise AssertionError("the export did not finish")


def manifest_of(files: DiskFiles) -> dict[str, Any]:
    manifest: dict[str, Any] = json.loads(files.read(MANIFEST))
    return manifest


def csv_rows(files: DiskFiles, path: str = "loadfile.csv") -> list[dict[str, str]]:
    text = files.read(path).decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(text[1:], newline="")))


def dat_rows(files: DiskFiles, path: str = "loadfile.dat") -> list[list[str]]:
    text = files.read(path).decode("utf-8")
    assert text.startswith("\ufeff") and text.endswith("\r\n")
    records = text[1:].split("\r\n")[:-1]
    out = []
    for record in records:
        assert record.startswith(DAT_QUOTE) and record.endswith(DAT_QUOTE)
        out.append(record[1:-1].split(DAT_QUOTE + DAT_COLUMN + DAT_QUOTE))
    return out


# --- starting an export --------------------------------------------------------------------------------------------


def test_a_compliance_officer_starts_an_export_with_content_and_both_decisions_are_audited() -> None:
    store, publisher, audit = FakeExportStore(), FakePublisher(), FakeAuditLog()

    job = start_export(
        OFFICER,
        ExportFilters(candidate_id="cand-7"),
        docid_prefix="MATTER1",
        store=store,
        publisher=publisher,
        audit=audit,
        request_id="req-1",
        source_ip="203.0.113.7",
    )

    assert store.get("acme", job.export_id) == job
    assert job.status is ExportStatus.QUEUED and job.content_included and job.docid_prefix == "MATTER1"
    assert job.requested_by == "user:officer-1" and job.requested_at == NOW
    (event,) = publisher.events
    assert isinstance(event, MessageExportRequested)
    assert (event.tenant, event.export_id, event.correlation_id) == ("acme", job.export_id, "req-1")
    assert "cand-7" not in event.detail()  # filters stay in the job item
    assert [(e.action, e.resource, e.outcome) for e in audit.entries] == [
        ("messages:export", "/v1/message-exports", Outcome.ALLOWED),
        ("messages:content:read", "/v1/message-exports", Outcome.ALLOWED),
    ]


def test_an_auditor_exports_metadata_only_and_no_content_read_is_audited() -> None:
    store, audit = FakeExportStore(), FakeAuditLog()

    job = start_export(
        AUDITOR, ExportFilters(), docid_prefix=None, store=store, publisher=FakePublisher(), audit=audit, request_id="r"
    )

    assert not job.content_included and job.docid_prefix == "ACME"
    assert [e.action for e in audit.entries] == ["messages:export"]


def test_a_recruiter_may_not_export_and_the_refusal_is_audited() -> None:
    store, publisher, audit = FakeExportStore(), FakePublisher(), FakeAuditLog()

    with pytest.raises(Forbidden):
        start_export(
            RECRUITER, ExportFilters(), docid_prefix=None, store=store, publisher=publisher, audit=audit, request_id="r"
        )

    assert store.jobs == {} and publisher.events == []
    assert [(e.action, e.outcome) for e in audit.entries] == [("messages:export", Outcome.DENIED)]


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ({"since": NOW, "until": NOW - timedelta(days=1)}, "since must not be after until"),
        ({"since": NOW + timedelta(days=1)}, "since is in the future"),
        ({"text": "!! ??"}, "q has no searchable word"),
    ],
)
def test_filters_that_cannot_select_anything_are_refused(filters: dict[str, Any], message: str) -> None:
    store = FakeExportStore()

    with pytest.raises(BadRequest, match=message):
        new_job(store, **filters)

    assert store.jobs == {}


def test_an_export_whose_event_is_not_published_is_marked_failed() -> None:
    store = FakeExportStore()

    with pytest.raises(DependencyFailure):
        start_export(
            OFFICER,
            ExportFilters(),
            docid_prefix=None,
            store=store,
            publisher=FakePublisher(fail=True),
            audit=FakeAuditLog(),
            request_id="r",
        )

    (job,) = store.jobs.values()
    assert job.status is ExportStatus.FAILED and job.error == "the export did not start"


@pytest.mark.parametrize(
    ("tenant", "prefix"), [("acme", "ACME"), ("acme-eu-west", "ACMEEUWEST"), ("42-corp", "M42CORP")]
)
def test_the_default_document_prefix_comes_from_the_tenant(tenant: str, prefix: str) -> None:
    assert default_prefix(tenant) == prefix


# --- what the export writes ----------------------------------------------------------------------------------------


def test_every_document_is_written_once_and_the_manifest_hashes_every_file(tmp_path: Path) -> None:
    store, files, audit = FakeExportStore(), DiskFiles(tmp_path), FakeAuditLog()
    job = new_job(store)

    done = run_all(job, store, files, GeneratedSource(250), audit)

    assert done.status is ExportStatus.SUCCEEDED and done.phase is ExportPhase.DONE
    assert done.counts.documents == 250 and done.counts.emails == 50 and done.counts.others == 200
    assert done.counts.included == 250 and files.puts == 50
    manifest = manifest_of(files)
    assert manifest["export_id"] == job.export_id and manifest["requested_by"] == "user:officer-1"
    assert manifest["counts"]["documents"] == 250 and manifest["order"] == "oldest_first"
    listed = {f["path"]: f for f in manifest["files"]}
    assert len(listed) == 50 + 3
    on_disk = {str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()} - {MANIFEST}
    assert set(listed) == on_disk
    for path, entry in listed.items():
        data = files.read(path)
        assert (len(data), hashlib.sha256(data).hexdigest()) == (entry["size"], entry["sha256"]), path
    assert done.manifest is not None
    assert done.manifest.sha256 == hashlib.sha256(files.read(MANIFEST)).hexdigest()
    docids = [d["docid"] for d in manifest["documents"]]
    assert docids == [f"ACME-{n:08d}" for n in range(1, 251)]
    assert [(e.action, e.outcome) for e in audit.entries] == [("messages.export", Outcome.ALLOWED)]


def test_an_email_is_a_native_that_parses_with_its_headers_and_content(tmp_path: Path) -> None:
    store, files = FakeExportStore(), DiskFiles(tmp_path)
    job = new_job(store)
    run_all(job, store, files, GeneratedSource(10))

    raw = files.read("native/ACME-00000001.eml")  # message 0 is an email
    parsed = email.message_from_bytes(raw, policy=policy.default)

    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
    assert parsed["Message-ID"] == "<msg-0@mail.acme.example>"
    assert parsed["Subject"] == "Interview 0 — next steps"
    subject_line = next(line for line in raw.split(b"\r\n") if line.startswith(b"Subject:"))
    assert b"=?utf-8?" in subject_line  # encoded words: the message stays ASCII
    assert raw.isascii()
    assert parsed["From"].addresses[0].addr_spec == "jobs@acme.example"
    assert parsed["To"].addresses[0].display_name == "Zoë Ångström"
    assert parsed["Date"].datetime == NOW - timedelta(days=30)
    assert parsed["X-ATS-Message-Id"] == "00000000-0000-5000-8000-000000000000"
    assert parsed["X-ATS-Document-Id"] == "ACME-00000001"
    assert parsed["X-ATS-Content"] == "included"
    assert parsed.get_content_type() == "text/plain"
    assert parsed.get_content().replace("\r\n", "\n") == "Hello,\nyour interview 0 is confirmed.\n"


def test_a_reply_keeps_its_thread_headers(tmp_path: Path) -> None:
    store, files = FakeExportStore(), DiskFiles(tmp_path)
    reply = message(0, in_reply_to="msg-root@mail.acme.example", references=("msg-root@mail.acme.example", "<x@y>"))
    run_all(new_job(store), store, files, GeneratedSource(1, make=lambda i: reply))

    parsed = email.message_from_bytes(files.read("native/ACME-00000001.eml"), policy=policy.default)

    assert parsed["In-Reply-To"] == "<msg-root@mail.acme.example>"
    assert parsed["References"] == "<msg-root@mail.acme.example> <x@y>"


def test_an_export_without_content_permission_withholds_subjects_and_bodies(tmp_path: Path) -> None:
    store, files = FakeExportStore(), DiskFiles(tmp_path)
    done = run_all(new_job(store, AUDITOR), store, files, GeneratedSource(10))

    native = email.message_from_bytes(files.read("native/ACME-00000001.eml"), policy=policy.default)
    line = json.loads(files.read("messages.jsonl").splitlines()[0])
    rows = csv_rows(files)

    assert done.counts.withheld == 10 and done.counts.included == 0
    assert native["Subject"] is None and native["X-ATS-Content"] == "withheld"
    assert "withheld" in native.get_content() and "interview" not in native.get_content()
    assert line["content"] is None and line["content_status"] == "withheld"
    assert {r["SUBJECT"] for r in rows} == {""} and {r["CONTENT"] for r in rows} == {"withheld"}
    assert b"Interview" not in b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())


def test_content_not_kept_redacted_or_unreadable_is_said_so(tmp_path: Path) -> None:
    store, files = FakeExportStore(), DiskFiles(tmp_path)
    variants: list[dict[str, Any]] = [
        {"sealed_subject": None, "sealed_body": None},
        {"sealed_subject": None, "sealed_body": None, "redacted_at": NOW - timedelta(days=1)},
        {"sealed_body": "broken:xx"},
    ]

    def make(i: int) -> MessageState:
        return message(i * len(CHANNELS), **variants[i])  # every one an email

    done = run_all(new_job(store), store, files, GeneratedSource(3, make=make))

    natives = [
        email.message_from_bytes(files.read(f"native/ACME-{n:08d}.eml"), policy=policy.default) for n in (1, 2, 3)
    ]
    assert [n["X-ATS-Content"] for n in natives] == ["not_kept", "redacted", "unreadable"]
    assert "metadata only" in natives[0].get_content()
    assert "redacted on 2026-11-26T09:00:00.000Z" in natives[1].get_content()
    assert "could not be decrypted" in natives[2].get_content() and natives[2]["Subject"] is None
    assert (done.counts.not_kept, done.counts.redacted, done.counts.unreadable) == (1, 1, 1)


def test_other_channels_are_json_lines_with_history_and_their_loadfile_rows_point_at_them(tmp_path: Path) -> None:
    store, files = FakeExportStore(), DiskFiles(tmp_path)
    run_all(new_job(store), store, files, GeneratedSource(10))

    lines = files.read("messages.jsonl").split(b"\n")
    rows = {r["DOCID"]: r for r in csv_rows(files)}

    assert lines[-1] == b"" and len(lines) - 1 == 8  # 10 messages, 2 of them emails
    first = json.loads(lines[0])
    assert first["docid"] == "ACME-00000002" and first["channel"] == "sms"
    assert first["content"] == {
        "subject": "Interview 1 — next steps",
        "body": "Hello,\nyour interview 1 is confirmed.\n",
    }
    assert [h["status"] for h in first["history"]] == ["sent", "delivered"]
    row = rows["ACME-00000002"]
    assert (row["NATIVEPATH"], row["JSONLINE"]) == ("messages.jsonl", "1")
    assert row["SHA256"] == hashlib.sha256(lines[0]).hexdigest() and row["FILESIZE"] == str(len(lines[0]))
    assert rows["ACME-00000001"]["NATIVEPATH"] == "native/ACME-00000001.eml" and rows["ACME-00000001"]["JSONLINE"] == ""


def test_the_load_files_hold_one_row_per_document_with_the_same_fields(tmp_path: Path) -> None:
    store, files = FakeExportStore(), DiskFiles(tmp_path)
    run_all(new_job(store), store, files, GeneratedSource(20))

    rows = csv_rows(files)
    dat = dat_rows(files)

    assert list(rows[0]) == list(LOADFILE_FIELDS) and dat[0] == list(LOADFILE_FIELDS)
    assert len(rows) == len(dat) - 1 == 20
    first = dict(zip(LOADFILE_FIELDS, dat[1], strict=True))
    assert first["DOCID"] == "ACME-00000001" and first["DATESENT"] == "20261028" and first["TIMESENT"] == "09:00:00"
    assert first["FROM"] == "Acme Recruiting <jobs@acme.example>"
    assert first["SUBJECT"] == "Interview 0 — next steps"
    assert [r[LOADFILE_FIELDS.index("DOCID")] for r in dat[1:]] == [r["DOCID"] for r in rows]


def test_the_dat_file_keeps_its_delimiters_out_of_the_values(tmp_path: Path) -> None:
    store, files = FakeExportStore(), DiskFiles(tmp_path)
    tricky = message(0, sealed_subject=f"sealed:Þórunn þ line{DAT_NEWLINE}\x14two\r\nthree")
    run_all(new_job(store), store, files, GeneratedSource(1, make=lambda i: tricky))

    (row,) = dat_rows(files)[1:]
    subject = row[LOADFILE_FIELDS.index("SUBJECT")]

    assert len(row) == len(LOADFILE_FIELDS)
    assert subject == f"Þórunn th line(R) two{DAT_NEWLINE}three"
    assert csv_rows(files)[0]["SUBJECT"] == f"Þórunn þ line{DAT_NEWLINE}\x14two\r\nthree"  # the CSV quotes it exactly


def test_csv_values_that_a_spreadsheet_would_run_are_defused(tmp_path: Path) -> None:
    store, files = FakeExportStore(), DiskFiles(tmp_path)
    formula = message(0, sealed_subject='sealed:=HYPERLINK("http://evil.example","x")')
    run_all(new_job(store), store, files, GeneratedSource(1, make=lambda i: formula))

    assert csv_rows(files)[0]["SUBJECT"] == '\'=HYPERLINK("http://evil.example","x")'
    native = email.message_from_bytes(files.read("native/ACME-00000001.eml"), policy=policy.default)
    assert native["Subject"] == '=HYPERLINK("http://evil.example","x")'  # the native keeps it exactly


def test_an_unwritable_address_is_kept_as_text(tmp_path: Path) -> None:
    store, files = FakeExportStore(), DiskFiles(tmp_path)
    odd = message(0, recipients=(Party("jörg@exämple.com", "Jörg"), Party("ok@example.com")))
    run_all(new_job(store), store, files, GeneratedSource(1, make=lambda i: odd))

    parsed = email.message_from_bytes(files.read("native/ACME-00000001.eml"), policy=policy.default)

    assert [a.addr_spec for a in parsed["To"].addresses] == ["ok@example.com"]
    assert parsed["X-ATS-Unaddressable-To"] == "Jörg <jörg@exämple.com>"


def test_an_export_longer_than_one_step_is_written_in_segments_with_continuous_docids(tmp_path: Path) -> None:
    store, files = FakeExportStore(), DiskFiles(tmp_path)
    source = GeneratedSource(95, page_size=10)
    budget = iter([1000.0, 0.0] * 100)  # each step reads two pages, then its time runs short

    done = run_all(new_job(store), store, files, source, time_left=lambda: next(budget))

    assert [s.documents for s in done.segments] == [20, 20, 20, 20, 15]
    assert segment_files(1) == ("messages.jsonl", "loadfile.csv", "loadfile.dat")
    assert segment_files(2) == ("messages-0002.jsonl", "loadfile-0002.csv", "loadfile-0002.dat")
    manifest = manifest_of(files)
    assert [d["docid"] for d in manifest["documents"]] == [f"ACME-{n:08d}" for n in range(1, 96)]
    assert [s["first_docid"] for s in manifest["segments"]] == [f"ACME-{n:08d}" for n in (1, 21, 41, 61, 81)]
    for entry in manifest["files"]:
        data = files.read(entry["path"])
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
    assert sum(len(csv_rows(files, segment_files(n)[1])) for n in range(1, 6)) == 95


def test_a_failed_step_leaves_the_checkpoint_and_its_retry_writes_the_segment_again(tmp_path: Path) -> None:
    store, files = FakeExportStore(), DiskFiles(tmp_path)
    job = new_job(store)
    failing = GeneratedSource(30, page_size=10, fail_at=20)

    with pytest.raises(DependencyFailure):
        run_export_step(
            job.tenant,
            job.export_id,
            store=store,
            files=files,
            source=failing,
            audit=FakeAuditLog(),
            time_left=lambda: float("inf"),
            opener=FakeOpener(),
        )

    stored = store.get("acme", job.export_id)
    assert stored is not None and stored.status is ExportStatus.RUNNING
    assert (stored.cursor, stored.next_doc, stored.segments) == (None, 1, ())
    assert not (tmp_path / "loadfile.csv").exists()  # the unfinished files were abandoned

    done = run_all(stored, store, files, GeneratedSource(30, page_size=10))

    assert done.counts.documents == 30 and len(manifest_of(files)["documents"]) == 30


def test_a_step_for_a_finished_export_changes_nothing(tmp_path: Path) -> None:
    store, files = FakeExportStore(), DiskFiles(tmp_path)
    done = run_all(new_job(store), store, files, GeneratedSource(5))
    source = GeneratedSource(5)

    again = run_all(done, store, files, source)

    assert again == done and source.pages == 0


def test_the_workflow_catch_marks_the_export_failed_once(tmp_path: Path) -> None:
    store, audit = FakeExportStore(), FakeAuditLog()
    job = new_job(store)

    failed = fail_export("acme", job.export_id, "States.Timeout", store=store, audit=audit)
    again = fail_export("acme", job.export_id, "States.Timeout", store=store, audit=audit)

    assert failed is not None and failed.status is ExportStatus.FAILED and failed.error == "States.Timeout"
    assert again == failed
    assert [(e.action, e.outcome, e.reason) for e in audit.entries] == [
        ("messages.export", Outcome.FAILED, "States.Timeout")
    ]


def test_a_missing_export_cannot_be_stepped(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        run_export_step(
            "acme",
            "11111111-2222-4333-8444-555555555555",
            store=FakeExportStore(),
            files=DiskFiles(tmp_path),
            source=GeneratedSource(1),
            audit=FakeAuditLog(),
            time_left=lambda: 1000.0,
        )


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        ({"Error": "States.Timeout", "Cause": "Task timed out"}, "States.Timeout: Task timed out"),
        (
            {"Error": "DependencyFailure", "Cause": json.dumps({"errorMessage": "throttled\nat line 3"})},
            "DependencyFailure: throttled",
        ),
        ({"Error": "Lambda.Unknown"}, "Lambda.Unknown"),
        ("not an object", "the export failed"),
    ],
)
def test_a_workflow_error_becomes_a_short_reason(error: Any, reason: str) -> None:
    assert error_of(error) == reason


# --- reading an export ---------------------------------------------------------------------------------------------


class FakeLinks:
    def download(self, key: str, seconds: int) -> str:
        return f"https://exports.example/{key}?expires={seconds}"

    def listing(self, prefix: str, seconds: int) -> str:
        return f"https://exports.example/?prefix={prefix}&expires={seconds}"


def read(actor: Actor, store: FakeExportStore, export_id: str, audit: FakeAuditLog) -> ExportView:
    return read_export(actor, export_id, store=store, audit=audit, request_id="req-read", links=FakeLinks())


def test_a_running_export_is_read_without_links() -> None:
    store, audit = FakeExportStore(), FakeAuditLog()
    job = new_job(store)

    view = read(AUDITOR, store, job.export_id, audit)

    assert view.job == job and view.manifest_url is None and view.listing_url is None
    assert [(e.action, e.resource) for e in audit.entries] == [
        ("messages:export", f"/v1/message-exports/{job.export_id}")
    ]


def test_a_finished_export_is_read_with_links_for_15_minutes_each_audited(tmp_path: Path) -> None:
    store, audit = FakeExportStore(), FakeAuditLog()
    done = run_all(new_job(store), store, DiskFiles(tmp_path), GeneratedSource(3))

    view = read(OFFICER, store, done.export_id, audit)

    prefix = f"messages/exports/acme/{done.export_id}/"
    assert view.manifest_url == f"https://exports.example/{prefix}manifest.json?expires=900"
    assert view.listing_url == f"https://exports.example/?prefix={prefix}&expires=900"
    assert view.links_expire_at == NOW + timedelta(minutes=15)
    resource = f"/v1/message-exports/{done.export_id}"
    assert [e.resource for e in audit.entries] == [resource, f"{resource}/manifest.json", f"{resource}/listing"]
    assert {e.outcome for e in audit.entries} == {Outcome.ALLOWED}


@pytest.mark.parametrize("export_id", ["missing", "11111111-2222-4333-8444-555555555555", "a#b"])
def test_another_tenants_or_a_missing_export_is_a_404(export_id: str) -> None:
    store = FakeExportStore()
    job = new_job(store)

    with pytest.raises(NotFound):
        read(OTHER_OFFICER, store, job.export_id, FakeAuditLog())
    with pytest.raises(NotFound):
        read(OFFICER, store, export_id, FakeAuditLog())


def test_reading_an_export_needs_the_export_permission() -> None:
    store, audit = FakeExportStore(), FakeAuditLog()
    job = new_job(store)

    with pytest.raises(Forbidden):
        read(RECRUITER, store, job.export_id, audit)

    assert [(e.action, e.outcome) for e in audit.entries] == [("messages:export", Outcome.DENIED)]


# --- the S3 writer -------------------------------------------------------------------------------------------------


class RecordingS3:
    """The few S3 calls the writer makes, recorded (sizes and checksums, not bodies)."""

    def __init__(self, fail_part: int = 0) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.fail_part = fail_part

    def _record(self, name: str, kwargs: dict[str, Any]) -> None:
        body = kwargs.pop("Body", None)
        if body is not None:
            kwargs["size"] = len(body)
            assert kwargs["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(body).digest()).decode()
        self.calls.append((name, kwargs))

    def create_multipart_upload(self, **kwargs: Any) -> dict[str, Any]:
        self._record("create", kwargs)
        return {"UploadId": "up-1"}

    def upload_part(self, **kwargs: Any) -> dict[str, Any]:
        if kwargs["PartNumber"] == self.fail_part:
            raise DependencyFailure("S3 said no")
        self._record("part", kwargs)
        return {"ETag": f'"etag-{kwargs["PartNumber"]}"'}

    def complete_multipart_upload(self, **kwargs: Any) -> dict[str, Any]:
        self._record("complete", kwargs)
        return {}

    def abort_multipart_upload(self, **kwargs: Any) -> dict[str, Any]:
        self._record("abort", kwargs)
        return {}

    def put_object(self, **kwargs: Any) -> dict[str, Any]:
        self._record("put", kwargs)
        return {}


def test_parts_are_8_mib_and_the_last_one_smaller() -> None:
    s3 = RecordingS3()
    writer = S3ObjectWriter(s3, "bucket", "k/loadfile.csv", "text/csv")  # type: ignore[arg-type]
    row = b"x" * 1000 + b"\r\n"

    for _ in range((2 * PART_SIZE) // len(row) + 10):
        writer.write(row)
    writer.close()

    assert PART_SIZE == 8 * 1024 * 1024
    names = [name for name, _ in s3.calls]
    assert names == ["create", "part", "part", "part", "complete"]
    sizes = [kw["size"] for name, kw in s3.calls if name == "part"]
    assert sizes[:2] == [PART_SIZE, PART_SIZE] and 0 < sizes[2] < PART_SIZE
    assert s3.calls[0][1]["ChecksumAlgorithm"] == "SHA256"
    completed = s3.calls[-1][1]["MultipartUpload"]["Parts"]
    assert [p["PartNumber"] for p in completed] == [1, 2, 3] and all(p["ChecksumSHA256"] for p in completed)


def test_a_file_smaller_than_a_part_is_one_put_with_its_checksum() -> None:
    s3 = RecordingS3()
    writer = S3ObjectWriter(s3, "bucket", "k/messages.jsonl", "application/x-ndjson")  # type: ignore[arg-type]

    writer.write(b"{}\n")
    writer.close()

    ((name, kwargs),) = s3.calls
    assert name == "put" and kwargs["size"] == 3 and kwargs["ChecksumAlgorithm"] == "SHA256"


def test_a_failed_part_aborts_the_upload() -> None:
    s3 = RecordingS3(fail_part=2)
    writer = S3ObjectWriter(s3, "bucket", "k/loadfile.csv", "text/csv", part_size=10)  # type: ignore[arg-type]

    with pytest.raises(DependencyFailure):
        writer.write(b"0123456789" * 3)
    writer.abort()

    assert [name for name, _ in s3.calls] == ["create", "part", "abort"]


def test_natives_are_put_with_a_bounded_number_in_flight() -> None:
    s3 = RecordingS3()
    files = S3ExportFiles("bucket", "acme", "11111111-2222-4333-8444-555555555555", s3, parallel=3)  # type: ignore[arg-type]

    for n in range(20):
        data = f"native {n}".encode()
        files.put(f"native/D-{n}.eml", data, sha256=hashlib.sha256(data).digest(), content_type="message/rfc822")
        assert len(files._in_flight) <= 6
    files.close()

    keys = sorted(kw["Key"] for name, kw in s3.calls if name == "put")
    assert len(keys) == 20 and keys[0].startswith("messages/exports/acme/11111111-2222-4333-8444-555555555555/")
    with pytest.raises(ValueError):
        files.key("../other-tenant/x")


# --- memory --------------------------------------------------------------------------------------------------------


def _one_in_twenty_an_email(i: int) -> MessageState:
    # Emails are the costly documents to render (the email package); one in twenty keeps the test quick while
    # every kind of document still goes through.
    return message(i if i % 20 == 0 or i % len(CHANNELS) else i + 1)


def _peak_growth(count: int, root: Path) -> int:
    """The peak of memory allocated while `count` messages are exported through the real S3 adapter (on a
    disk-backed client, with 64 KiB parts so that the part buffer is exercised at this size)."""
    store = FakeExportStore()
    job = new_job(store)
    files = S3ExportFiles("bucket", "acme", job.export_id, DiskS3(str(root)), part_size=64 * 1024, parallel=4)  # type: ignore[arg-type]
    source = GeneratedSource(count, make=_one_in_twenty_an_email)
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        done = run_all(job, store, files, source)
        files.close()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert done.counts.documents == count
    manifest = json.loads((root / f"messages/exports/acme/{job.export_id}/{MANIFEST}").read_bytes())
    assert len(manifest["documents"]) == count
    return peak - base


def test_memory_does_not_grow_with_the_number_of_messages(tmp_path: Path) -> None:
    small = _peak_growth(1_000, tmp_path / "small")
    large = _peak_growth(10_000, tmp_path / "large")

    # Ten times the messages, about the same peak: one page of messages, a part buffer per file and the natives
    # in flight, nothing per message kept. (Keeping 9,000 more documents' rows would take megabytes.)
    print(f"peak: {small / 2**20:.2f} MiB for 1,000 messages, {large / 2**20:.2f} MiB for 10,000")
    assert large - small < 512 * 1024, (small, large)
    assert large < 4 * 1024 * 1024, large


# --- the job item --------------------------------------------------------------------------------------------------


class ReversingCipher:
    """Stands in for FieldCipher: what it seals is bound to tenant, purpose, record and field."""

    def encrypt(self, tenant: str, purpose: str, plaintext: str, *, record: str, field: str) -> str:
        return f"enc:{tenant}:{purpose}:{record}:{field}:{plaintext[::-1]}"

    def decrypt(self, tenant: str, purpose: str, value: str, *, record: str, field: str) -> str:
        prefix = f"enc:{tenant}:{purpose}:{record}:{field}:"
        assert value.startswith(prefix)
        return value.removeprefix(prefix)[::-1]


def test_a_job_item_round_trips_with_its_words_sealed_and_stays_out_of_the_message_indexes(tmp_path: Path) -> None:
    from functions.messages.dal.exports import from_item, to_item
    from functions.messages.dal.items import INDEXES

    store = FakeExportStore()
    job = run_all(new_job(store, text="onboarding Zoë"), store, DiskFiles(tmp_path), GeneratedSource(3))

    item = to_item(job, ReversingCipher())

    assert item["pk"] == {"S": f"T#acme#EXPORT#{job.export_id}"} and item["sk"] == {"S": "EXPORT"}
    assert "onboarding" not in json.dumps(item, ensure_ascii=False)
    assert not ({attr for pair in INDEXES.values() for attr in pair} - {"tenant"}) & set(item)
    assert from_item(item, ReversingCipher()) == job
    with pytest.raises(ValueError, match="sealed"):
        from_item(item)
    with pytest.raises(ValueError, match="sealed"):
        to_item(job)


def test_the_sample_event_names_the_job_the_first_step_works_on() -> None:
    from functions.messages.handlers.export_worker import SAMPLE_EVENT, job_ref
    from tests.conftest import sample_event

    assert job_ref(sample_event(SAMPLE_EVENT)) == ("acme", "4f8d2c6a-1b3e-4a7f-9c05-e2d8b6a1f374")
