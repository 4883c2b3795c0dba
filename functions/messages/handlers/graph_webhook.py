"""POST /v1/webhooks/graph/{tenant}: Microsoft Graph change notifications for Teams chat and channel messages.

A subscription's validation request (`?validationToken=...`) is answered with the token, 200 text/plain, as
Graph requires within 10 seconds; a notification must carry the tenant's `clientState` in every item."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.messages.handlers._receiver import RECEIPTS, ReceiverSettings, receive_webhook
from functions.messages.logic.verifiers import GraphVerifier, graph_validation_token
from shared.http import build_resolver
from shared.observability import logger, metrics, tracer

SAMPLE_EVENT = "apigw_post_webhook_graph.json"
__all__ = ["ReceiverSettings", "lambda_handler"]

app = build_resolver()


@app.post("/v1/webhooks/graph/<tenant>", enable_validation=False, responses=RECEIPTS)
def post_graph(tenant: str) -> Response[Any]:
    event = app.current_event.raw_event
    token = graph_validation_token(event)
    if token is not None:
        logger.info("graph subscription validated")
        return Response(200, "text/plain", token, headers={"X-Content-Type-Options": "nosniff"})
    return receive_webhook(event, GraphVerifier())


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
