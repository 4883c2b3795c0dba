"""The queue-consumer pattern as a domain uses it: another domain's typed events, from its SQS queue, in batches
with partial failures (shared.consumers.EventConsumer)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar

from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.auth import Actor
from shared.consumers import EventConsumer
from shared.events import DomainEvent, Fingerprint, Identifier
from shared.observability import logger, metrics, tracer

SAMPLE_EVENT = "sqs_eventbridge_message_recorded.json"


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"


class MessageRecorded(DomainEvent):
    detail_type: ClassVar[str] = "MessageRecorded"

    message_id: Identifier
    recipient: Fingerprint
    channel: Channel
    attempt: int


def _apply(event: MessageRecorded, actor: Actor) -> None:
    metrics.add_metric(name="BenchMessagesApplied", unit="Count", value=1)


consumer = EventConsumer(MessageRecorded, _apply, job="bench.message-recorded")


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return consumer(event, context)
