"""The message reports (functions/messages/logic/reports.py), for readers of messages (`messages:read`).

- GET /v1/message-reports/delivery?requisition_id=...|candidate_id=...&since&until: messages by channel and
  direction, the delivery timeline and the response rate of one requisition or one candidate.
- GET /v1/message-reports/failures?since&until&channel: failure and bounce rates per channel and provider, and
  the platform's capture success rate from the CloudWatch metrics `MessageEventsReceived`/`MessageEventsStored`.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import Field

from functions.messages.dal.messages import DynamoMessageStore
from functions.messages.handlers import _params as params
from functions.messages.logic.reports import delivery_report, failures_report
from functions.messages.models.message import Channel
from functions.messages.models.reports_io import DeliveryReportOutput, FailuresReportOutput
from shared.audit import DynamoAuditLog
from shared.errors import BadRequest
from shared.http import SECURED, build_resolver, error_responses, request_context
from shared.observability import logger, metrics, tracer
from shared.settings import BaseSettings, load_settings


class ReportsApiSettings(BaseSettings):
    MESSAGES_TABLE_NAME: str = Field(min_length=3)
    AUDIT_TABLE_NAME: str = Field(min_length=3)
    POWERTOOLS_METRICS_NAMESPACE: str = Field(min_length=1)  # where the receivers and the consumer publish


app = build_resolver()
_TAGS = ["messages"]


def _counters(settings: ReportsApiSettings) -> Any:
    """The metrics adapter, imported by the failures report only (its CloudWatch client is created then)."""
    from functions.messages.dal.metrics import CloudWatchCounters

    return CloudWatchCounters(settings.POWERTOOLS_METRICS_NAMESPACE, settings.POWERTOOLS_SERVICE_NAME)


def _channel() -> Channel | None:
    value = params.text(app, "channel")
    if value is None:
        return None
    try:
        return Channel(value)
    except ValueError:
        raise BadRequest(f"channel must be one of {', '.join(c.value for c in Channel)}") from None


@app.get(
    "/v1/message-reports/delivery",
    summary="Delivery report of a requisition or a candidate",
    description=(
        "Exactly one of requisition_id and candidate_id; since, until (ISO 8601 with offset) bound the messages' "
        "first event. Messages by channel and direction, median and p90 seconds from sent to delivered and from "
        "delivered to opened and to replied, and the response rate (answered / delivered). Reads at most `limit` "
        "messages: `complete` is false, and `covered_until` says where it stopped, when there are more."
    ),
    responses={200: {"description": "The report"}, **error_responses(400, 401, 403)},
    tags=_TAGS,
    security=SECURED,
)
def get_delivery_report() -> DeliveryReportOutput:
    settings = load_settings(ReportsApiSettings)
    request = request_context(app)
    report: DeliveryReportOutput = delivery_report(
        request.actor,
        candidate_id=params.text(app, "candidate_id"),
        requisition_id=params.text(app, "requisition_id"),
        since=params.time(app, "since"),
        until=params.time(app, "until"),
        store=DynamoMessageStore(settings.MESSAGES_TABLE_NAME),
        audit=DynamoAuditLog(settings.AUDIT_TABLE_NAME),
        request_id=request.request_id,
        source_ip=request.source_ip,
    )
    return report


@app.get(
    "/v1/message-reports/failures",
    summary="Failure and bounce rates per channel and provider",
    description=(
        "since, until (ISO 8601 with offset; default the last 30 days, at most 366), channel. Outbound messages "
        "only. `capture` is the platform's events stored / events received over the same window (CloudWatch)."
    ),
    responses={200: {"description": "The report"}, **error_responses(400, 401, 403)},
    tags=_TAGS,
    security=SECURED,
)
def get_failures_report() -> FailuresReportOutput:
    settings = load_settings(ReportsApiSettings)
    request = request_context(app)
    report: FailuresReportOutput = failures_report(
        request.actor,
        since=params.time(app, "since"),
        until=params.time(app, "until"),
        channel=_channel(),
        store=DynamoMessageStore(settings.MESSAGES_TABLE_NAME),
        audit=DynamoAuditLog(settings.AUDIT_TABLE_NAME),
        request_id=request.request_id,
        counters=_counters(settings),
        source_ip=request.source_ip,
    )
    return report


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
