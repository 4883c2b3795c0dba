"""Auditor exports of the audit trail (issue 13, section 8; docs/audit-exports.md): a Powertools `Router` the audit
API function (functions/audit/handlers/api.py) includes.

- POST /v1/audit-exports: export a time range (`audit:export`: compliance officers, and auditors holding a grant);
  answered 202 with the export id and the range aligned to whole digest periods; the export is written by the
  worker (functions/audit/handlers/export_worker.py).
- GET /v1/audit-exports/{export_id}: its status and counts and, once ready, presigned links (15 minutes) to its
  manifest and every file. Every read is authorized and audited; another tenant's export is a 404.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from pydantic import Field

from functions.audit.models.export_io import (
    AuditExportAccepted,
    AuditExportCounts,
    AuditExportFile,
    AuditExportOutput,
    AuditExportRequest,
)
from shared import clock
from shared.audit import DynamoAuditLog
from shared.http import SECURED, RequestContext, error_responses, request_context
from shared.settings import BaseSettings, load_settings

if TYPE_CHECKING:
    from functions.audit.logic.export import ExportLink, ExportView

router = Router()
_TAGS = ["audit"]


class AuditExportSettings(BaseSettings):
    AUDIT_TABLE_NAME: str = Field(min_length=3)
    EXPORT_BUCKET_NAME: str = Field(min_length=3)
    AUDIT_EXPORT_WORKER_NAME: str = Field(min_length=1)


def _request() -> RequestContext:
    return request_context(cast(Any, router))  # the router answers for the resolver that included it


def _file(link: ExportLink) -> AuditExportFile:
    return AuditExportFile(path=link.path, size=link.size, sha256=link.sha256, url=link.url)


def _output(view: ExportView) -> AuditExportOutput:
    job, result = view.job, view.job.result
    return AuditExportOutput(
        export_id=job.export_id,
        status=job.status.value,
        requested_since=job.range.requested_since,
        requested_until=job.range.requested_until,
        since=job.range.start,
        until=job.range.end,
        requested_by=job.requested_by,
        requested_at=job.requested_at,
        finished_at=job.finished_at,
        counts=(
            AuditExportCounts(periods=result.periods, entries=result.entries, files=result.files, bytes=result.bytes)
            if result
            else None
        ),
        error=job.error,
        links_expire_at=view.links_expire_at,
        manifest=_file(view.manifest) if view.manifest else None,
        files=[_file(link) for link in view.files],
        verify=view.verify,
    )


@router.post(
    "/v1/audit-exports",
    summary="Export the audit trail",
    description=(
        "Exports the audit entries of a time range, widened to whole digest periods (hours), with the signed "
        "digests they chain to, the public key and a manifest of SHA-256 hashes, into the Object Lock bucket. "
        "At most 31 days, ending at least 15 minutes ago once widened. Asynchronous: poll "
        "GET /v1/audit-exports/{export_id}. Verify the download with `ats-audit verify`."
    ),
    responses={202: {"description": "Started"}, **error_responses(400, 401, 403, 503)},
    tags=_TAGS,
    security=SECURED,
)
def post_audit_export(body: AuditExportRequest) -> Response[AuditExportAccepted]:
    from functions.audit.dal.exports import DynamoExportJobs, LambdaExportStarter
    from functions.audit.logic.export import request_export

    settings = load_settings(AuditExportSettings)
    request = _request()
    job = request_export(
        request.actor,
        body.since,
        body.until,
        jobs=DynamoExportJobs(settings.AUDIT_TABLE_NAME),
        starter=LambdaExportStarter(settings.AUDIT_EXPORT_WORKER_NAME),
        audit=DynamoAuditLog(settings.AUDIT_TABLE_NAME),
        request_id=request.request_id,
        source_ip=request.source_ip,
        now=clock.now(),
    )
    return Response(
        status_code=202,
        content_type=content_types.APPLICATION_JSON,
        body=AuditExportAccepted(
            export_id=job.export_id, status=job.status.value, since=job.range.start, until=job.range.end
        ),
        headers={"Location": f"/v1/audit-exports/{job.export_id}"},
    )


@router.get(
    "/v1/audit-exports/<export_id>",
    summary="Read an audit export",
    description=(
        "Its status (running, ready, failed) and counts; once ready, presigned links (15 minutes) to its manifest "
        "and every file, and the `ats-audit verify` command for the download. Every read is audited."
    ),
    responses={200: {"description": "The export"}, **error_responses(401, 403, 404)},
    tags=_TAGS,
    security=SECURED,
)
def get_audit_export(export_id: str) -> AuditExportOutput:
    from functions.audit.dal.export_files import S3ExportFiles, S3ExportLinks
    from functions.audit.dal.exports import DynamoExportJobs
    from functions.audit.logic.export import read_export

    settings = load_settings(AuditExportSettings)
    request = _request()
    view = read_export(
        request.actor,
        export_id,
        jobs=DynamoExportJobs(settings.AUDIT_TABLE_NAME),
        files=S3ExportFiles(settings.EXPORT_BUCKET_NAME),
        links=S3ExportLinks(settings.EXPORT_BUCKET_NAME),
        audit=DynamoAuditLog(settings.AUDIT_TABLE_NAME),
        request_id=request.request_id,
        source_ip=request.source_ip,
        now=clock.now(),
    )
    return _output(view)
