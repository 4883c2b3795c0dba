"""Legal holds on a person, an application or a vacancy (compliance officers and company admins):
PUT /v1/legal-holds/{hold_id} (idempotent on the hold id), GET /v1/legal-holds/{hold_id}, GET /v1/legal-holds
(active by default, `?status=all`, cursor pagination) and POST /v1/legal-holds/{hold_id}/release. Audited;
placing and releasing publish `LegalHoldChanged`."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import Field

from functions.retention.dal.adapters import retention_publisher
from functions.retention.dal.holds import DynamoHoldStore
from functions.retention.logic.holds import HoldRequest, get_hold, list_holds, place_hold, release_hold
from functions.retention.models.holds import HoldInput, HoldOutput, HoldPage, LegalHold, ReleaseInput
from shared.audit import DynamoAuditLog
from shared.http import SECURED, build_resolver, error_responses, ok_response, request_context
from shared.observability import logger, metrics, tracer
from shared.settings import BaseSettings, load_settings


class HoldsApiSettings(BaseSettings):
    """Legal holds on people, applications and vacancies."""

    RETENTION_TABLE_NAME: str = Field(min_length=3)
    AUDIT_TABLE_NAME: str = Field(min_length=3)
    EVENT_BUS_NAME: str = Field(min_length=1)


app = build_resolver()


def _output(hold: LegalHold, records: int | None = None) -> HoldOutput:
    return HoldOutput(
        hold_id=hold.hold_id,
        subject_kind=hold.subject_kind,
        subject_id=hold.subject_id,
        vacancy_id=hold.vacancy_id,
        reason=hold.reason,
        owner=hold.owner,
        review_at=hold.review_at,
        placed_at=hold.placed_at,
        placed_by=hold.placed_by,
        active=hold.active,
        released_at=hold.released_at,
        released_by=hold.released_by,
        release_reason=hold.release_reason,
        records_held=records,
    )


@app.put(
    "/v1/legal-holds/<hold_id>",
    summary="Place a legal hold",
    description=(
        "Holds a person, an application or a vacancy: nothing it covers is removed, by the schedule or by the "
        "applicant's own erasure, until it is released (GDPR Art. 17(3)(e)). Idempotent on the hold id; the same id "
        "with other facts, or a released id, is a 409. The subject must exist (404). Compliance officers and "
        "company admins."
    ),
    responses={
        **ok_response(HoldOutput, "Already placed: unchanged"),
        201: {"description": "Placed", "content": {"application/json": {"model": HoldOutput}}},
        **error_responses(400, 401, 403, 404, 409, 500, 503),
    },
    tags=["retention"],
    security=SECURED,
)
def put_legal_hold(hold_id: str, body: HoldInput) -> Response[HoldOutput]:
    settings = load_settings(HoldsApiSettings)
    request = request_context(app)
    hold, records, created = place_hold(
        request.actor,
        hold_id,
        HoldRequest(
            subject_kind=body.subject_kind,
            subject_id=body.subject_id,
            vacancy_id=body.vacancy_id,
            reason=body.reason,
            owner=body.owner,
            review_at=body.review_at,
        ),
        store=DynamoHoldStore(settings.RETENTION_TABLE_NAME),
        audit=DynamoAuditLog(settings.AUDIT_TABLE_NAME),
        publisher=retention_publisher(settings.EVENT_BUS_NAME),
        request_id=request.request_id,
        source_ip=request.source_ip,
    )
    return Response(
        status_code=201 if created else 200,
        content_type=content_types.APPLICATION_JSON,
        body=_output(hold, records),
    )


@app.get(
    "/v1/legal-holds/<hold_id>",
    summary="Read a legal hold",
    description="One hold of the caller's tenant, active or released; another tenant's id answers 404. Audited.",
    responses={**ok_response(HoldOutput, "The hold"), **error_responses(400, 401, 403, 404, 500, 503)},
    tags=["retention"],
    security=SECURED,
)
def read_legal_hold(hold_id: str) -> HoldOutput:
    settings = load_settings(HoldsApiSettings)
    request = request_context(app)
    hold = get_hold(
        request.actor,
        hold_id,
        store=DynamoHoldStore(settings.RETENTION_TABLE_NAME),
        audit=DynamoAuditLog(settings.AUDIT_TABLE_NAME),
        request_id=request.request_id,
        source_ip=request.source_ip,
    )
    return _output(hold)


@app.get(
    "/v1/legal-holds",
    summary="List legal holds",
    description=(
        "The caller's tenant's holds in hold-id order: active ones by default, `status=all` for released ones too. "
        "`limit` 1 to 100 (default 50); pass `next_cursor` back as `cursor` for the next page."
    ),
    responses={**ok_response(HoldPage, "A page of holds"), **error_responses(400, 401, 403, 500, 503)},
    tags=["retention"],
    security=SECURED,
)
def list_legal_holds(status: str = "active", limit: int = 50, cursor: str | None = None) -> HoldPage:
    settings = load_settings(HoldsApiSettings)
    request = request_context(app)
    holds, next_cursor = list_holds(
        request.actor,
        status=status,
        limit=limit,
        cursor=cursor,
        store=DynamoHoldStore(settings.RETENTION_TABLE_NAME),
        audit=DynamoAuditLog(settings.AUDIT_TABLE_NAME),
        request_id=request.request_id,
        source_ip=request.source_ip,
    )
    return HoldPage(holds=[_output(h) for h in holds], next_cursor=next_cursor)


@app.post(
    "/v1/legal-holds/<hold_id>/release",
    summary="Release a legal hold",
    description=(
        "Ends the hold: its records follow their timelines again (what fell due meanwhile goes on the next sweep). "
        "A repeat returns the first release."
    ),
    responses={**ok_response(HoldOutput, "Released"), **error_responses(400, 401, 403, 404, 500, 503)},
    tags=["retention"],
    security=SECURED,
)
def release_legal_hold(hold_id: str, body: ReleaseInput) -> HoldOutput:
    settings = load_settings(HoldsApiSettings)
    request = request_context(app)
    hold, records = release_hold(
        request.actor,
        hold_id,
        body.reason,
        store=DynamoHoldStore(settings.RETENTION_TABLE_NAME),
        audit=DynamoAuditLog(settings.AUDIT_TABLE_NAME),
        publisher=retention_publisher(settings.EVENT_BUS_NAME),
        request_id=request.request_id,
        source_ip=request.source_ip,
    )
    return _output(hold, records)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
