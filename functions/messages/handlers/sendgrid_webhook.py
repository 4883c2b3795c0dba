"""POST /v1/webhooks/sendgrid/{tenant}: SendGrid's Event Webhook, a JSON array of events signed with the tenant's
ECDSA verification key (functions/messages/logic/verifiers.py); queued for the ingest consumer."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.messages.handlers._receiver import RECEIPTS, ReceiverSettings, receive_webhook
from functions.messages.logic.verifiers import SendGridVerifier
from shared.http import build_resolver
from shared.observability import logger, metrics, tracer

SAMPLE_EVENT = "apigw_post_webhook_sendgrid.json"
__all__ = ["ReceiverSettings", "lambda_handler"]

app = build_resolver()


# The signature is over the raw body, so the route reads the event itself: no Powertools body validation.
@app.post("/v1/webhooks/sendgrid/<tenant>", enable_validation=False, responses=RECEIPTS)
def post_sendgrid(tenant: str) -> Response[dict[str, Any]]:
    return receive_webhook(app.current_event.raw_event, SendGridVerifier())


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
