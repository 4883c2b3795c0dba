"""The request and answers of /v1/audit-exports (docs/audit-exports.md)."""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, ConfigDict, Field

from shared.models import Model


class AuditExportRequest(Model):
    model_config = ConfigDict(extra="forbid")

    since: AwareDatetime = Field(description="Start of the range (ISO-8601 with a time zone); widened to the hour")
    until: AwareDatetime = Field(
        description="End of the range, exclusive; widened to the next hour. At most 31 days after since, and "
        "15 minutes in the past once widened (the hour's digest is written a few minutes after it ends)"
    )


class AuditExportAccepted(Model):
    export_id: str
    status: str
    since: datetime = Field(description="The range exported: whole digest periods (hours) covering the request")
    until: datetime


class AuditExportCounts(Model):
    periods: int = Field(description="Digest periods (hours) in the export")
    entries: int
    files: int = Field(description="Files listed in the manifest")
    bytes: int = Field(description="Bytes of the files listed in the manifest")


class AuditExportFile(Model):
    path: str = Field(description="Path below the export's prefix (entries/, digests/, public-keys/)")
    size: int
    sha256: str
    url: str = Field(description="Presigned GET link")


class AuditExportOutput(Model):
    export_id: str
    status: str = Field(description="running, ready or failed")
    requested_since: datetime
    requested_until: datetime
    since: datetime
    until: datetime
    requested_by: str
    requested_at: datetime
    finished_at: datetime | None = None
    counts: AuditExportCounts | None = None
    error: str | None = None
    links_expire_at: datetime | None = None
    manifest: AuditExportFile | None = None
    files: list[AuditExportFile] = Field(default_factory=list)
    verify: str | None = Field(
        default=None, description="The command that verifies the downloaded export (paths relative to its folder)"
    )
