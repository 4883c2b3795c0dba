"""Use cases of the eDiscovery export (issue 12, section 6): start an export, read it (with presigned links when
it is done), and the workflow's steps that write it.

An export takes the search filters of GET /v1/messages and writes, under `messages/exports/<tenant>/<export id>/`
of the export bucket:

- `native/<DOCID>.eml`: one RFC 5322 message per email (`render_eml`);
- `messages.jsonl`: one JSON line per message of the other channels (`render_json_line`);
- `loadfile.csv` and `loadfile.dat`: one row per document, the CSV per RFC 4180 and the DAT with Concordance's
  default delimiters (ASCII 20 between fields, þ around them, ® for a line break inside one);
- `manifest.json`: who asked for what and when, the counts, every file with its size and SHA-256, and every
  document with its DOCID (`<PREFIX>-00000001`, in the order the messages are read).

Memory does not grow with the export. Messages are read a page at a time through the search's own building blocks
(an index query, oldest first; the blind index for text, newest first), each document is rendered and hashed on
its own, and each aggregate file is streamed to S3 in parts as it grows (functions/messages/dal/export_files.py).
What the manifest lists of every document comes back from the CSV load files, read as a stream, once everything
else is written.

The workflow calls `run_export_step` until the job is finished. A step writes one segment: it reads pages until
the messages run out or its time runs short, closes that segment's aggregate files and checkpoints the job (the
cursor, the next document number, each file's size and hash). An export that fits one step has exactly the files
above; a longer one has, from its second segment on, `messages-0002.jsonl`, `loadfile-0002.csv`, ... each a
complete file of its own, and the manifest lists them all. A step that fails is retried from the last checkpoint:
its segment is written again, as new versions of the same keys (the bucket is versioned and locked), and the
manifest's hashes name the versions that count.

Content (subjects and bodies) is exported only when the requester held `messages:content:read` when the export
was requested (decided and audited then); otherwise each document says its content is withheld.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, Protocol

from functions.messages.dal.exports import ExportStore, export_prefix
from functions.messages.dal.messages import MessageStore, Page
from functions.messages.logic.search import (
    ContentOpener,
    SearchRequest,
    TermStore,
    TextIndex,
    _index_query,
    _text_page,
)
from functions.messages.models.export_io import (
    EXPORT_ID_PATTERN,
    ContentStatus,
    ExportCounts,
    ExportedFile,
    ExportFilters,
    ExportJob,
    ExportPhase,
    ExportStatus,
    MessageExportRequested,
    Segment,
)
from functions.messages.models.message import Channel, MessageState, Party
from shared import clock
from shared.audit import AuditEntry, AuditLog, Outcome
from shared.auth import Actor
from shared.errors import BadRequest, ConfigurationError, Conflict, DependencyFailure, NotFound
from shared.events import EventPublisher
from shared.keys import check_tenant
from shared.observability import logger
from shared.permissions import Permission, authorize, ensure_tenant, is_allowed

JOB = "messages-export"
ACTION = "messages.export"
RESOURCE = "/v1/message-exports"
FORMAT = "ats-message-export/1"
MANIFEST = "manifest.json"
LINK_SECONDS = 15 * 60
INDEX_PAGE_SIZE = 100  # messages per index query (DynamoDB also stops a page at 1 MB)
TEXT_PAGE_SIZE = 25  # messages per text page: their ids come from the term items, then one BatchGetItem
SEGMENT_RESERVE_SECONDS = 120.0  # a step stops reading pages when less than this is left: enough to close files
MANIFEST_RESERVE_SECONDS = 120.0  # the manifest is written in the same step only when this much is left

LOADFILE_FIELDS = (
    "DOCID",
    "MESSAGEID",
    "CHANNEL",
    "DIRECTION",
    "STATUS",
    "PROVIDER",
    "PROVIDERMESSAGEID",
    "DATESENT",  # YYYYMMDD, UTC: the date form Concordance loads without slashes
    "TIMESENT",  # HH:MM:SS, UTC
    "FIRSTAT",  # ISO 8601, UTC: the first event of the message
    "LASTAT",
    "FROM",
    "TO",
    "SUBJECT",  # only when content is included
    "CANDIDATEID",
    "REQUISITIONID",
    "THREADID",
    "RFCMESSAGEID",
    "INREPLYTO",
    "ATTEMPTS",
    "CONTENT",  # included | withheld | not_kept | redacted | unreadable
    "NATIVEPATH",  # native/<DOCID>.eml, or the JSON lines file that holds the document
    "JSONLINE",  # the document's line in that file (1-based); empty for a native
    "FILESIZE",  # bytes of the native, or of the JSON line without its line feed
    "SHA256",  # of those same bytes
)

# Concordance's default delimiters (CloudNine, Concordance Desktop, "Managing data files"): fields separated by
# ASCII 20, each wrapped in þ (ASCII 254), a line break inside a field written as ® (ASCII 174), records ended by
# a carriage return. The file is UTF-8 with a byte order mark, which is how review platforms tell its encoding.
DAT_COLUMN = "\x14"
DAT_QUOTE = "\u00fe"
DAT_NEWLINE = "\u00ae"
MULTI_VALUE = "; "
BOM = "\ufeff"
_LINE_BREAKS = re.compile(r"\r\n|\r|\n")
_DAT_SPECIAL = re.compile("[\x14\u00fe\u00ae\r\n]")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

_CONTENT_NOTES = {  # each under 78 characters, so the body stays 7bit
    ContentStatus.WITHHELD: "Content withheld: the requester of this export lacks messages:content:read.",
    ContentStatus.NOT_KEPT: "No content kept: the tenant's message policy keeps metadata only.",
    ContentStatus.UNREADABLE: "Content missing: it could not be decrypted for this export.",
}


# --- ports --------------------------------------------------------------------------------------------------------


class ObjectWriter(Protocol):
    def write(self, data: bytes) -> None: ...

    def close(self) -> None: ...

    def abort(self) -> None: ...


class ExportFiles(Protocol):
    """The files of one export, by path under its prefix (S3: functions/messages/dal/export_files.py)."""

    def writer(self, path: str, content_type: str) -> ObjectWriter: ...

    def put(self, path: str, data: bytes, *, sha256: bytes, content_type: str) -> None: ...

    def drain(self) -> None: ...

    def lines(self, path: str) -> Iterator[bytes]: ...


class ExportLinks(Protocol):
    def download(self, key: str, seconds: int) -> str: ...

    def listing(self, prefix: str, seconds: int) -> str: ...


class MessageSource(Protocol):
    """Pages of the messages an export's filters select; `cursor` is where the previous page stopped."""

    def page(self, job: ExportJob, cursor: str | None) -> Page: ...


# --- starting and reading ------------------------------------------------------------------------------------------


def default_prefix(tenant: str) -> str:
    """The tenant id in capitals without its dashes (`acme-eu` -> `ACMEEU`), at most 12 characters."""
    letters = re.sub(r"[^A-Z0-9]", "", tenant.upper())[:12]
    return letters if letters[:1].isalpha() else f"M{letters}"[:12]


def start_export(
    actor: Actor,
    filters: ExportFilters,
    *,
    docid_prefix: str | None,
    store: ExportStore,
    publisher: EventPublisher,
    audit: AuditLog,
    request_id: str,
    source_ip: str | None = None,
    new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
) -> ExportJob:
    """Record an export of the actor's tenant's messages matching `filters` and start its workflow. Whether content
    is included is decided now, from the requester's own permissions, and audited as a content read."""
    authorize(
        actor, Permission.EXPORT_MESSAGES, resource=RESOURCE, request_id=request_id, audit=audit, source_ip=source_ip
    )
    if filters.since and filters.until and filters.since > filters.until:
        raise BadRequest("since must not be after until")
    now = clock.now()
    if filters.since and filters.since > now:
        raise BadRequest("since is in the future: the export would be empty")
    if filters.text is not None:
        from functions.messages.logic.blind_index import query_tokens

        if not query_tokens(filters.text):
            raise BadRequest("q has no searchable word")
    content = is_allowed(actor, Permission.READ_MESSAGE_CONTENT)
    if content:
        authorize(
            actor,
            Permission.READ_MESSAGE_CONTENT,
            resource=RESOURCE,
            request_id=request_id,
            audit=audit,
            source_ip=source_ip,
        )
    job = store.create(
        ExportJob(
            tenant=actor.tenant,
            export_id=new_id(),
            requested_by=actor.label,
            requested_at=now,
            filters=filters,
            content_included=content,
            docid_prefix=docid_prefix or default_prefix(actor.tenant),
        )
    )
    try:
        publisher.publish(
            [MessageExportRequested(tenant=job.tenant, export_id=job.export_id, correlation_id=request_id)]
        )
    except DependencyFailure:
        store.save(replace(job, status=ExportStatus.FAILED, finished_at=clock.now(), error="the export did not start"))
        raise
    logger.info("message export requested", extra={"export_id": job.export_id, "content": content})
    return job


@dataclass(frozen=True)
class ExportView:
    job: ExportJob
    manifest_url: str | None = None
    listing_url: str | None = None
    links_expire_at: datetime | None = None


def read_export(
    actor: Actor,
    export_id: str,
    *,
    store: ExportStore,
    audit: AuditLog,
    request_id: str,
    links: ExportLinks | None = None,
    source_ip: str | None = None,
) -> ExportView:
    """An export of the actor's tenant (another tenant's is the same 404 as a missing one), and once it succeeded
    presigned links to its manifest and to a listing of its files, valid 15 minutes; each link is audited."""
    resource = f"{RESOURCE}/{export_id}"
    authorize(
        actor, Permission.EXPORT_MESSAGES, resource=resource, request_id=request_id, audit=audit, source_ip=source_ip
    )
    job = store.get(actor.tenant, export_id) if re.match(EXPORT_ID_PATTERN, export_id) else None
    ensure_tenant(actor, job.tenant if job else None, "export")
    assert job is not None
    if job.status is not ExportStatus.SUCCEEDED or links is None:
        return ExportView(job)
    prefix = export_prefix(job.tenant, job.export_id)
    for issued in (f"{resource}/{MANIFEST}", f"{resource}/listing"):
        authorize(
            actor, Permission.EXPORT_MESSAGES, resource=issued, request_id=request_id, audit=audit, source_ip=source_ip
        )
    return ExportView(
        job,
        manifest_url=links.download(prefix + MANIFEST, LINK_SECONDS),
        listing_url=links.listing(prefix, LINK_SECONDS),
        links_expire_at=clock.now() + timedelta(seconds=LINK_SECONDS),
    )


# Every file an export can hold (the layout above), as a path under the export's prefix.
FILE_PATH_PATTERN = (
    r"^(manifest\.json|native/[A-Z][A-Z0-9]{0,11}-[0-9]{8}\.eml|messages(-[0-9]{4})?\.jsonl"
    r"|loadfile(-[0-9]{4})?\.(csv|dat))$"
)


def file_link(
    actor: Actor,
    export_id: str,
    path: str,
    *,
    store: ExportStore,
    audit: AuditLog,
    request_id: str,
    links: ExportLinks,
    source_ip: str | None = None,
) -> tuple[str, datetime]:
    """A presigned link (15 minutes) to one file of a succeeded export of the actor's tenant, named by its path in
    the manifest: how the requester downloads the natives and load files one by one. Each link is audited."""
    if not re.match(FILE_PATH_PATTERN, path):
        raise BadRequest("path names no file of an export: manifest.json, native/<DOCID>.eml, messages.jsonl, ...")
    resource = f"{RESOURCE}/{export_id}"
    authorize(
        actor,
        Permission.EXPORT_MESSAGES,
        resource=f"{resource}/{path}",
        request_id=request_id,
        audit=audit,
        source_ip=source_ip,
    )
    job = store.get(actor.tenant, export_id) if re.match(EXPORT_ID_PATTERN, export_id) else None
    ensure_tenant(actor, job.tenant if job else None, "export")
    assert job is not None
    if job.status is not ExportStatus.SUCCEEDED:
        raise Conflict(f"the export is {job.status.value}: its files are linked once it has succeeded")
    url = links.download(export_prefix(job.tenant, job.export_id) + path, LINK_SECONDS)
    return url, clock.now() + timedelta(seconds=LINK_SECONDS)


# --- the workflow's steps ------------------------------------------------------------------------------------------


class SearchSource:
    """An export's messages through the search's building blocks (functions/messages/logic/search.py): the index
    of the most selective filter, oldest first, or, with text, the blind index's term items, newest first (the
    only order they are read in). `until` is capped at the request (`ExportJob.until`)."""

    def __init__(
        self,
        store: MessageStore,
        text_index: TextIndex | None = None,
        terms: TermStore | None = None,
        *,
        page_size: int = INDEX_PAGE_SIZE,
        text_page_size: int = TEXT_PAGE_SIZE,
    ) -> None:
        self._store, self._index, self._terms = store, text_index, terms
        self._page_size, self._text_page_size = page_size, text_page_size

    def page(self, job: ExportJob, cursor: str | None) -> Page:
        f = job.filters
        request = SearchRequest(
            candidate_id=f.candidate_id,
            requisition_id=f.requisition_id,
            status=f.status,
            channel=f.channel,
            since=f.since,
            until=job.until,
            text=f.text,
            cursor=cursor,
            limit=self._text_page_size if f.text else self._page_size,
        )
        if f.text:
            if self._index is None or self._terms is None:
                raise ConfigurationError("a text export needs the blind index")
            return _text_page(job.tenant, request, self._store, self._index, self._terms)
        query, filters = _index_query(job.tenant, request)
        return self._store.query(
            job.tenant, replace(query, newest_first=False), limit=request.limit, cursor=cursor, filters=filters
        )


def order_of(job: ExportJob) -> str:
    return "newest_first" if job.filters.text else "oldest_first"


def run_export_step(
    tenant: str,
    export_id: str,
    *,
    store: ExportStore,
    files: ExportFiles,
    source: MessageSource,
    audit: AuditLog,
    time_left: Callable[[], float],
    opener: ContentOpener | None = None,
) -> ExportJob:
    """Advance an export by one step: one segment of documents, then, when they are all written and time allows,
    the manifest. Returns the job as stored; the workflow calls again until `job.status.finished`."""
    job = store.get(check_tenant(tenant), export_id)
    if job is None:
        raise NotFound("no export")
    if job.status.finished:
        return job
    if job.status is ExportStatus.QUEUED:
        job = store.save(replace(job, status=ExportStatus.RUNNING, started_at=clock.now()))
    if job.phase is ExportPhase.COLLECT:
        job = _write_segment(job, store=store, files=files, source=source, opener=opener, time_left=time_left)
    if job.phase is ExportPhase.MANIFEST and time_left() >= MANIFEST_RESERVE_SECONDS:
        job = _finish(job, store=store, files=files, audit=audit)
    return job


def fail_export(tenant: str, export_id: str, reason: str, *, store: ExportStore, audit: AuditLog) -> ExportJob | None:
    """Mark an export failed (the workflow's catch: a step that failed past its retries); audited once."""
    job = store.get(check_tenant(tenant), export_id)
    if job is None or job.status.finished:
        return job
    reason = reason[:500] or "the export failed"
    _audit_end(job, Outcome.FAILED, reason, audit)
    failed = store.save(replace(job, status=ExportStatus.FAILED, finished_at=clock.now(), error=reason))
    logger.warning("message export failed", extra={"export_id": export_id, "reason": reason[:200]})
    return failed


def segment_files(number: int) -> tuple[str, str, str]:
    """The JSON lines, CSV and DAT files of segment `number`: the names of the layout for the first, numbered
    names (`loadfile-0002.csv`) for the next ones."""
    suffix = "" if number == 1 else f"-{number:04d}"
    return f"messages{suffix}.jsonl", f"loadfile{suffix}.csv", f"loadfile{suffix}.dat"


class _Hashed:
    """A file being written, with its size and SHA-256 computed from the very bytes handed to the store."""

    def __init__(self, files: ExportFiles, path: str, content_type: str) -> None:
        self.path = path
        self.size = 0
        self._sha = hashlib.sha256()
        self._writer = files.writer(path, content_type)

    def write(self, data: bytes) -> None:
        self._sha.update(data)
        self.size += len(data)
        self._writer.write(data)

    def close(self) -> ExportedFile:
        self._writer.close()
        return ExportedFile(self.path, self.size, self._sha.hexdigest())

    def abort(self) -> None:
        try:
            self._writer.abort()
        except Exception:  # the failure being raised matters more; an unfinished upload expires by lifecycle
            logger.warning("could not abort an export upload", extra={"path": self.path})


class _CsvRows:
    """RFC 4180 rows (CRLF), one at a time. A value that a spreadsheet would run as a formula (it starts with =,
    +, -, @, a tab or a carriage return) gets a leading apostrophe, as OWASP advises for CSV exports; the DAT load
    file, the JSON lines and the natives keep every value exactly."""

    def __init__(self) -> None:
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer, lineterminator="\r\n")

    def line(self, values: Sequence[str]) -> bytes:
        self._buffer.seek(0)
        self._buffer.truncate()
        self._writer.writerow([f"'{v}" if v.startswith(_FORMULA_START) else v for v in values])
        return self._buffer.getvalue().encode()


def dat_line(values: Sequence[str]) -> bytes:
    """One Concordance record. The format has no escape: a value's own þ is written `th`, its ® `(R)` and its
    ASCII 20 a space, and its line breaks become ®, as the format reads them back."""
    cleaned = (_dat_value(v) if _DAT_SPECIAL.search(v) else v for v in values)
    return (DAT_QUOTE + (DAT_QUOTE + DAT_COLUMN + DAT_QUOTE).join(cleaned) + DAT_QUOTE + "\r\n").encode()


def _dat_value(value: str) -> str:
    value = value.replace(DAT_QUOTE, "th").replace(DAT_NEWLINE, "(R)").replace(DAT_COLUMN, " ")
    return _LINE_BREAKS.sub(DAT_NEWLINE, value)


def _write_segment(
    job: ExportJob,
    *,
    store: ExportStore,
    files: ExportFiles,
    source: MessageSource,
    opener: ContentOpener | None,
    time_left: Callable[[], float],
) -> ExportJob:
    number = len(job.segments) + 1
    jsonl_path, csv_path, dat_path = segment_files(number)
    jsonl = _Hashed(files, jsonl_path, "application/x-ndjson")
    loadfile = _Hashed(files, csv_path, "text/csv; charset=utf-8")
    dat = _Hashed(files, dat_path, "text/plain; charset=utf-8")
    writers = (jsonl, loadfile, dat)
    rows = _CsvRows()
    counts = _Counter()
    doc, line, cursor = job.next_doc, 0, job.cursor
    try:
        loadfile.write(BOM.encode() + rows.line(LOADFILE_FIELDS))
        dat.write(BOM.encode() + dat_line(LOADFILE_FIELDS))
        while True:
            page = source.page(job, cursor)
            for message in page.messages:
                if message.tenant != job.tenant:  # the store's keys make this impossible; never export it anyway
                    continue
                docid = f"{job.docid_prefix}-{doc:08d}"
                status, subject, body = _content(job, message, opener)
                if message.channel is Channel.EMAIL:
                    data = render_eml(message, docid, status, subject, body)
                    digest = hashlib.sha256(data)
                    path, position = f"native/{docid}.eml", ""
                    files.put(path, data, sha256=digest.digest(), content_type="message/rfc822")
                    counts.native(len(data))
                else:
                    data = render_json_line(message, docid, status, subject, body)
                    digest = hashlib.sha256(data)
                    jsonl.write(data + b"\n")
                    line += 1
                    path, position = jsonl_path, str(line)
                    counts.other()
                counts.content(status)
                row = _row(message, docid, status, subject, path, position, len(data), digest.hexdigest())
                loadfile.write(rows.line(row))
                dat.write(dat_line(row))
                doc += 1
            cursor = page.cursor
            if cursor is None or time_left() < SEGMENT_RESERVE_SECONDS:
                break
        files.drain()
        written = tuple(w.close() for w in writers)
    except BaseException:
        for w in writers:
            w.abort()
        raise
    segment = Segment(number=number, first_doc=job.next_doc, documents=doc - job.next_doc, files=written)
    counts.bytes += sum(f.size for f in written)
    logger.info(
        "message export segment written",
        extra={"export_id": job.export_id, "segment": number, "documents": segment.documents, "more": bool(cursor)},
    )
    return store.save(
        replace(
            job,
            cursor=cursor,
            next_doc=doc,
            segments=(*job.segments, segment),
            counts=job.counts.plus(counts.frozen()),
            phase=ExportPhase.COLLECT if cursor else ExportPhase.MANIFEST,
        )
    )


class _Counter:
    def __init__(self) -> None:
        self.emails = self.others = self.bytes = 0
        self.by_status: dict[ContentStatus, int] = dict.fromkeys(ContentStatus, 0)

    def native(self, size: int) -> None:
        self.emails += 1
        self.bytes += size

    def other(self) -> None:
        self.others += 1

    def content(self, status: ContentStatus) -> None:
        self.by_status[status] += 1

    def frozen(self) -> ExportCounts:
        s = self.by_status
        return ExportCounts(
            documents=self.emails + self.others,
            emails=self.emails,
            others=self.others,
            included=s[ContentStatus.INCLUDED],
            withheld=s[ContentStatus.WITHHELD],
            not_kept=s[ContentStatus.NOT_KEPT],
            redacted=s[ContentStatus.REDACTED],
            unreadable=s[ContentStatus.UNREADABLE],
            bytes=self.bytes,
        )


def _content(
    job: ExportJob, message: MessageState, opener: ContentOpener | None
) -> tuple[ContentStatus, str | None, str | None]:
    """What the document says of the message's subject and body, and the plain text when it is included."""
    if message.sealed_subject is None and message.sealed_body is None:
        return (ContentStatus.REDACTED if message.redacted_at else ContentStatus.NOT_KEPT), None, None
    if not job.content_included or opener is None:
        return ContentStatus.WITHHELD, None, None
    t, m = message.tenant, message.message_id
    try:
        subject = opener.open(t, m, "subject", message.sealed_subject) if message.sealed_subject else None
        body = opener.open(t, m, "body", message.sealed_body) if message.sealed_body else None
    except BadRequest:
        # Sealed for another record, tenant or key: export the rest and say so (ids only in the log).
        logger.warning("message content did not decrypt", extra={"export_id": job.export_id, "message_id": m})
        return ContentStatus.UNREADABLE, None, None
    return ContentStatus.INCLUDED, subject, body


def _party(party: Party) -> str:
    return f"{party.name} <{party.address}>" if party.name else party.address


def _row(
    m: MessageState,
    docid: str,
    status: ContentStatus,
    subject: str | None,
    path: str,
    position: str,
    size: int,
    sha256: str,
) -> list[str]:
    first = m.first_at.astimezone(UTC)
    return [
        docid,
        m.message_id,
        m.channel.value,
        m.direction.value,
        m.status.value,
        m.provider,
        m.message_key,
        first.strftime("%Y%m%d"),
        first.strftime("%H:%M:%S"),
        clock.isoformat(m.first_at),
        clock.isoformat(m.last_at),
        _party(m.sender) if m.sender else "",
        MULTI_VALUE.join(_party(p) for p in m.recipients),
        (subject or "") if status is ContentStatus.INCLUDED else "",
        m.candidate_id or "",
        m.requisition_id or "",
        m.thread_id or "",
        m.rfc_message_id or "",
        m.in_reply_to or "",
        str(m.attempts),
        status.value,
        path,
        position,
        str(size),
        sha256,
    ]


# --- documents ----------------------------------------------------------------------------------------------------


def _one_line(text: str) -> str:
    return _LINE_BREAKS.sub(" ", text)


def _bare_id(rfc_id: str) -> str:
    return _one_line(rfc_id).strip().strip("<>")


def _address(party: Party) -> Any:
    """The party as an RFC 5322 address (an IDN domain in its ASCII form), or None when it has none (a local part
    outside ASCII needs SMTPUTF8, which a policy.SMTP message cannot carry)."""
    from email.errors import HeaderParseError
    from email.headerregistry import Address

    local, at, domain = party.address.rpartition("@")
    if not at or not local or not domain or not local.isascii():
        return None
    try:
        if not domain.isascii():
            domain = domain.encode("idna").decode("ascii")
        return Address(display_name=_one_line(party.name or ""), addr_spec=f"{local}@{domain}")
    except (ValueError, UnicodeError, HeaderParseError, IndexError):
        return None


def _set_addresses(msg: Any, header: str, parties: Sequence[Party]) -> None:
    from email.errors import HeaderParseError

    addresses, unwritable = [], []
    for party in parties:
        address = _address(party)
        if address is None:
            unwritable.append(party)
        else:
            addresses.append(address)
    if addresses:
        try:
            msg[header] = addresses
        except (ValueError, HeaderParseError, IndexError):
            unwritable = list(parties)
    if unwritable:
        # Kept, as unstructured text (encoded words), rather than dropped.
        msg[f"X-ATS-Unaddressable-{header}"] = MULTI_VALUE.join(_one_line(_party(p)) for p in unwritable)


@cache
def _smtp_policy() -> Any:
    """policy.SMTP with a header registry that builds each header class once. The standard registry makes a new
    class on every header it parses; those classes are garbage in reference cycles, which only the cyclic
    collector frees, so an export of many emails would hold ever more of them between collections."""
    from email import policy
    from email.headerregistry import HeaderRegistry

    class _Registry(HeaderRegistry):
        def __init__(self) -> None:
            super().__init__()
            self._classes: dict[str, Any] = {}

        def __getitem__(self, name: str) -> Any:
            key = name.lower()
            if key not in self._classes:
                self._classes[key] = super().__getitem__(name)
            return self._classes[key]

    return policy.SMTP.clone(header_factory=_Registry())


def render_eml(
    message: MessageState, docid: str, status: ContentStatus, subject: str | None, body: str | None
) -> bytes:
    """The email as an RFC 5322 message (`email` with policy.SMTP: CRLF, encoded words for headers outside ASCII,
    a text/plain body). Without content the headers stay, the Subject goes, and the body says why."""
    from email.message import EmailMessage
    from email.utils import format_datetime

    msg = EmailMessage(policy=_smtp_policy())
    if message.rfc_message_id:
        msg["Message-ID"] = f"<{_bare_id(message.rfc_message_id)}>"
    else:
        msg["Message-ID"] = f"<{message.message_id}@message-export.invalid>"
        msg["X-ATS-Synthetic-Message-Id"] = "true"
    if message.in_reply_to:
        msg["In-Reply-To"] = f"<{_bare_id(message.in_reply_to)}>"
    if message.references:
        msg["References"] = " ".join(f"<{_bare_id(r)}>" for r in message.references)
    msg["Date"] = format_datetime(message.first_at.astimezone(UTC))
    if message.sender:
        _set_addresses(msg, "From", [message.sender])
    if message.recipients:
        _set_addresses(msg, "To", message.recipients)
    if status is ContentStatus.INCLUDED and subject is not None:
        msg["Subject"] = _one_line(subject)
    msg["X-ATS-Message-Id"] = message.message_id
    msg["X-ATS-Document-Id"] = docid
    msg["X-ATS-Direction"] = message.direction.value
    msg["X-ATS-Status"] = message.status.value
    msg["X-ATS-Provider"] = message.provider
    for header, value in (
        ("X-ATS-Candidate-Id", message.candidate_id),
        ("X-ATS-Requisition-Id", message.requisition_id),
        ("X-ATS-Thread-Id", message.thread_id),
    ):
        if value:
            msg[header] = _one_line(value)
    msg["X-ATS-Content"] = status.value
    msg.set_content(_body_text(message, status, body))
    return msg.as_bytes()


def _body_text(message: MessageState, status: ContentStatus, body: str | None) -> str:
    if status is ContentStatus.INCLUDED:
        return body or ""
    if status is ContentStatus.REDACTED:
        redacted = clock.isoformat(message.redacted_at) if message.redacted_at else "an unknown date"
        return f"Content redacted on {redacted}.\n"
    return _CONTENT_NOTES[status] + "\n"


def render_json_line(
    message: MessageState, docid: str, status: ContentStatus, subject: str | None, body: str | None
) -> bytes:
    """A message of another channel as one line of JSON (UTF-8, no line break inside): its metadata, its full
    status history and, when included, its content."""
    m = message
    document = {
        "docid": docid,
        "message_id": m.message_id,
        "channel": m.channel.value,
        "direction": m.direction.value,
        "provider": m.provider,
        "provider_message_id": m.message_key,
        "status": m.status.value,
        "first_at": clock.isoformat(m.first_at),
        "last_at": clock.isoformat(m.last_at),
        "candidate_id": m.candidate_id,
        "requisition_id": m.requisition_id,
        "thread_id": m.thread_id,
        "rfc_message_id": m.rfc_message_id,
        "in_reply_to": m.in_reply_to,
        "references": list(m.references),
        "sender": {"address": m.sender.address, "name": m.sender.name} if m.sender else None,
        "recipients": [{"address": p.address, "name": p.name} for p in m.recipients],
        "attempts": m.attempts,
        "history": [
            {
                "event_id": e.event_id,
                "status": e.status.value,
                "at": clock.isoformat(e.at),
                "provider": e.provider,
                "provider_event": e.provider_event,
                "detail": e.detail,
                "attempt": e.attempt,
                "permanent": e.permanent,
            }
            for e in m.history
        ],
        "dropped_events": m.dropped_events,
        "content_status": status.value,
        "content": {"subject": subject, "body": body} if status is ContentStatus.INCLUDED else None,
        "redacted_at": clock.isoformat(m.redacted_at) if m.redacted_at else None,
        "on_hold": bool(m.holds),
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


# --- the manifest -------------------------------------------------------------------------------------------------


def loadfile_rows(files: ExportFiles, path: str) -> Iterator[dict[str, str]]:
    """The rows of a CSV load file, read back as a stream, by field name."""
    reader = csv.reader(_decoded(files.lines(path)))
    header = next(reader)
    for values in reader:
        yield dict(zip(header, values, strict=True))


def _decoded(lines: Iterable[bytes]) -> Iterator[str]:
    first = True
    for line in lines:
        text = line.decode("utf-8")
        if first:
            text, first = text.removeprefix(BOM), False
        yield text


def _finish(job: ExportJob, *, store: ExportStore, files: ExportFiles, audit: AuditLog) -> ExportJob:
    finished_at = clock.now()
    manifest = _write_manifest(job, files, finished_at)
    summary = (
        f"{job.counts.documents} documents in {len(job.segments)} segment(s); "
        f"{MANIFEST} {manifest.size} bytes, sha256 {manifest.sha256}"
    )
    _audit_end(job, Outcome.ALLOWED, summary, audit)  # before the job is final, so a retried step audits too
    done = store.save(
        replace(
            job,
            status=ExportStatus.SUCCEEDED,
            phase=ExportPhase.DONE,
            finished_at=finished_at,
            manifest=manifest,
            counts=replace(job.counts, bytes=job.counts.bytes + manifest.size),
        )
    )
    logger.info("message export finished", extra={"export_id": job.export_id, "documents": job.counts.documents})
    return done


def _audit_end(job: ExportJob, outcome: Outcome, reason: str, audit: AuditLog) -> None:
    audit.append(
        AuditEntry(
            tenant=job.tenant,
            actor=Actor.system(JOB, job.tenant).label,
            action=ACTION,
            resource=f"{RESOURCE}/{job.export_id}",
            outcome=outcome,
            request_id=f"{JOB}-{job.export_id}",
            reason=reason[:512],
        )
    )


def _manifest_head(job: ExportJob, finished_at: datetime) -> dict[str, Any]:
    f = job.filters
    c = job.counts
    return {
        "format": FORMAT,
        "export_id": job.export_id,
        "tenant": job.tenant,
        "requested_by": job.requested_by,
        "requested_at": clock.isoformat(job.requested_at),
        "started_at": clock.isoformat(job.started_at) if job.started_at else None,
        "finished_at": clock.isoformat(finished_at),
        "filters": {
            "candidate_id": f.candidate_id,
            "requisition_id": f.requisition_id,
            "status": f.status.value if f.status else None,
            "channel": f.channel.value if f.channel else None,
            "since": clock.isoformat(f.since) if f.since else None,
            "until": clock.isoformat(f.until) if f.until else None,
            "q": f.text,
        },
        "effective_until": clock.isoformat(job.until),
        "order": order_of(job),
        "content_included": job.content_included,
        "docid_prefix": job.docid_prefix,
        "hash_algorithm": "sha256",
        "counts": {
            "documents": c.documents,
            "emails": c.emails,
            "other_channels": c.others,
            "content_included": c.included,
            "content_withheld": c.withheld,
            "content_not_kept": c.not_kept,
            "content_redacted": c.redacted,
            "content_unreadable": c.unreadable,
            "bytes_listed": c.bytes,
        },
        "load_files": {
            "fields": list(LOADFILE_FIELDS),
            "csv": {"encoding": "utf-8 with byte order mark", "standard": "RFC 4180", "record_end": "CRLF"},
            "dat": {
                "encoding": "utf-8 with byte order mark",
                "column": "ASCII 20",
                "quote": "þ (U+00FE)",
                "newline_in_field": "® (U+00AE)",
                "multi_value": MULTI_VALUE.strip(),
                "record_end": "CRLF",
            },
            "jsonl": "one JSON document per line; FILESIZE and SHA256 are of the line without its line feed",
        },
        "segments": [
            {
                "number": s.number,
                "first_docid": f"{job.docid_prefix}-{s.first_doc:08d}" if s.documents else None,
                "last_docid": f"{job.docid_prefix}-{s.first_doc + s.documents - 1:08d}" if s.documents else None,
                "documents": s.documents,
                "files": [x.path for x in s.files],
            }
            for s in job.segments
        ],
    }


def _write_manifest(job: ExportJob, files: ExportFiles, finished_at: datetime) -> ExportedFile:
    """`manifest.json`, streamed: the head, then `files` (every native, read back from the load files, and every
    segment's aggregate files) and `documents` (every DOCID), one entry per line."""
    out = _Hashed(files, MANIFEST, "application/json")
    try:
        head = json.dumps(_manifest_head(job, finished_at), ensure_ascii=False, separators=(",", ":"))
        out.write(head[:-1].encode() + b',\n"files":[')
        _entries(out, _file_entries(job, files))
        out.write(b'\n],\n"documents":[')
        _entries(out, _document_entries(job, files))
        out.write(b"\n]}\n")
        return out.close()
    except BaseException:
        out.abort()
        raise


def _entries(out: _Hashed, entries: Iterable[dict[str, Any]]) -> None:
    separator = b"\n"
    for entry in entries:
        out.write(separator + json.dumps(entry, ensure_ascii=False, separators=(",", ":")).encode())
        separator = b",\n"


def _file_entries(job: ExportJob, files: ExportFiles) -> Iterator[dict[str, Any]]:
    for segment in job.segments:
        for row in loadfile_rows(files, segment.files[1].path):
            if not row["JSONLINE"]:
                yield {"path": row["NATIVEPATH"], "size": int(row["FILESIZE"]), "sha256": row["SHA256"]}
        for file in segment.files:
            yield {"path": file.path, "size": file.size, "sha256": file.sha256}


def _document_entries(job: ExportJob, files: ExportFiles) -> Iterator[dict[str, Any]]:
    for segment in job.segments:
        for row in loadfile_rows(files, segment.files[1].path):
            entry: dict[str, Any] = {
                "docid": row["DOCID"],
                "message_id": row["MESSAGEID"],
                "channel": row["CHANNEL"],
                "path": row["NATIVEPATH"],
            }
            if row["JSONLINE"]:
                entry["line"] = int(row["JSONLINE"])
            entry.update(size=int(row["FILESIZE"]), sha256=row["SHA256"], content=row["CONTENT"])
            yield entry


def error_of(cause: Any) -> str:
    """A short, safe reason from a workflow catch's error (`{"Error": ..., "Cause": ...}`): the error type and
    the first line of its message, never a stack trace."""
    if not isinstance(cause, dict):
        return "the export failed"
    kind = str(cause.get("Error") or "Error")[:100]
    detail = cause.get("Cause")
    message = ""
    if isinstance(detail, str):
        try:
            parsed = json.loads(detail)
        except ValueError:
            parsed = None
        message = str(parsed.get("errorMessage") or "") if isinstance(parsed, dict) else detail
    message = message.splitlines()[0][:300] if message else ""
    return f"{kind}: {message}" if message else kind
