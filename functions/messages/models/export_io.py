"""The eDiscovery export (issue 12, section 6): the request and answers of /v1/message-exports, the export job as
the logic and the table know it, and the event that starts the export workflow.

An export is one job item (functions/messages/dal/exports.py) that the workflow advances a segment at a time
(functions/messages/logic/export.py); its files live in the export bucket under
`messages/exports/<tenant>/<export_id>/`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import ClassVar

from pydantic import AwareDatetime, ConfigDict, Field, model_validator

from functions.messages.models.message import Channel, Status
from shared.events import DomainEvent, Identifier
from shared.models import Model

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:@+-]{0,199}$"  # the ids messages are recorded with (models/record_io.py)
EXPORT_ID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
DOCID_PREFIX_PATTERN = r"^[A-Z][A-Z0-9]{0,11}$"
MAX_QUERY = 500


class ExportStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        return self in (ExportStatus.SUCCEEDED, ExportStatus.FAILED)


class ExportPhase(StrEnum):
    COLLECT = "collect"  # segments of documents are being written
    MANIFEST = "manifest"  # every document is written; the manifest is next
    DONE = "done"


class ContentStatus(StrEnum):
    """What became of a document's subject and body."""

    INCLUDED = "included"
    WITHHELD = "withheld"  # the requester does not hold messages:content:read
    NOT_KEPT = "not_kept"  # the tenant's policy kept metadata only when the message arrived
    REDACTED = "redacted"  # removed on a disclosure request
    UNREADABLE = "unreadable"  # sealed content that did not decrypt (counted and logged by message id)


# --- the job: what logic and the table know ----------------------------------------------------------------------


@dataclass(frozen=True)
class ExportFilters:
    """The search filters of GET /v1/messages, as the requester gave them."""

    candidate_id: str | None = None
    requisition_id: str | None = None
    status: Status | None = None
    channel: Channel | None = None
    since: datetime | None = None
    until: datetime | None = None
    text: str | None = None


@dataclass(frozen=True)
class ExportedFile:
    """A file of the export: its path under the export's prefix, its size in bytes and its SHA-256 (hex)."""

    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Segment:
    """The documents one workflow step wrote (`first_doc` .. `first_doc + documents - 1`) and its three
    aggregate files (JSON lines, CSV and DAT load files); the natives are listed by the load file."""

    number: int
    first_doc: int
    documents: int
    files: tuple[ExportedFile, ...]


@dataclass(frozen=True)
class ExportCounts:
    documents: int = 0
    emails: int = 0  # one native .eml each
    others: int = 0  # one JSON line each (SMS, in-app, portal, Teams)
    included: int = 0
    withheld: int = 0
    not_kept: int = 0
    redacted: int = 0
    unreadable: int = 0
    bytes: int = 0  # every file written, the manifest included

    def plus(self, other: ExportCounts) -> ExportCounts:
        return ExportCounts(**{name: getattr(self, name) + getattr(other, name) for name in _COUNT_FIELDS})


_COUNT_FIELDS = tuple(ExportCounts.__dataclass_fields__)


@dataclass(frozen=True)
class ExportJob:
    """One export: who asked for what, and how far the workflow got. `version` guards every write."""

    tenant: str
    export_id: str
    requested_by: str  # the actor's audit label, `user:<sub>`
    requested_at: datetime
    filters: ExportFilters
    content_included: bool  # decided (and audited) when the export was requested
    docid_prefix: str
    status: ExportStatus = ExportStatus.QUEUED
    phase: ExportPhase = ExportPhase.COLLECT
    started_at: datetime | None = None
    finished_at: datetime | None = None
    cursor: str | None = None  # where the next segment starts reading
    next_doc: int = 1
    segments: tuple[Segment, ...] = ()
    counts: ExportCounts = field(default_factory=ExportCounts)
    manifest: ExportedFile | None = None
    error: str | None = None
    version: int = 0  # 0: not stored yet

    @property
    def until(self) -> datetime:
        """The effective end of the date range: never after the request, so messages arriving while the export
        runs do not shift the document numbers of a segment written again after a failure."""
        until = self.filters.until
        return self.requested_at if until is None or until > self.requested_at else until


# --- the event that starts the workflow ---------------------------------------------------------------------------


class MessageExportRequested(DomainEvent):
    """An eDiscovery export was requested: the export workflow starts on it (ids only; the filters stay in the
    job item, since a text query may name a person)."""

    detail_type: ClassVar[str] = "MessageExportRequested"
    export_id: Identifier


# --- the API: request and answers ----------------------------------------------------------------------------------

_Id = Field(default=None, pattern=ID_PATTERN, max_length=200)


class ExportRequestBody(Model):
    """The search filters of GET /v1/messages, every one optional: all of the tenant's messages by default."""

    model_config = ConfigDict(extra="forbid")

    candidate_id: str | None = _Id
    requisition_id: str | None = _Id
    status: Status | None = None
    channel: Channel | None = None
    since: AwareDatetime | None = Field(default=None, description="ISO 8601 with offset; inclusive")
    until: AwareDatetime | None = Field(
        default=None, description="ISO 8601 with offset; inclusive; never later than the request itself"
    )
    q: str | None = Field(
        default=None, min_length=1, max_length=MAX_QUERY, description="Words of the content, as `q` of the search"
    )
    docid_prefix: str | None = Field(
        default=None,
        pattern=DOCID_PREFIX_PATTERN,
        description="Prefix of the document numbers (`<PREFIX>-00000001`); the tenant id in capitals by default",
    )

    @model_validator(mode="after")
    def _range(self) -> ExportRequestBody:
        if self.since and self.until and self.since > self.until:
            raise ValueError("since must not be after until")
        return self


class ExportAccepted(Model):
    export_id: str
    status: ExportStatus


class ExportFiltersOutput(Model):
    candidate_id: str | None = None
    requisition_id: str | None = None
    status: Status | None = None
    channel: Channel | None = None
    since: datetime | None = None
    until: datetime | None = None
    q: str | None = None


class ExportCountsOutput(Model):
    documents: int
    emails: int = Field(description="Documents written as native .eml files")
    other_channels: int = Field(description="Documents written as JSON lines (SMS, in-app, portal, Teams)")
    content_included: int
    content_withheld: int = Field(description="The requester does not hold messages:content:read")
    content_not_kept: int = Field(description="The tenant's policy kept metadata only")
    content_redacted: int
    content_unreadable: int
    bytes: int


class ExportLink(Model):
    url: str = Field(description="A presigned S3 URL")
    expires_at: datetime


class ManifestLink(ExportLink):
    size: int
    sha256: str = Field(description="SHA-256 of the manifest (hex); the manifest holds every other file's")


class ExportOutput(Model):
    export_id: str
    status: ExportStatus
    filters: ExportFiltersOutput
    docid_prefix: str
    content_included: bool
    requested_by: str
    requested_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    segments: int = Field(description="Workflow steps that wrote documents; each has its own load files")
    counts: ExportCountsOutput
    error: str | None = None
    manifest: ManifestLink | None = Field(default=None, description="When succeeded: the manifest, for 15 minutes")
    listing: ExportLink | None = Field(
        default=None,
        description=(
            "When succeeded: an S3 ListObjectsV2 of the export's prefix (XML, up to 1,000 keys a page), for 15 "
            "minutes; no archive is built"
        ),
    )
