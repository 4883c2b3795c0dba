"""POST /v1/webhooks/twilio/{tenant}: Twilio's messaging status callbacks and incoming messages (form-encoded),
signed with the tenant's auth token over the URL Twilio called (`X-Twilio-Signature`)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.messages.handlers._receiver import RECEIPTS, ReceiverSettings, receive_webhook
from functions.messages.logic.verifiers import TwilioVerifier
from shared.http import build_resolver
from shared.observability import logger, metrics, tracer

SAMPLE_EVENT = "apigw_post_webhook_twilio.json"
__all__ = ["ReceiverSettings", "lambda_handler"]

app = build_resolver()


def request_urls(event: dict[str, Any]) -> list[str]:
    """The URLs Twilio may have signed: the scheme API Gateway reports (`X-Forwarded-Proto`, https), the Host it
    called, the path API Gateway saw (the stage included on the default endpoint, the base path mapping on a
    custom domain) or the resource path, and the query string."""
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    host = headers.get("host", "")
    scheme = headers.get("x-forwarded-proto", "https").split(",")[0].strip() or "https"
    context = event.get("requestContext") or {}
    paths = dict.fromkeys(p for p in (context.get("path"), event.get("path")) if isinstance(p, str) and p)
    query = event.get("multiValueQueryStringParameters") or {}
    pairs = [(name, value) for name, values in query.items() for value in (values or [])]
    suffix = f"?{urlencode(pairs)}" if pairs else ""
    return [f"{scheme}://{host}{path}{suffix}" for path in paths] if host else []


# The signature is over the URL and the raw form, so the route reads the event itself: no body validation.
@app.post("/v1/webhooks/twilio/<tenant>", enable_validation=False, responses=RECEIPTS)
def post_twilio(tenant: str) -> Response[dict[str, Any]]:
    event = app.current_event.raw_event
    return receive_webhook(event, TwilioVerifier(request_urls(event)))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
