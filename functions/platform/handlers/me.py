"""GET /v1/me: the caller's tenant, subject and roles, from the verified token; audited."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.platform.logic.identity import who_am_i
from functions.platform.models.env import AuditedApiSettings
from functions.platform.models.output import MeOutput
from shared.audit import DynamoAuditLog
from shared.auth import Role
from shared.http import SECURED, build_resolver, error_responses, ok_response, request_context
from shared.observability import logger, metrics, tracer
from shared.settings import load_settings

app = build_resolver()


@app.get(
    "/v1/me",
    summary="Who am I",
    description="The tenant, subject and roles of the verified token. Every call is written to the audit trail.",
    responses={**ok_response(MeOutput, "The caller's identity"), **error_responses(401, 403, 500, 503)},
    tags=["platform"],
    security=SECURED,
)
def get_me() -> MeOutput:
    settings = load_settings(AuditedApiSettings)
    identity = who_am_i(request_context(app), DynamoAuditLog(settings.AUDIT_TABLE_NAME))
    metrics.add_metric(name="IdentityReads", unit="Count", value=1)
    return MeOutput(
        tenant=identity.tenant,
        subject=identity.subject,
        username=identity.username,
        roles=[Role(role) for role in identity.roles],
    )


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
