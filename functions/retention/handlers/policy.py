"""GET /v1/retention-policy: the tenant's retention policy (the defaults, version 0, until one is set) and the
seed's bounds. PUT /v1/retention-policy: company and account admins change it (optimistic, audited, published
as `RetentionPolicyChanged`)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import Field

from functions.retention.dal.adapters import retention_publisher
from functions.retention.dal.policy import DynamoPolicyStore
from functions.retention.logic.policy import PERIODS, PolicyChange, change_policy, get_policy
from functions.retention.models.policy_io import PolicyChangeOutput, PolicyOutput, PolicyUpdate
from shared.audit import DynamoAuditLog
from shared.http import SECURED, build_resolver, error_responses, ok_response, request_context
from shared.observability import logger, metrics, tracer
from shared.settings import BaseSettings, load_settings


class PolicyApiSettings(BaseSettings):
    RETENTION_TABLE_NAME: str = Field(min_length=3)
    AUDIT_TABLE_NAME: str = Field(min_length=3)
    EVENT_BUS_NAME: str = Field(min_length=1)


app = build_resolver()


@app.get(
    "/v1/retention-policy",
    summary="Read the retention policy",
    description=(
        "The caller's tenant's retention policy, or the defaults (the seed's upper limits) with `version` 0 while "
        "none was set, and the bound of each period. Audited."
    ),
    responses={**ok_response(PolicyOutput, "The policy and its bounds"), **error_responses(401, 403, 500, 503)},
    tags=["retention"],
    security=SECURED,
)
def read_policy() -> PolicyOutput:
    settings = load_settings(PolicyApiSettings)
    request = request_context(app)
    policy = get_policy(
        request.actor,
        store=DynamoPolicyStore(settings.RETENTION_TABLE_NAME),
        audit=DynamoAuditLog(settings.AUDIT_TABLE_NAME),
        request_id=request.request_id,
        source_ip=request.source_ip,
    )
    return PolicyOutput.of(policy)


@app.put(
    "/v1/retention-policy",
    summary="Change the retention policy",
    description=(
        "Company and account admins only. Each period must lie within the seed's bound (400 naming it). "
        "`expected_version` is the version read; a change made meanwhile is a 409. The change is audited and "
        "published as `RetentionPolicyChanged`; due dates it shortens are recomputed, and reported, by a workflow."
    ),
    responses={
        **ok_response(PolicyChangeOutput, "Changed"),
        **error_responses(400, 401, 403, 409, 500, 503),
    },
    tags=["retention"],
    security=SECURED,
)
def put_policy(update: PolicyUpdate) -> PolicyChangeOutput:
    settings = load_settings(PolicyApiSettings)
    request = request_context(app)
    policy, shortened = change_policy(
        request.actor,
        PolicyChange(
            periods={name: getattr(update, name) for name in PERIODS},
            fingerprint_fields=update.fingerprint_fields,
            notification_url=update.notification_url,
            expected_version=update.expected_version,
        ),
        store=DynamoPolicyStore(settings.RETENTION_TABLE_NAME),
        audit=DynamoAuditLog(settings.AUDIT_TABLE_NAME),
        publisher=retention_publisher(settings.EVENT_BUS_NAME),
        request_id=request.request_id,
        source_ip=request.source_ip,
    )
    metrics.add_metric(name="RetentionPolicyChanged", unit="Count", value=1)
    return PolicyChangeOutput.changed(policy, shortened)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
