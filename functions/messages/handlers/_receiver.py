"""What every provider webhook of the messages domain does (each provider's handler module is three lines on it):
the platform's signed-webhook pattern (shared/webhooks.py: verify with the tenant's secret, deduplicate the
request, queue it durably, then answer), with one step added before the queue: the payload must parse as the
provider's format. A forged request is a 401 and a malformed one a 400; both are counted and neither is stored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.event_handler import Response, content_types
from pydantic import Field

from shared.errors import BadRequest
from shared.http import error_responses
from shared.settings import BaseSettings, load_settings

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse

    from shared.webhooks import WebhookDelivery, WebhookVerifier

MALFORMED_METRIC = "MessagePayloadRejected"
# What a provider's webhook answers (the OpenAPI document and the fuzzing tier hold every route to it).
RECEIPTS: dict[int, OpenAPIResponse] = {
    200: {"description": "Already stored (the provider's retry), or a subscription validation answered"},
    202: {"description": "Verified and stored durably; applied asynchronously"},
    **error_responses(400, 401, 503),
}


class ReceiverSettings(BaseSettings):
    WEBHOOK_QUEUE_URL: str = Field(min_length=1)
    TENANT_SECRET_PREFIX: str = Field(min_length=1)
    MESSAGES_TABLE_NAME: str = Field(min_length=3)  # also holds the webhook dedup markers (its TTL removes them)
    AUDIT_TABLE_NAME: str = Field(min_length=3)


class ParsingSink:
    """The durable queue, behind a check that the delivery parses: nothing malformed is queued."""

    def __init__(self, queue_url: str) -> None:
        from shared.webhooks import SqsDeliverySink

        self._sink = SqsDeliverySink(queue_url)
        self.events = 0

    def put(self, delivery: WebhookDelivery) -> None:
        from functions.messages.logic.sources import events_of
        from functions.messages.models.message import MalformedPayload
        from shared.observability import logger, metrics

        try:
            self.events = len(events_of(delivery.provider, delivery.body, delivery.content_type, delivery.received_at))
        except MalformedPayload as refused:
            metrics.add_metric(name=MALFORMED_METRIC, unit="Count", value=1)
            logger.info("webhook payload refused", extra={"provider": delivery.provider, "reason": str(refused)})
            raise BadRequest(f"the {delivery.provider} payload is malformed: {refused}") from None
        self._sink.put(delivery)


def receive_webhook(event: dict[str, Any], verifier: WebhookVerifier) -> Response[dict[str, Any]]:
    """Verify, check, deduplicate and queue one provider request; the receipt's status once it is stored."""
    from shared.audit import DynamoAuditLog
    from shared.observability import metrics
    from shared.secrets import TenantSecrets
    from shared.webhooks import DynamoReplayGuard, receive

    settings = load_settings(ReceiverSettings)
    sink = ParsingSink(settings.WEBHOOK_QUEUE_URL)
    receipt = receive(
        event,
        verifier=verifier,
        secrets=TenantSecrets(settings.TENANT_SECRET_PREFIX),
        replay=DynamoReplayGuard(settings.MESSAGES_TABLE_NAME),
        sink=sink,
        audit=DynamoAuditLog(settings.AUDIT_TABLE_NAME),
    )
    metrics.add_metric(name="MessageEventsReceived", unit="Count", value=sink.events)
    return Response(receipt.status, content_types.APPLICATION_JSON, receipt.body())
