"""The messages API, the recording side: the ATS records messages it sent or received (an integration client with
`ats/messages.write`, or a recruiter). Validated, authorised and queued durably, then answered 202; the ingest
consumer applies them (functions/messages/handlers/ingest.py).

- POST /v1/messages: one message.
- POST /v1/message-batches: up to 100, refused as a whole when one is invalid.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import Field

from functions.messages.logic.record import record_messages
from functions.messages.models.api_receipt import RecordReceipt
from functions.messages.models.record_io import RecordBatch, RecordedMessage
from shared.audit import DynamoAuditLog
from shared.http import SECURED, build_resolver, error_responses, request_context
from shared.observability import logger, metrics, tracer
from shared.settings import BaseSettings, load_settings


class RecordApiSettings(BaseSettings):
    AUDIT_TABLE_NAME: str = Field(min_length=3)
    API_QUEUE_URL: str = Field(min_length=1)


app = build_resolver()
_TAGS = ["messages"]


def _queue(settings: RecordApiSettings) -> Any:
    from shared.webhooks import SqsDeliverySink

    return SqsDeliverySink(settings.API_QUEUE_URL)


def _record(messages: list[RecordedMessage]) -> Response[RecordReceipt]:
    settings = load_settings(RecordApiSettings)
    request = request_context(app)
    ids = record_messages(
        request.actor,
        messages,
        queue=_queue(settings),
        audit=DynamoAuditLog(settings.AUDIT_TABLE_NAME),
        request_id=request.request_id,
        source_ip=request.source_ip,
    )
    metrics.add_metric(name="MessageEventsReceived", unit="Count", value=len(ids))  # the capture rate's denominator
    return Response(
        status_code=202,
        content_type=content_types.APPLICATION_JSON,
        body=RecordReceipt(accepted=len(ids), message_ids=ids),
    )


@app.post(
    "/v1/messages",
    summary="Record a message",
    description="The ATS records a message it sent or received on any channel; applied asynchronously (202).",
    responses={202: {"description": "Queued"}, **error_responses(400, 401, 403)},
    tags=_TAGS,
    security=SECURED,
)
def post_message(body: RecordedMessage) -> Response[RecordReceipt]:
    return _record([body])


@app.post(
    "/v1/message-batches",
    summary="Record up to 100 messages",
    description="One request for up to 100 messages; one invalid message refuses the batch (400).",
    responses={202: {"description": "Queued"}, **error_responses(400, 401, 403)},
    tags=_TAGS,
    security=SECURED,
)
def post_message_batch(body: RecordBatch) -> Response[RecordReceipt]:
    return _record(body.messages)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
