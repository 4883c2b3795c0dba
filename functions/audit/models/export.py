"""The entities of an auditor export (functions/audit/logic/export.py, docs/audit-exports.md): its range of whole
digest periods, its files, its outcome. Apart from the use cases so that the job store (dal/exports.py) can build
them without importing logic."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

PERIOD = timedelta(hours=1)  # the digest period (functions/audit/logic/digests.py)


class ExportStatus(StrEnum):
    RUNNING = "running"  # requested; the worker has not finished
    READY = "ready"
    FAILED = "failed"


class ExportKind(StrEnum):
    ON_DEMAND = "on_demand"
    SCHEDULED = "scheduled"


@dataclass(frozen=True)
class ExportRange:
    """The range asked for, and the whole periods that cover it: [start, end)."""

    requested_since: datetime
    requested_until: datetime
    start: datetime
    end: datetime

    @property
    def periods(self) -> int:
        return int((self.end - self.start) / PERIOD)


@dataclass(frozen=True)
class FileInfo:
    path: str  # relative to the export's prefix
    size: int
    sha256: str  # hex


@dataclass(frozen=True)
class ExportResult:
    periods: int
    entries: int
    files: int
    bytes: int
    manifest: FileInfo


@dataclass(frozen=True)
class ExportJob:
    tenant: str
    export_id: str
    range: ExportRange
    requested_by: str
    requested_at: datetime
    status: ExportStatus = ExportStatus.RUNNING
    finished_at: datetime | None = None
    result: ExportResult | None = None
    error: str | None = None
