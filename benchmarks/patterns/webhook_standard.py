"""The signed-webhook pattern as a domain uses it: POST /v1/webhooks/standard/{tenant}, verified over the raw body
with the tenant's secret (Standard Webhooks), deduplicated, stored in the durable queue, then answered."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import Field

from shared.audit import DynamoAuditLog
from shared.http import build_resolver
from shared.observability import logger, metrics, tracer
from shared.secrets import TenantSecrets
from shared.settings import BaseSettings, load_settings
from shared.webhooks import DynamoReplayGuard, SqsDeliverySink, StandardWebhooksVerifier, receive

SAMPLE_EVENT = "apigw_post_webhook_standard.json"

app = build_resolver()


class WebhookSettings(BaseSettings):
    WEBHOOK_QUEUE_URL: str = Field(min_length=1)
    TENANT_SECRET_PREFIX: str = Field(min_length=1)
    PLATFORM_TABLE_NAME: str = Field(min_length=3)
    AUDIT_TABLE_NAME: str = Field(min_length=3)


# The signature is over the raw body, so the route reads the event itself: no Powertools body validation.
@app.post("/v1/webhooks/standard/<tenant>", enable_validation=False)
def post_webhook(tenant: str) -> Response[dict[str, Any]]:
    settings = load_settings(WebhookSettings)
    receipt = receive(
        app.current_event.raw_event,
        verifier=StandardWebhooksVerifier(),
        secrets=TenantSecrets(settings.TENANT_SECRET_PREFIX),
        replay=DynamoReplayGuard(settings.PLATFORM_TABLE_NAME),
        sink=SqsDeliverySink(settings.WEBHOOK_QUEUE_URL),
        audit=DynamoAuditLog(settings.AUDIT_TABLE_NAME),
    )
    return Response(receipt.status, content_types.APPLICATION_JSON, receipt.body())


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
