"""GET /v1/me: who the verified token says the caller is, a person or a machine client; audited."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.platform.logic.identity import who_am_i
from functions.platform.models.env import AuditedApiSettings
from functions.platform.models.output import MeOutput
from shared.audit import DynamoAuditLog
from shared.auth import Role, Scope
from shared.http import SECURED, build_resolver, error_responses, ok_response, request_context
from shared.observability import logger, metrics, tracer
from shared.settings import load_settings

app = build_resolver()


@app.get(
    "/v1/me",
    summary="Who am I",
    description=(
        "The tenant, kind of actor (a person's ID token or an integration's access token), subject, roles and "
        "scopes of the verified token. Every call is written to the audit trail."
    ),
    responses={**ok_response(MeOutput, "The caller's identity"), **error_responses(401, 403, 500, 503)},
    tags=["platform"],
    security=SECURED,
)
def get_me() -> MeOutput:
    settings = load_settings(AuditedApiSettings)
    request = request_context(app)
    identity = who_am_i(
        request.actor,
        request_id=request.request_id,
        source_ip=request.source_ip,
        audit=DynamoAuditLog(settings.AUDIT_TABLE_NAME),
    )
    metrics.add_metric(name="IdentityReads", unit="Count", value=1)
    return MeOutput(
        tenant=identity.tenant,
        actor=identity.kind,
        subject=identity.subject,
        username=identity.username,
        roles=[Role(role) for role in identity.roles],
        scopes=[Scope(scope) for scope in identity.scopes],
    )


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
