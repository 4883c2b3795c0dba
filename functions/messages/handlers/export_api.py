"""The eDiscovery export API (compliance officers and auditors: `messages:export`).

- POST /v1/message-exports: export the messages the search filters select; answered 202 with the export id, the
  export itself runs as a workflow (functions/messages/handlers/export_worker.py).
- GET /v1/message-exports/{export_id}: its status and counts and, once it succeeded, presigned links (15 minutes)
  to its manifest and to a listing of its files.
- GET /v1/message-exports/{export_id}/file?path=<path in the manifest>: a presigned link to one of its files.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import Field

from functions.messages.dal.exports import DynamoExportStore
from functions.messages.handlers import _params as params
from functions.messages.models.export_io import (
    ExportAccepted,
    ExportCountsOutput,
    ExportFilters,
    ExportFiltersOutput,
    ExportLink,
    ExportOutput,
    ExportRequestBody,
    ManifestLink,
)
from shared.audit import DynamoAuditLog
from shared.http import SECURED, build_resolver, error_responses, request_context
from shared.observability import logger, metrics, tracer
from shared.settings import BaseSettings, load_settings

if TYPE_CHECKING:
    # The use cases are imported by the route that runs them: the export's rendering and search code is not a
    # cold start's (benchmarks/cold_start.py).
    from functions.messages.logic.export import ExportView


class ExportApiSettings(BaseSettings):
    MESSAGES_TABLE_NAME: str = Field(min_length=3)
    AUDIT_TABLE_NAME: str = Field(min_length=3)
    EVENT_BUS_NAME: str = Field(min_length=1)
    EXPORT_BUCKET_NAME: str = Field(min_length=3)
    DATA_KEY_ARN: str = Field(min_length=1)


app = build_resolver()
_TAGS = ["messages"]


def _store(settings: ExportApiSettings) -> DynamoExportStore:
    # The data key seals (and opens) the words of a text export in the job item; KMS is called only for those.
    from shared.crypto import FieldCipher

    return DynamoExportStore(settings.MESSAGES_TABLE_NAME, cipher=FieldCipher(settings.DATA_KEY_ARN))


def _output(view: ExportView) -> ExportOutput:
    job, f, c = view.job, view.job.filters, view.job.counts
    manifest = listing = None
    if view.manifest_url and view.links_expire_at and job.manifest:
        manifest = ManifestLink(
            url=view.manifest_url,
            expires_at=view.links_expire_at,
            size=job.manifest.size,
            sha256=job.manifest.sha256,
        )
    if view.listing_url and view.links_expire_at:
        listing = ExportLink(url=view.listing_url, expires_at=view.links_expire_at)
    return ExportOutput(
        export_id=job.export_id,
        status=job.status,
        filters=ExportFiltersOutput(
            candidate_id=f.candidate_id,
            requisition_id=f.requisition_id,
            status=f.status,
            channel=f.channel,
            since=f.since,
            until=f.until,
            q=f.text,
        ),
        docid_prefix=job.docid_prefix,
        content_included=job.content_included,
        requested_by=job.requested_by,
        requested_at=job.requested_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        segments=len(job.segments),
        counts=ExportCountsOutput(
            documents=c.documents,
            emails=c.emails,
            other_channels=c.others,
            content_included=c.included,
            content_withheld=c.withheld,
            content_not_kept=c.not_kept,
            content_redacted=c.redacted,
            content_unreadable=c.unreadable,
            bytes=c.bytes,
        ),
        error=job.error,
        manifest=manifest,
        listing=listing,
    )


@app.post(
    "/v1/message-exports",
    summary="Export messages for eDiscovery",
    description=(
        "The filters of GET /v1/messages; every message they select is written to the export bucket: natives "
        "(.eml) for email, JSON lines for the other channels, CSV and Concordance DAT load files and a manifest "
        "with each file's SHA-256. Content only for a requester holding messages:content:read. Asynchronous: "
        "poll GET /v1/message-exports/{export_id}."
    ),
    responses={202: {"description": "Started"}, **error_responses(400, 401, 403, 503)},
    tags=_TAGS,
    security=SECURED,
)
def post_export(body: ExportRequestBody) -> Response[ExportAccepted]:
    from functions.messages.logic.export import start_export
    from functions.messages.models.events import SOURCE
    from shared.events import bus_publisher

    settings = load_settings(ExportApiSettings)
    request = request_context(app)
    job = start_export(
        request.actor,
        ExportFilters(
            candidate_id=body.candidate_id,
            requisition_id=body.requisition_id,
            status=body.status,
            channel=body.channel,
            since=body.since,
            until=body.until,
            text=body.q,
        ),
        docid_prefix=body.docid_prefix,
        store=_store(settings),
        publisher=bus_publisher(settings.EVENT_BUS_NAME, SOURCE),
        audit=DynamoAuditLog(settings.AUDIT_TABLE_NAME),
        request_id=request.request_id,
        source_ip=request.source_ip,
    )
    return Response(
        status_code=202,
        content_type=content_types.APPLICATION_JSON,
        body=ExportAccepted(export_id=job.export_id, status=job.status),
        headers={"Location": f"/v1/message-exports/{job.export_id}"},
    )


@app.get(
    "/v1/message-exports/<export_id>",
    summary="Read an export",
    description="Its status and counts; once succeeded, presigned links (15 minutes) to its manifest and listing.",
    responses={200: {"description": "The export"}, **error_responses(401, 403, 404)},
    tags=_TAGS,
    security=SECURED,
)
def get_export(export_id: str) -> ExportOutput:
    from functions.messages.dal.export_files import S3ExportLinks
    from functions.messages.logic.export import read_export

    settings = load_settings(ExportApiSettings)
    request = request_context(app)
    view = read_export(
        request.actor,
        export_id,
        store=_store(settings),
        audit=DynamoAuditLog(settings.AUDIT_TABLE_NAME),
        request_id=request.request_id,
        links=S3ExportLinks(settings.EXPORT_BUCKET_NAME),
        source_ip=request.source_ip,
    )
    return _output(view)


@app.get(
    "/v1/message-exports/<export_id>/file",
    summary="Link to one file of an export",
    description=(
        "A presigned link (15 minutes) to one file of a succeeded export, named by the query parameter `path`, "
        "its path in the manifest (`native/ACME-00000001.eml`, `loadfile.csv`, ...). 400 for a path no export "
        "holds, 409 while the export is not done. Audited."
    ),
    responses={200: {"description": "The link"}, **error_responses(400, 401, 403, 404, 409)},
    tags=_TAGS,
    security=SECURED,
)
def get_export_file(export_id: str) -> ExportLink:
    from functions.messages.dal.export_files import S3ExportLinks
    from functions.messages.logic.export import file_link

    settings = load_settings(ExportApiSettings)
    request = request_context(app)
    url, expires_at = file_link(
        request.actor,
        export_id,
        params.text(app, "path") or "",
        store=_store(settings),
        audit=DynamoAuditLog(settings.AUDIT_TABLE_NAME),
        request_id=request.request_id,
        links=S3ExportLinks(settings.EXPORT_BUCKET_NAME),
        source_ip=request.source_ip,
    )
    return ExportLink(url=url, expires_at=expires_at)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
