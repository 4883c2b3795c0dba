"""POST /v1/webhooks/sendgrid-inbound/{tenant}: SendGrid Inbound Parse (multipart/form-data; the raw MIME when
the parse setting posts it), signed like the Event Webhook by the security policy attached to the setting."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.messages.handlers._receiver import RECEIPTS, ReceiverSettings, receive_webhook
from functions.messages.logic.verifiers import SendGridVerifier
from shared.http import build_resolver
from shared.observability import logger, metrics, tracer

SAMPLE_EVENT = "apigw_post_webhook_sendgrid_inbound.json"
__all__ = ["ReceiverSettings", "lambda_handler"]

app = build_resolver()


@app.post("/v1/webhooks/sendgrid-inbound/<tenant>", enable_validation=False, responses=RECEIPTS)
def post_inbound(tenant: str) -> Response[dict[str, Any]]:
    return receive_webhook(app.current_event.raw_event, SendGridVerifier(provider="sendgrid-inbound"))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
