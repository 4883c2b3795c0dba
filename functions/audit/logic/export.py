"""Auditor exports of the audit trail (issue 13, section 8; docs/audit-exports.md).

An export covers whole digest periods: the range an auditor asks for is widened to the hours around it, and the
export holds exactly the entries the digests of those hours cover (the single writer's chain sections, shard by
shard in seq order: the line format `ats-audit verify` reads, shared/audit_proof.py), the digests themselves
with their exact bytes, the public key(s) that signed them and a manifest with every file's size and SHA-256.
The auditor verifies it with `ats-audit verify --since <start> --until <end>`: the first digest continues one the
export does not hold, and from there on every entry, hash, root and digest link is checked.

- `request_export` (POST /v1/audit-exports): authorized (`audit:export`, audited by `authorize`), the range
  checked and aligned, the request inserted, the worker started; the export runs asynchronously.
- `run_export` (the worker): writes the files under `audit/exports/<tenant>/<export id>/` and records the
  outcome. `run_scheduled_exports` (the daily schedule): the previous UTC day of every tenant, under
  `audit/exports/<tenant>/scheduled/<date>/`.
- `read_export` (GET /v1/audit-exports/{export_id}): authorized and audited at every read; another tenant's
  export is a 404; once ready, presigned links (15 minutes) to the manifest and every file.

Every state of an export is a new item (requested, then ready or failed): the audit table only ever takes inserts,
and its stream alarms on anything else.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from functions.audit.models.export import (
    PERIOD,
    ExportJob,
    ExportKind,
    ExportRange,
    ExportResult,
    ExportStatus,
    FileInfo,
)
from shared.audit import AuditEntry, AuditLog, Outcome
from shared.audit_proof import DigestFile, format_period_bound, parse_instant
from shared.auth import Actor
from shared.errors import BadRequest
from shared.observability import logger
from shared.permissions import Permission, authorize, ensure_tenant

if TYPE_CHECKING:
    from shared.access_grants import GrantReader

MAX_RANGE = timedelta(days=31)  # at most 744 periods: one worker invocation, one page of links
# The hourly digest job runs a few minutes after each hour (infra/constructs/audit.py, minute 5): a period is
# exportable once it ended this long ago, so an export never waits for a digest not written yet.
DIGEST_LAG = timedelta(minutes=15)
LINK_SECONDS = 15 * 60
# A run and Lambda's two retries of it (15 minutes each at most, 1 and 2 minutes apart) are over by then.
STALE_AFTER = timedelta(hours=1)
MANIFEST = "manifest.json"
ENTRIES_DIR = "entries"
DIGESTS_DIR = "digests"
KEYS_DIR = "public-keys"
WORKER_ACTOR = "system:audit-export"  # the worker, in the entries it appends
EXPORT_ID_PATTERN = r"^[0-9a-f]{32}$"
MANIFEST_VERSION = 1


@dataclass(frozen=True)
class ExportLink:
    path: str
    size: int
    sha256: str
    url: str


@dataclass(frozen=True)
class ExportView:
    job: ExportJob
    links_expire_at: datetime | None = None
    manifest: ExportLink | None = None
    files: list[ExportLink] = field(default_factory=list)
    verify: str | None = None  # the manifest's `ats-audit verify` command


class DigestsMissing(Exception):
    """The digests of the range are not all written: the export would not verify."""


# --- ports --------------------------------------------------------------------------------------------------------


class ExportJobs(Protocol):
    def insert_request(self, job: ExportJob) -> None: ...

    def insert_outcome(self, job: ExportJob) -> None: ...

    def get(self, tenant: str, export_id: str) -> ExportJob | None: ...


class ExportStarter(Protocol):
    def start(self, tenant: str, export_id: str) -> None: ...


class ChainLines(Protocol):
    def lines(self, tenant: str, shard: int, *, after_seq: int, up_to_seq: int | None = None) -> Iterator[str]: ...


class FileSink(Protocol):
    def write(self, data: bytes) -> None: ...

    def close(self) -> None: ...

    def abort(self) -> None: ...


class ExportFiles(Protocol):
    """The trail's digests and keys in the bucket, and one export's files (paths relative to its prefix)."""

    def digests(self, tenant: str, start: datetime, end: datetime) -> list[DigestFile]: ...

    def public_key(self, key_id: str) -> tuple[str, bytes]:
        """(file name, PEM bytes) of the published public key of `key_id`."""
        ...

    def writer(self, prefix: str, path: str, content_type: str) -> FileSink: ...

    def put(self, prefix: str, path: str, data: bytes, content_type: str) -> None: ...

    def exists(self, prefix: str, path: str) -> bool: ...

    def read(self, prefix: str, path: str) -> bytes: ...


class ExportLinks(Protocol):
    def download(self, key: str, seconds: int) -> str: ...


# --- keys -----------------------------------------------------------------------------------------------------------


def export_prefix(tenant: str, export_id: str) -> str:
    """`audit/exports/<tenant>/<export id>/`: an on-demand export's files."""
    return f"audit/exports/{tenant}/{export_id}/"


def scheduled_prefix(tenant: str, day: date) -> str:
    """`audit/exports/<tenant>/scheduled/<yyyy-mm-dd>/`: a scheduled export's files."""
    return f"audit/exports/{tenant}/scheduled/{day.isoformat()}/"


# --- the range ------------------------------------------------------------------------------------------------------


def _floor(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _ceil(moment: datetime) -> datetime:
    floor = _floor(moment)
    return floor if floor == moment else floor + PERIOD


def align_range(since: datetime, until: datetime, now: datetime) -> ExportRange:
    """[since, until) widened to whole digest periods; BadRequest for a range that is empty, reversed, longer than
    31 days, or reaching a period whose digest is not written yet (the future included)."""
    if since.tzinfo is None or until.tzinfo is None:
        raise BadRequest("since and until need a time zone (e.g. 2026-11-27T09:00:00Z)")
    if until <= since:
        raise BadRequest("until must be after since")
    if until > now:
        raise BadRequest("until is in the future: an export covers what has been recorded")
    start, end = _floor(since), _ceil(until)
    if end - start > MAX_RANGE:
        raise BadRequest(f"the range covers more than {MAX_RANGE.days} days (aligned to whole hours): ask for less")
    ready_until = _floor(now - DIGEST_LAG)
    if end > ready_until:
        raise BadRequest(
            f"the hour ending at {format_period_bound(end)} is digested a few minutes after it ends: ask for a "
            f"range ending by {format_period_bound(ready_until)}, or ask again after "
            f"{format_period_bound(end + DIGEST_LAG)}"
        )
    return ExportRange(since, until, start, end)


# --- use cases: the API -------------------------------------------------------------------------------------------


def request_export(
    actor: Actor,
    since: datetime,
    until: datetime,
    *,
    jobs: ExportJobs,
    starter: ExportStarter,
    audit: AuditLog,
    request_id: str,
    now: datetime,
    source_ip: str | None = None,
    new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
    grants: GrantReader | None = None,
) -> ExportJob:
    """Authorize (audited), check and align the range, record the request and start the worker."""
    export_id = new_id()
    authorize(
        actor,
        Permission.EXPORT_AUDIT_TRAIL,
        resource=f"/v1/audit-exports/{export_id}",
        request_id=request_id,
        audit=audit,
        source_ip=source_ip,
        grants=grants,
    )
    aligned = align_range(since, until, now)
    job = ExportJob(
        tenant=actor.tenant,
        export_id=export_id,
        range=aligned,
        requested_by=actor.label,
        requested_at=now,
    )
    jobs.insert_request(job)
    try:
        starter.start(job.tenant, job.export_id)
    except Exception:
        jobs.insert_outcome(_finish(job, now, error="start_failed: the export worker could not be started"))
        raise
    return job


def read_export(
    actor: Actor,
    export_id: str,
    *,
    jobs: ExportJobs,
    files: ExportFiles,
    links: ExportLinks,
    audit: AuditLog,
    request_id: str,
    now: datetime,
    source_ip: str | None = None,
    grants: GrantReader | None = None,
) -> ExportView:
    """The export's status and counts; once ready, presigned links (15 minutes) to the manifest and every file it
    lists. Every read is authorized and audited; another tenant's export (or none) is a 404."""
    valid = re.fullmatch(EXPORT_ID_PATTERN, export_id) is not None
    authorize(
        actor,
        Permission.EXPORT_AUDIT_TRAIL,
        resource=f"/v1/audit-exports/{export_id if valid else '(not an export id)'}",
        request_id=request_id,
        audit=audit,
        source_ip=source_ip,
        grants=grants,
    )
    job = jobs.get(actor.tenant, export_id) if valid else None
    ensure_tenant(actor, job.tenant if job else None, "audit export")
    assert job is not None
    if job.status is ExportStatus.RUNNING and now - job.requested_at > STALE_AFTER:
        error = "stalled: no outcome recorded within an hour (the worker's dead-letter queue holds the run)"
        return ExportView(_finish(job, now, error=error))
    if job.status is not ExportStatus.READY or job.result is None:
        return ExportView(job)
    prefix = export_prefix(job.tenant, job.export_id)
    manifest = job.result.manifest
    content = json.loads(files.read(prefix, MANIFEST))
    listed = content["files"]
    expires = now + timedelta(seconds=LINK_SECONDS)
    return ExportView(
        job,
        links_expire_at=expires,
        manifest=ExportLink(
            manifest.path, manifest.size, manifest.sha256, links.download(prefix + MANIFEST, LINK_SECONDS)
        ),
        files=[
            ExportLink(f["path"], f["size"], f["sha256"], links.download(prefix + f["path"], LINK_SECONDS))
            for f in listed
        ],
        verify=content.get("verify"),
    )


# --- use cases: the worker ------------------------------------------------------------------------------------------


class _Hashing:
    """A file written through a sink while its size and SHA-256 are computed (the manifest's facts)."""

    def __init__(self, sink: FileSink, path: str) -> None:
        self.sink, self.path = sink, path
        self.size = 0
        self.hash = hashlib.sha256()

    def write(self, data: bytes) -> None:
        self.hash.update(data)
        self.size += len(data)
        self.sink.write(data)

    def info(self) -> FileInfo:
        return FileInfo(self.path, self.size, self.hash.hexdigest())


def _check_coverage(digests: Sequence[DigestFile], start: datetime, end: datetime) -> datetime:
    """Where the export starts: `start`, or later when the range begins before the tenant's trail (its first
    digest, which names no previous one, starts inside the range). Raises DigestsMissing for any other gap."""
    if not digests:
        raise DigestsMissing(f"no digest of the period starting {format_period_bound(start)}")
    first = digests[0].digest
    if first.previous_digest_sha256 is None and parse_instant(first.period_start) > start:
        start = parse_instant(first.period_start)
    expected = start
    for item in digests:
        begins = parse_instant(item.digest.period_start)
        if begins != expected:
            raise DigestsMissing(f"no digest of the period starting {format_period_bound(expected)}")
        expected = parse_instant(item.digest.period_end)
    if expected < end:
        raise DigestsMissing(f"no digest of the period starting {format_period_bound(expected)}")
    return start


def _digest_path(item: DigestFile) -> str:
    """`digests/<yyyy>/<mm>/<dd>/<stamp>.json`: the digest's own key below its tenant, so names sort by period."""
    moment = parse_instant(item.digest.period_start)
    return f"{DIGESTS_DIR}/{moment:%Y/%m/%d}/{moment:%Y%m%dT%H%M%SZ}.json"


def write_export(
    tenant: str,
    prefix: str,
    aligned: ExportRange,
    *,
    chain: ChainLines,
    files: ExportFiles,
    export_id: str,
    kind: ExportKind,
    now: datetime,
) -> ExportResult:
    """Write the export of `aligned` under `prefix`: the entries (one file per UTC day, streamed), the digests and
    public keys, then the manifest (written last: its presence means the export is complete). Raises
    DigestsMissing when a period of the range has no digest. The bytes depend only on the trail, so a retried
    run writes the same files again."""
    digests = files.digests(tenant, aligned.start, aligned.end)
    start = _check_coverage(digests, aligned.start, aligned.end)
    written: list[FileInfo] = []
    entries = 0
    short: list[str] = []
    by_day: dict[str, list[DigestFile]] = {}
    for item in digests:
        by_day.setdefault(parse_instant(item.digest.period_start).strftime("%Y%m%d"), []).append(item)
    for day, day_digests in by_day.items():
        path = f"{ENTRIES_DIR}/{day}.jsonl"
        out = _Hashing(files.writer(prefix, path, "application/x-ndjson"), path)
        try:
            for item in day_digests:
                for section in sorted(item.digest.shards, key=lambda s: s.shard):
                    count = 0
                    for line in chain.lines(
                        tenant, section.shard, after_seq=section.first_seq - 1, up_to_seq=section.last_seq
                    ):
                        out.write(line.encode("utf-8") + b"\n")
                        count += 1
                    entries += count
                    if count != section.count:
                        short.append(f"{item.digest.period_start} shard {section.shard}: {count}/{section.count}")
            out.sink.close()
        except BaseException:
            out.sink.abort()
            raise
        written.append(out.info())
    if short:
        # The table no longer holds what the digests signed: the export says so, and verification will name it.
        logger.error("audit export: the chain differs from its digests", extra={"tenant": tenant, "where": short[:5]})
    keys: dict[str, str] = {}
    for item in digests:
        path = _digest_path(item)
        files.put(prefix, path, item.raw, "application/json")
        written.append(FileInfo(path, len(item.raw), hashlib.sha256(item.raw).hexdigest()))
        if item.digest.key_id not in keys:
            name, pem = files.public_key(item.digest.key_id)
            key_path = f"{KEYS_DIR}/{name}"
            files.put(prefix, key_path, pem, "application/x-pem-file")
            written.append(FileInfo(key_path, len(pem), hashlib.sha256(pem).hexdigest()))
            keys[item.digest.key_id] = key_path
    since, until = format_period_bound(start), format_period_bound(aligned.end)
    manifest = {
        "v": MANIFEST_VERSION,
        "tenant": tenant,
        "export_id": export_id,
        "kind": kind.value,
        "since": since,
        "until": until,
        "requested_since": aligned.requested_since.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "requested_until": aligned.requested_until.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "created_at": now.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "periods": len(digests),
        "entries": entries,
        "chain_differs_from_digests": short,
        "public_keys": sorted(keys.values()),
        "verify": (
            f"ats-audit verify --log {ENTRIES_DIR} --digests {DIGESTS_DIR} --public-key {sorted(keys.values())[0]} "
            f"--since {since} --until {until}"
            if keys
            else None
        ),
        "files": [{"path": f.path, "size": f.size, "sha256": f.sha256} for f in written],
    }
    body = json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8") + b"\n"
    files.put(prefix, MANIFEST, body, "application/json")
    info = FileInfo(MANIFEST, len(body), hashlib.sha256(body).hexdigest())
    return ExportResult(
        periods=len(digests),
        entries=entries,
        files=len(written),
        bytes=sum(f.size for f in written),
        manifest=info,
    )


def run_export(
    tenant: str,
    export_id: str,
    *,
    jobs: ExportJobs,
    chain: ChainLines,
    files: ExportFiles,
    audit: AuditLog,
    now: Callable[[], datetime],
    request_id: str,
) -> ExportJob:
    """The worker's on-demand run: the request as recorded, the files written, the outcome recorded and audited.
    Missing digests fail the export (a retry would not help); any other error is recorded and raised again, so
    Lambda retries the run (its files are the same bytes again) and its dead-letter queue keeps the last."""
    job = jobs.get(tenant, export_id)
    if job is None:
        raise LookupError(f"no audit export {export_id} of {tenant}")
    if job.status is ExportStatus.READY:
        return job  # a redelivered event
    try:
        result = write_export(
            tenant,
            export_prefix(tenant, export_id),
            job.range,
            chain=chain,
            files=files,
            export_id=export_id,
            kind=ExportKind.ON_DEMAND,
            now=now(),
        )
    except DigestsMissing as missing:
        failed = _finish(job, now(), error=f"digests_missing: {missing}")
        jobs.insert_outcome(failed)
        _audit_outcome(audit, failed, request_id)
        return failed
    except Exception as exc:
        failed = _finish(job, now(), error=f"export_failed: {type(exc).__name__}")
        try:
            jobs.insert_outcome(failed)
        except Exception:  # the original error matters more
            logger.exception("audit export: the failure could not be recorded")
        raise
    done = _finish(job, now(), result=result)
    jobs.insert_outcome(done)
    _audit_outcome(audit, done, request_id)
    return done


def _finish(job: ExportJob, at: datetime, *, result: ExportResult | None = None, error: str | None = None) -> ExportJob:
    return ExportJob(
        tenant=job.tenant,
        export_id=job.export_id,
        range=job.range,
        requested_by=job.requested_by,
        requested_at=job.requested_at,
        status=ExportStatus.READY if result is not None else ExportStatus.FAILED,
        finished_at=at,
        result=result,
        error=error,
    )


def _audit_outcome(audit: AuditLog, job: ExportJob, request_id: str) -> None:
    audit.append(
        AuditEntry(
            tenant=job.tenant,
            actor=WORKER_ACTOR,
            action=Permission.EXPORT_AUDIT_TRAIL.value,
            resource=f"/v1/audit-exports/{job.export_id}",
            outcome=Outcome.ALLOWED if job.status is ExportStatus.READY else Outcome.FAILED,
            request_id=request_id,
            reason=job.error,
        )
    )


@dataclass(frozen=True)
class ScheduledRun:
    day: date
    written: dict[str, ExportResult]
    skipped: list[str]  # already exported (a retried run)
    failed: dict[str, str]


def previous_day(now: datetime) -> ExportRange:
    """The UTC day before `now`'s, as whole periods."""
    end = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = end - timedelta(days=1)
    return ExportRange(start, end, start, end)


def run_scheduled_exports(
    now: datetime,
    *,
    tenants: Sequence[str],
    chain: ChainLines,
    files: ExportFiles,
    audit: AuditLog,
    request_id: str,
) -> ScheduledRun:
    """Export the previous UTC day of every tenant (internal audit) under `scheduled/<date>/`; a tenant already
    exported that day is skipped, one that fails does not stop the others (the caller raises when any failed)."""
    aligned = previous_day(now)
    day = aligned.start.date()
    written: dict[str, ExportResult] = {}
    skipped: list[str] = []
    failed: dict[str, str] = {}
    for tenant in tenants:
        prefix = scheduled_prefix(tenant, day)
        export_id = f"scheduled/{day.isoformat()}"
        try:
            if files.exists(prefix, MANIFEST):
                skipped.append(tenant)
                continue
            written[tenant] = write_export(
                tenant,
                prefix,
                aligned,
                chain=chain,
                files=files,
                export_id=export_id,
                kind=ExportKind.SCHEDULED,
                now=now,
            )
            outcome, reason = Outcome.ALLOWED, None
        except Exception as exc:
            logger.exception("scheduled audit export failed", extra={"tenant": tenant, "day": day.isoformat()})
            failed[tenant] = f"{type(exc).__name__}: {exc}"[:300]
            outcome, reason = Outcome.FAILED, failed[tenant]
        audit.append(
            AuditEntry(
                tenant=tenant,
                actor=WORKER_ACTOR,
                action=Permission.EXPORT_AUDIT_TRAIL.value,
                resource=prefix.rstrip("/"),
                outcome=outcome,
                request_id=request_id,
                reason=reason,
            )
        )
    return ScheduledRun(day, written, skipped, failed)
