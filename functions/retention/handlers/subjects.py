"""The applicant's self-service and its receipts.

- POST /v1/people/{person_id}/self-service-links: the ATS (scope `ats/retention.write`) asks for a one-time,
  signed, short-lived link for one of its applicants.
- POST /v1/self-service/access, /leave-talent-pool, /erasure: public (no authorizer). The token is the
  credential and travels in the JSON body, never in the path or query (URLs reach access logs and histories).
- GET /v1/subject-requests/{request_id}: a receipt (people and integrations that read retention records).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import Field

from functions.retention.dal.adapters import retention_publisher, tenant_keys
from functions.retention.dal.subjects import DynamoSubjectStore
from functions.retention.dal.vault import PersonVault
from functions.retention.logic.links import issue_link, redeem_link
from functions.retention.logic.subjects import (
    ACCESS,
    ERASURE,
    LEAVE,
    ExportStore,
    SubjectPorts,
    erase,
    get_receipt,
    leave_talent_pool,
    new_request_id,
    subject_access,
)
from functions.retention.models.subjects_io import (
    AccessOutput,
    LinkInput,
    LinkOutput,
    ReceiptOutput,
    SelfServiceInput,
    SubjectRequest,
)
from shared.audit import DynamoAuditLog
from shared.http import SECURED, build_resolver, error_responses, ok_response, request_context
from shared.observability import logger, metrics, tracer
from shared.settings import BaseSettings, load_settings


class SubjectApiSettings(BaseSettings):
    """Legal holds, self-service links and the applicant's own requests (access, leave the pool, erasure)."""

    RETENTION_TABLE_NAME: str = Field(min_length=3)
    RETENTION_KEYS_TABLE_NAME: str = Field(min_length=3)
    DATA_KEY_ARN: str = Field(min_length=1)
    TENANT_SECRET_PREFIX: str = Field(min_length=1)
    AUDIT_TABLE_NAME: str = Field(min_length=3)
    EVENT_BUS_NAME: str = Field(min_length=1)
    ARCHIVE_BUCKET_NAME: str = Field(min_length=3)


app = build_resolver()


_PUBLIC = ["retention", "self-service"]


def _receipt(request: SubjectRequest) -> ReceiptOutput:
    return ReceiptOutput(
        request_id=request.request_id,
        kind=request.kind,
        person_id=request.person_id,
        status=request.status,
        received_at=request.received_at,
        deadline_at=request.deadline_at,
        completed_at=request.completed_at,
        seconds_taken=request.seconds_taken,
        removed={k: v for k, v in request.removed.model_dump().items() if v},
        blocking_holds=sorted(request.blocking_holds),
        export_key=request.export_key,
    )


def _exports(bucket: str) -> ExportStore:
    # Imported on a request's first use: the S3 client is the heaviest to create (its client is lazy too).
    from functions.retention.dal.exports import S3ExportStore

    return S3ExportStore(bucket)


def _ports(settings: SubjectApiSettings) -> SubjectPorts:
    return SubjectPorts(
        store=DynamoSubjectStore(settings.RETENTION_TABLE_NAME),
        vault=PersonVault(settings.RETENTION_KEYS_TABLE_NAME, settings.DATA_KEY_ARN),
        exports=_exports(settings.ARCHIVE_BUCKET_NAME),
        audit=DynamoAuditLog(settings.AUDIT_TABLE_NAME),
        publisher=retention_publisher(settings.EVENT_BUS_NAME),
    )


def _redeem(token: str, purpose: str, ports: SubjectPorts, subject_request_id: str) -> Any:
    settings = load_settings(SubjectApiSettings)
    event = app.current_event
    return redeem_link(
        token,
        purpose,
        store=ports.store,
        signer=tenant_keys(settings.TENANT_SECRET_PREFIX),
        audit=ports.audit,
        request_id=event.request_context.request_id,
        subject_request_id=subject_request_id,
        source_ip=event.request_context.identity.source_ip,
    )


@app.post(
    "/v1/people/<person_id>/self-service-links",
    summary="Issue a self-service link",
    description=(
        "A one-time, signed link for the applicant to see, or remove, their data without an account: valid once, "
        "for `ttl_minutes` (default 60, at most 1440). Hand the token to the applicant only. Machine clients with "
        "the scope `ats/retention.write`; the person must be known (404)."
    ),
    responses={
        201: {"description": "Issued", "content": {"application/json": {"model": LinkOutput}}},
        **error_responses(400, 401, 403, 404, 500, 503),
    },
    tags=["retention"],
    security=SECURED,
)
def post_self_service_link(person_id: str, body: LinkInput) -> Response[LinkOutput]:
    settings = load_settings(SubjectApiSettings)
    request = request_context(app)
    link = issue_link(
        request.actor,
        person_id,
        body.ttl_minutes,
        store=DynamoSubjectStore(settings.RETENTION_TABLE_NAME),
        signer=tenant_keys(settings.TENANT_SECRET_PREFIX),
        audit=DynamoAuditLog(settings.AUDIT_TABLE_NAME),
        request_id=request.request_id,
        source_ip=request.source_ip,
    )
    return Response(
        status_code=201,
        content_type=content_types.APPLICATION_JSON,
        body=LinkOutput(link_id=link.link_id, token=link.token, expires_at=link.expires_at),
    )


@app.post(
    "/v1/self-service/access",
    summary="See what is held about me (subject access)",
    description=(
        "GDPR Art. 15: the applicant's data, applications, candidacies, registrations and the retention dates that "
        "apply, inline and stored as `export_key`. No account: the one-time token in the JSON body is the "
        "credential, and this consumes it."
    ),
    responses={
        **ok_response(AccessOutput, "The export and its receipt"),
        **error_responses(401, 500, 503),
    },
    tags=_PUBLIC,
)
def post_subject_access(body: SelfServiceInput) -> AccessOutput:
    settings = load_settings(SubjectApiSettings)
    ports = _ports(settings)
    request_id = new_request_id()
    link = _redeem(body.token, ACCESS, ports, request_id)
    done, export = subject_access(
        link, ports=ports, request_id=request_id, api_request_id=app.current_event.request_context.request_id
    )
    return AccessOutput(receipt=_receipt(done), export=export, export_key=str(done.export_key))


@app.post(
    "/v1/self-service/leave-talent-pool",
    summary="Leave the talent pool",
    description=(
        "Removes the applicant's talent-pool registrations and suggested candidacies (invited and applied ones are "
        "kept for reporting); their data goes once no application needs it. Records under a legal hold stay "
        "(status `held`). The one-time token in the JSON body is the credential."
    ),
    responses={
        **ok_response(ReceiptOutput, "The receipt"),
        **error_responses(401, 500, 503),
    },
    tags=_PUBLIC,
)
def post_leave_talent_pool(body: SelfServiceInput) -> ReceiptOutput:
    settings = load_settings(SubjectApiSettings)
    ports = _ports(settings)
    request_id = new_request_id()
    link = _redeem(body.token, LEAVE, ports, request_id)
    done = leave_talent_pool(
        link, ports=ports, request_id=request_id, api_request_id=app.current_event.request_context.request_id
    )
    metrics.add_metric(name="TalentPoolLeft", unit="Count", value=1)
    return _receipt(done)


@app.post(
    "/v1/self-service/erasure",
    summary="Erase me",
    description=(
        "GDPR Art. 17: erases the applicant entirely. Applications leave an anonymised reporting copy; duplicate "
        "fingerprints stay. Whatever a legal hold covers is kept (Art. 17(3)(e)): the receipt's status is `held` "
        "and `blocking_holds` names the holds. The one-time token in the JSON body is the credential."
    ),
    responses={
        **ok_response(ReceiptOutput, "The receipt"),
        **error_responses(401, 500, 503),
    },
    tags=_PUBLIC,
)
def post_erasure(body: SelfServiceInput) -> ReceiptOutput:
    settings = load_settings(SubjectApiSettings)
    ports = _ports(settings)
    request_id = new_request_id()
    link = _redeem(body.token, ERASURE, ports, request_id)
    done = erase(link, ports=ports, request_id=request_id, api_request_id=app.current_event.request_context.request_id)
    metrics.add_metric(name="SelfErasures", unit="Count", value=1)
    return _receipt(done)


@app.get(
    "/v1/subject-requests/<request_id>",
    summary="Read a subject request's receipt",
    description=(
        "What an applicant's request (access, leave the talent pool, erasure) did and when: received, deadline "
        "(one month, GDPR Art. 12(3)), completed, seconds taken, counts removed, holds that kept records."
    ),
    responses={**ok_response(ReceiptOutput, "The receipt"), **error_responses(400, 401, 403, 404, 500, 503)},
    tags=["retention"],
    security=SECURED,
)
def read_subject_request(request_id: str) -> ReceiptOutput:
    settings = load_settings(SubjectApiSettings)
    request = request_context(app)
    found = get_receipt(
        request.actor,
        request_id,
        store=DynamoSubjectStore(settings.RETENTION_TABLE_NAME),
        audit=DynamoAuditLog(settings.AUDIT_TABLE_NAME),
        api_request_id=request.request_id,
        source_ip=request.source_ip,
    )
    return _receipt(found)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
