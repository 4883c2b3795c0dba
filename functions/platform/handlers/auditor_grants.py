"""Just-in-time auditor access (issue 13, docs/auditor-access.md), compliance officers only:
POST /v1/auditor-grants (give), GET /v1/auditor-grants (list, cursor pagination), GET /v1/auditor-grants/{grant_id}
(read) and POST /v1/auditor-grants/{grant_id}/revoke (end at once). Every call is audited, refusals with their
reason; each use of a grant by its auditor is audited by the permission check, naming the grant."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.platform.dal.auditor_grants import DynamoAuditorGrantStore
from functions.platform.handlers import deprovision
from functions.platform.logic.auditor_grants import (
    GrantRequest,
    get_auditor_grant,
    grant_auditor_access,
    list_auditor_grants,
    revoke_auditor_grant,
)
from functions.platform.models.auditor_grants import (
    AuditorGrantInput,
    AuditorGrantOutput,
    AuditorGrantPage,
    AuditorGrantRevokeInput,
    AuditorGrantsApiSettings,
)
from shared import clock
from shared.access_grants import AuditorGrant
from shared.audit import DynamoAuditLog
from shared.http import SECURED, build_resolver, error_responses, ok_response, request_context
from shared.observability import logger, metrics, tracer
from shared.settings import load_settings

# Parameters are plain annotations (no `Path()`/`Body()` markers): Powertools then loads its validation machinery
# on the first request rather than at import. The grant id's form is checked by the use case (400).

app = build_resolver()
# The access-administration function also deprovisions people (handlers/deprovision.py, a router whose use case is
# imported only when its route runs): both change who may reach the tenant's data, and both validate their input.
app.include_router(deprovision.router)


def _output(grant: AuditorGrant) -> AuditorGrantOutput:
    return AuditorGrantOutput(
        grant_id=grant.grant_id,
        tenant=grant.tenant,
        grantee=grant.grantee,
        resource_kinds=sorted(grant.kinds),
        reason=grant.reason,
        granted_by=grant.granted_by,
        granted_at=grant.granted_at,
        expires_at=grant.expires_at,
        status=grant.status(clock.now()),
        revoked_at=grant.revoked_at,
        revoked_by=grant.revoked_by,
        revoke_reason=grant.revoke_reason,
    )


def _dependencies() -> tuple[DynamoAuditorGrantStore, DynamoAuditLog]:
    settings = load_settings(AuditorGrantsApiSettings)
    return DynamoAuditorGrantStore(settings.PLATFORM_TABLE_NAME), DynamoAuditLog(settings.AUDIT_TABLE_NAME)


@app.post(
    "/v1/auditor-grants",
    summary="Give an auditor time-bound access",
    description=(
        "A compliance officer gives one auditor (by user id) access to resource kinds (`audit`, `messages`, "
        "`retention`, `assets`) of the officer's own tenant, with a reason, until `expires_at` or for "
        "`duration_hours` (15 minutes to 30 days). Without an active grant covering a kind, the auditor role holds "
        "nothing of it. Refused (403, audited with the reason): callers who are not compliance officers or who "
        "also hold `system_admin`, a grant to oneself, a blank reason."
    ),
    responses={
        201: {"description": "Given", "content": {"application/json": {"model": AuditorGrantOutput}}},
        **error_responses(400, 401, 403, 409, 500, 503),
    },
    tags=["platform"],
    security=SECURED,
)
def post_auditor_grant(body: AuditorGrantInput) -> Response[AuditorGrantOutput]:
    store, audit = _dependencies()
    request = request_context(app)
    grant = grant_auditor_access(
        request.actor,
        GrantRequest(
            grantee=body.grantee,
            kinds=frozenset(body.resource_kinds),
            reason=body.reason,
            expires_at=body.expires_at,
            duration=timedelta(hours=body.duration_hours) if body.duration_hours is not None else None,
        ),
        store=store,
        audit=audit,
        request_id=request.request_id,
        source_ip=request.source_ip,
    )
    metrics.add_metric(name="AuditorGrantsGiven", unit="Count", value=1)
    return Response(status_code=201, content_type=content_types.APPLICATION_JSON, body=_output(grant))


@app.get(
    "/v1/auditor-grants",
    summary="List auditor grants",
    description=(
        "The caller's tenant's auditor grants, newest first, each with its status (`active`, `expired`, "
        "`revoked`) at the service clock. `limit` 1 to 100 (default 50); pass `next_cursor` back as `cursor`. "
        "Compliance officers; audited."
    ),
    responses={**ok_response(AuditorGrantPage, "A page of grants"), **error_responses(400, 401, 403, 500, 503)},
    tags=["platform"],
    security=SECURED,
)
def get_auditor_grants(limit: int = 50, cursor: str | None = None) -> AuditorGrantPage:
    store, audit = _dependencies()
    request = request_context(app)
    grants, next_cursor = list_auditor_grants(
        request.actor,
        limit=limit,
        cursor=cursor,
        store=store,
        audit=audit,
        request_id=request.request_id,
        source_ip=request.source_ip,
    )
    return AuditorGrantPage(grants=[_output(g) for g in grants], next_cursor=next_cursor)


@app.get(
    "/v1/auditor-grants/<grant_id>",
    summary="Read an auditor grant",
    description="One grant of the caller's tenant; another tenant's id answers 404. Compliance officers; audited.",
    responses={**ok_response(AuditorGrantOutput, "The grant"), **error_responses(400, 401, 403, 404, 500, 503)},
    tags=["platform"],
    security=SECURED,
)
def get_auditor_grant_by_id(grant_id: str) -> AuditorGrantOutput:
    store, audit = _dependencies()
    request = request_context(app)
    grant = get_auditor_grant(
        request.actor,
        grant_id,
        store=store,
        audit=audit,
        request_id=request.request_id,
        source_ip=request.source_ip,
    )
    return _output(grant)


@app.post(
    "/v1/auditor-grants/<grant_id>/revoke",
    summary="Revoke an auditor grant",
    description=(
        "Ends the grant now, with a reason: the auditor's next request is refused (grants are read at every "
        "check, never cached). A repeat returns the first revocation; an expired grant is a 409. Compliance "
        "officers; audited."
    ),
    responses={**ok_response(AuditorGrantOutput, "Revoked"), **error_responses(400, 401, 403, 404, 409, 500, 503)},
    tags=["platform"],
    security=SECURED,
)
def post_auditor_grant_revoke(grant_id: str, body: AuditorGrantRevokeInput) -> AuditorGrantOutput:
    store, audit = _dependencies()
    request = request_context(app)
    grant = revoke_auditor_grant(
        request.actor,
        grant_id,
        body.reason,
        store=store,
        audit=audit,
        request_id=request.request_id,
        source_ip=request.source_ip,
    )
    metrics.add_metric(name="AuditorGrantsRevoked", unit="Count", value=1)
    return _output(grant)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
