"""POST /v1/webhooks/ses-sns/{tenant}: Amazon SES events published to an SNS topic, delivered over HTTPS.

The SNS signature (versions 1 and 2) is checked against the certificate SNS names, pinned to SNS's own host, and
the topic must be one of the tenant's; a subscription confirmation is confirmed once it verified."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.messages.handlers._receiver import RECEIPTS, ReceiverSettings, receive_webhook
from functions.messages.logic.verifiers import SnsVerifier
from shared.http import build_resolver
from shared.observability import logger, metrics, tracer

SAMPLE_EVENT = "apigw_post_webhook_ses_sns.json"
__all__ = ["ReceiverSettings", "lambda_handler"]

app = build_resolver()


def confirm_subscription(url: str) -> None:
    """GET the SubscribeURL of a verified confirmation (https on SNS's host only; 5 s)."""
    import urllib.request

    from shared.errors import DependencyFailure

    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (https on SNS's host, checked)
            response.read(65536)
    except OSError as exc:
        raise DependencyFailure(f"the SNS subscription could not be confirmed ({type(exc).__name__})") from None
    logger.info("sns subscription confirmed")


@app.post("/v1/webhooks/ses-sns/<tenant>", enable_validation=False, responses=RECEIPTS)
def post_ses_sns(tenant: str) -> Response[dict[str, Any]]:
    from shared.webhooks import raw_body

    event = app.current_event.raw_event
    response = receive_webhook(event, SnsVerifier())
    url = SnsVerifier.confirmation_url(raw_body(event))  # only after the signature verified
    if url is not None:
        confirm_subscription(url)
    return response


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
